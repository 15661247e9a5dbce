"""A rollout engine that replays one captured CUDA graph per generated token.

`CudaGraphEngine` implements the `weakreward.grpo.engine.RolloutEngine` protocol for the llama family
(`supports` says which models). Per ``generate`` call:

1. ``setup(B, L)``: preallocate the KV cache and state buffers (`StaticDecoder`) and, on CUDA, capture
   one decode step as a ``torch.cuda.CUDAGraph``; idempotent, so a training run captures once.
2. Prefill: one eager forward over the left-padded prompts writes cache slots ``0..P-1``.
3. Decode: a Python loop that copies the sampled tokens into the graph's input buffer and replays the
   graph; sampling stays on the device (``argmax(p / E)`` with ``E ~ Exp(1)``, i.e. the Gumbel-max
   trick), finished rows emit the pad id, and the host looks at the EOS flags only every
   ``eos_check_every`` steps (the one GPU→CPU sync in the loop).

On the CPU the same code runs eagerly (no capture), which is how it is tested. The engine reads the
policy's parameters in place, so it follows the optimizer with no copy; LoRA adapters and a compute
dtype other than the parameters' are served from snapshots refreshed by `CudaGraphEngine.sync_weights`
(see `weakreward.kernels.static_decoder`).

Importing this module registers the engine as ``GRPOConfig(engine="cuda-graph")``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch

from weakreward.grpo.engine import Generation
from weakreward.grpo.engine_factory import register_engine
from weakreward.kernels.static_decoder import StaticDecoder, unsupported_reason


def supports(model: torch.nn.Module) -> bool:
    """Whether `CudaGraphEngine` can run ``model`` (llama, SmolLM, Qwen2/2.5, Qwen3; plain or peft LoRA).

    Examples:
        >>> from weakreward.models import tiny_llama
        >>> supports(tiny_llama(architecture="qwen3", head_dim=16)), supports(torch.nn.Linear(2, 2))
        (True, False)
    """
    return unsupported_reason(model) is None


def sample_tokens(
    logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Sample one token per row on the logits' device, with no host synchronisation.

    ``temperature <= 0`` is greedy (argmax). Otherwise ``p = softmax(z / temperature)``, restricted to the
    smallest set of most likely tokens whose mass reaches ``top_p`` (nucleus sampling; the token that
    crosses the threshold is kept), and the token is ``argmax_v p_v / E_v`` with ``E_v ~ Exp(1)``
    i.i.d., an exact sample from ``p`` (the exponential form of the Gumbel-max trick).

    Args:
        logits: ``[B, V]`` next-token logits.
        temperature: Divides the logits; ``<= 0`` means greedy.
        top_p: Nucleus mass in ``(0, 1]``; 1 disables the filter (and its sort).
        generator: Drawn from for the noise; must live on the logits' device.

    Returns:
        ``[B]`` int64 token ids.

    Examples:
        >>> z = torch.tensor([[0.0, 5.0, 1.0]])
        >>> sample_tokens(z, 0.0, 1.0).tolist(), sample_tokens(z, 1.0, 0.5).tolist()
        ([1], [1])
    """
    if temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        mass_before = sorted_p.cumsum(-1) - sorted_p
        sorted_p = sorted_p.masked_fill(mass_before >= top_p, 0.0)
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_p)
    noise = torch.empty_like(probs).exponential_(generator=generator)
    return (probs / noise).argmax(-1)


class CudaGraphEngine:
    """Static-KV-cache rollouts with one CUDA-graph replay per token (eager on the CPU).

    Args:
        model: A supported HF causal LM (see `supports`), optionally wrapped by peft. Its parameters are
            read in place; ``generate`` runs under ``torch.no_grad`` with autocast off.
        tokenizer: Decodes completions; gives the pad and EOS ids.
        dtype: Compute dtype of the rollout; default the model's (parameters then shared with no copy).
            A different one (e.g. ``torch.bfloat16`` for a float32 policy) serves snapshots refreshed by
            `sync_weights`.
        use_cuda_graph: Capture the decode step; default True on CUDA. False runs the same steps eagerly.
        eos_check_every: Steps between the host checks for "every row finished" (each is a GPU→CPU sync).
        ignore_eos: Always generate ``max_new_tokens`` (benchmarks); EOS is then an ordinary token.
        length_bucket: The cache length is rounded up to a multiple of this, so prompts of slightly
            different lengths reuse one captured graph.
        compile: Compile the decode step with ``torch.compile`` (Inductor fuses the norms, RoPE and
            activations into a few kernels) before capturing it; costs compile time at the first
            ``setup``. Off by default: the plain step needs no compiler and warms up in about a second.

    Examples:
        >>> from weakreward.models import char_tokenizer, tiny_llama
        >>> tok = char_tokenizer()
        >>> engine = CudaGraphEngine(tiny_llama(tok), tok)
        >>> batch = tok(["1+1=", "2+2="], return_tensors="pt", padding=True)
        >>> out = engine.generate(batch["input_ids"], batch["attention_mask"], max_new_tokens=5,
        ...                       temperature=0.0, top_p=1.0)
        >>> out.completion_ids.shape[0], out.completion_mask.dtype
        (2, torch.bool)
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        *,
        dtype: torch.dtype | None = None,
        use_cuda_graph: bool | None = None,
        eos_check_every: int = 16,
        ignore_eos: bool = False,
        length_bucket: int = 128,
        compile: bool = False,
    ) -> None:
        if eos_check_every < 1:
            raise ValueError(f"eos_check_every must be >= 1, got {eos_check_every}")
        if length_bucket < 1:
            raise ValueError(f"length_bucket must be >= 1, got {length_bucket}")
        self.decoder = StaticDecoder(model, dtype=dtype)
        self.model = model
        self.tokenizer = tokenizer
        self.device = self.decoder.device
        if use_cuda_graph is None:
            use_cuda_graph = self.device.type == "cuda"
        if use_cuda_graph and self.device.type != "cuda":
            raise ValueError(f"use_cuda_graph=True needs a CUDA model, got device {self.device}")
        self.use_cuda_graph = use_cuda_graph
        self.eos_check_every = eos_check_every
        self.ignore_eos = ignore_eos
        self.length_bucket = length_bucket
        self._step_fn = self.decoder.decode_step
        if compile:
            self._step_fn = torch.compile(self.decoder.decode_step, fullgraph=True, dynamic=False)
        self.pad_id = self._pad_id(model, tokenizer)
        self.eos_ids = [] if ignore_eos else self._eos_ids(model, tokenizer)
        self._eos = torch.tensor(self.eos_ids or [-1], dtype=torch.long, device=self.device)
        self._graph: torch.cuda.CUDAGraph | None = None
        self._graph_logits: torch.Tensor | None = None
        self.capture_seconds = 0.0
        """Seconds the last setup spent on warm-up and graph capture (0 when nothing was captured)."""

    @staticmethod
    def _pad_id(model: torch.nn.Module, tokenizer: Any) -> int:
        for value in (getattr(tokenizer, "pad_token_id", None), getattr(tokenizer, "eos_token_id", None)):
            if value is not None:
                return int(value)
        raise ValueError("CudaGraphEngine needs a tokenizer with a pad_token_id (or an eos_token_id)")

    @staticmethod
    def _eos_ids(model: torch.nn.Module, tokenizer: Any) -> list[int]:
        """Every EOS id of the generation config and the tokenizer (as the HF engine does)."""
        ids: list[int] = []
        for source in (getattr(model, "generation_config", None), tokenizer):
            value: int | Sequence[int] | None = getattr(source, "eos_token_id", None)
            if value is not None:
                ids.extend(int(v) for v in (value if isinstance(value, (list, tuple)) else [value]))
        return sorted(set(ids))

    # -- setup and weights -----------------------------------------------------------------------------

    def setup(self, batch_size: int, max_len: int) -> None:
        """Allocate buffers for ``batch_size`` rows and at least ``max_len`` positions and capture the
        decode step (CUDA). Idempotent: nothing happens when the shape already fits."""
        length = -(-max_len // self.length_bucket) * self.length_bucket
        if batch_size != self.decoder.batch_size or length > self.decoder.max_len:
            self.decoder.setup(batch_size, length)
            self._graph = None
        if self.use_cuda_graph and self._graph is None:
            self._capture()

    def _capture(self) -> None:
        start = time.perf_counter()
        dec = self.decoder
        with torch.no_grad(), torch.autocast(self.device.type, enabled=False):
            dec.cache_pos.zero_()
            stream = torch.cuda.Stream(self.device)
            stream.wait_stream(torch.cuda.current_stream(self.device))
            # Warm-up on a side stream (allocator and library handles settle before capture). It writes
            # garbage into cache slots 0..2, which the next prefill marks invalid or overwrites.
            with torch.cuda.stream(stream):
                for _ in range(2):
                    self._step_fn()
            torch.cuda.current_stream(self.device).wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self._graph_logits = self._step_fn()
        torch.cuda.synchronize(self.device)  # sync: capture is done once per shape, not per token
        self._graph = graph
        self.capture_seconds = time.perf_counter() - start

    def sync_weights(self) -> None:
        """Call after each optimizer step. Shared parameters need nothing; snapshots (LoRA, another
        dtype) are refreshed in place; a parameter that moved (``p.data = ...``) rebinds the weights
        and drops the captured graph, which the next ``generate`` recaptures."""
        if self.decoder.refresh_weights():
            self._graph = None

    # -- generation ------------------------------------------------------------------------------------

    def _device_generator(self, generator: torch.Generator | None) -> torch.Generator | None:
        if generator is None or generator.device == self.device or (generator.device.type == self.device.type == "cpu"):
            return generator
        # A CPU generator for a CUDA engine: seed a device generator from it (one host draw per call),
        # so runs with the same seed repeat and the per-token noise never crosses the bus.
        seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
        return torch.Generator(device=self.device).manual_seed(seed)

    def _step_logits(self) -> torch.Tensor:
        if self._graph is not None:
            self._graph.replay()
            return self._graph_logits
        return self._step_fn()

    def generate(
        self,
        prompt_ids: torch.Tensor,
        prompt_mask: torch.Tensor,
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        generator: torch.Generator | None = None,
    ) -> Generation:
        """Sample one completion per row of ``prompt_ids`` ``[B, P]`` (left-padded).

        ``temperature <= 0`` decodes greedily. Tensors in the result live on the model's device;
        ``completion_ids`` is ``[B, T]`` with ``T <= max_new_tokens`` (trailing all-padding columns are
        dropped, as Hugging Face's ``generate`` stops once every row has finished).
        """
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        if prompt_ids.dim() != 2 or tuple(prompt_mask.shape) != tuple(prompt_ids.shape):
            raise ValueError(
                f"prompt_ids and prompt_mask must both be [B, P], got {tuple(prompt_ids.shape)} and "
                f"{tuple(prompt_mask.shape)}"
            )
        ids = prompt_ids.to(self.device)
        mask = prompt_mask.to(self.device).bool()
        b, p = ids.shape
        if not bool(mask[:, -1].all()):  # sync: once per call, to reject right padding clearly
            raise ValueError("prompts must be left-padded: prompt_mask[:, -1] must be True for every row")
        if self.decoder.refresh_weights():
            self._graph = None
        self.setup(b, p + max_new_tokens)
        gen = self._device_generator(generator)
        dec = self.decoder
        out_ids = torch.full((b, max_new_tokens), self.pad_id, dtype=torch.long, device=self.device)
        out_mask = torch.zeros(b, max_new_tokens, dtype=torch.bool, device=self.device)
        finished = torch.zeros(b, dtype=torch.bool, device=self.device)
        pad = torch.full((b,), self.pad_id, dtype=torch.long, device=self.device)
        with torch.no_grad(), torch.autocast(self.device.type, enabled=False):
            logits = dec.prefill(ids, mask)
            for t in range(max_new_tokens):
                token = sample_tokens(logits, temperature, top_p, gen)
                token = torch.where(finished, pad, token)
                out_ids[:, t] = token
                out_mask[:, t] = ~finished
                if self.eos_ids:
                    finished |= (token[:, None] == self._eos[None, :]).any(-1)  # [B]; no host sync
                    # sync: only every eos_check_every steps, never per token
                    if (t + 1) % self.eos_check_every == 0 and bool(finished.all()):
                        break
                if t + 1 == max_new_tokens:
                    break
                dec.tokens.copy_(token)
                logits = self._step_logits()
        width = int(out_mask.any(0).sum())  # sync: once per call; masks are prefixes, so this is T
        out_ids, out_mask = out_ids[:, :width], out_mask[:, :width]
        rows = out_ids.masked_fill(~out_mask, self.pad_id).tolist()
        lengths = out_mask.sum(-1).tolist()
        completions = self.tokenizer.batch_decode([row[:n] for row, n in zip(rows, lengths)], skip_special_tokens=True)
        return Generation(
            prompt_ids=ids,
            prompt_mask=mask,
            completion_ids=out_ids,
            completion_mask=out_mask,
            completions=completions,
        )


def _engine_from_config(model: torch.nn.Module, tokenizer: Any, config: Any) -> CudaGraphEngine:
    """The factory behind ``GRPOConfig(engine="cuda-graph")``: compute in the policy's own dtype, so
    the parameters are shared with the trainer and nothing is copied between steps."""
    return CudaGraphEngine(model, tokenizer)


register_engine("cuda-graph", _engine_from_config)
