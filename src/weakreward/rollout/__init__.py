"""Rollout engines: sampling completions from the current policy for the trainer.

`StaticEngine` (the default for the llama family; a static KV cache, each prompt prefilled once per
group, a CUDA-graph decode step on CUDA) and `HFEngine` (Hugging Face ``generate``, any causal LM) both
implement `RolloutEngine` and return a `Generation`; `make_engine` picks one by name. The static engine
can record its forward (`ActivationTape`), so that the trainer's backward pass starts from it.
"""

from weakreward.kernels.linear import packed_linear_available
from weakreward.rollout.engine import Generation, RolloutEngine, completion_mask, eos_token_ids, prompt_runs
from weakreward.rollout.hf import HFEngine
from weakreward.rollout.selection import make_engine, resolve_engine_name
from weakreward.rollout.static import StaticEngine, sample_tokens, supports
from weakreward.rollout.static_decoder import StaticDecoder, unsupported_reason
from weakreward.rollout.tape import ActivationTape, tape_unsupported_reason

__all__ = [
    "ActivationTape",
    "Generation",
    "HFEngine",
    "RolloutEngine",
    "StaticDecoder",
    "StaticEngine",
    "completion_mask",
    "eos_token_ids",
    "make_engine",
    "packed_linear_available",
    "prompt_runs",
    "resolve_engine_name",
    "sample_tokens",
    "supports",
    "tape_unsupported_reason",
    "unsupported_reason",
]
