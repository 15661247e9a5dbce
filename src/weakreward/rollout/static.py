"""`StaticEngine`: rollouts over a static KV cache for the llama family, the default engine.

`StaticEngine` implements the `weakreward.rollout.engine.RolloutEngine` protocol for the models
`supports` accepts. Per ``generate`` call:

1. ``setup(B, L)``: preallocate the KV cache and state buffers (`StaticDecoder`) and, on CUDA, capture
   one decode step as a ``torch.cuda.CUDAGraph`` (the CUDA-graph mode); idempotent, so a training run
   captures once.
2. Prefill: the rows of a GRPO group share their prompt, so each distinct prompt (a run of equal
   consecutive rows) is run once and its KV cache is copied to the group's rows.
3. Decode: a Python loop that copies the sampled tokens into the step's input buffer and runs (or, on
   CUDA, replays) the step; sampling stays on the device (inversion of the running sum of ``p`` with
   one uniform per row, see `sample_tokens`), finished rows emit the pad id, and the loop ends when
   every row has ended (the host looks at the EOS flags every step on the CPU, every
   ``eos_check_every`` steps on CUDA).

On the CPU the same steps run eagerly, which is how it is tested. On CUDA the engine reads the policy's
parameters in place, so it follows the optimizer with no copy; LoRA adapters, a compute dtype other
than the parameters' and, on the CPU, the linear weights packed for oneDNN are served from snapshots
refreshed by `StaticEngine.sync_weights` (see `weakreward.rollout.static_decoder`).
"""

from __future__ import annotations

import time
from typing import Any

import torch

from weakreward.rollout.engine import Generation, completion_mask, eos_token_ids, pad_token_id, prompt_runs
from weakreward.rollout.recorder import Recorder
from weakreward.rollout.static_decoder import StaticDecoder, unsupported_reason
from weakreward.rollout.tape import ActivationTape, lowest_trained_layer, tape_unsupported_reason


def supports(model: torch.nn.Module) -> bool:
    """Whether `StaticEngine` can run ``model`` (llama, SmolLM, Qwen2/2.5, Qwen3; plain or peft LoRA).

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
    crosses the threshold is kept), and the token is drawn by inversion: with ``C`` the float64 running
    sum of ``p`` over the vocabulary and ``u ~ U[0, C_V)`` one uniform per row, it is the first ``v``
    with ``C_v > u``, so a token of probability 0 is never drawn. One uniform per row instead of one
    exponential per vocabulary entry (the Gumbel-max form that ``torch.multinomial`` uses): on a
    49,152-token vocabulary at 24 rows this is about 1.3 ms a step on the CPU instead of 24 ms.

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
    scaled = logits.float() if temperature == 1.0 else logits.float() / temperature  # z / 1 is z: one op fewer
    probs = torch.softmax(scaled, dim=-1)
    if top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        mass_before = sorted_p.cumsum(-1) - sorted_p
        sorted_p = sorted_p.masked_fill(mass_before >= top_p, 0.0)
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_p)
    cdf = probs.double().cumsum_(-1)  # [B, V]; float64 so that small tails keep their mass
    total = cdf[:, -1:]
    u = torch.rand(total.shape, generator=generator, dtype=torch.float64, device=total.device) * total
    # u * total can round up to total; below it, the first C_v > u is a token of positive probability.
    u = torch.minimum(u, torch.nextafter(total, torch.zeros_like(total)))
    return torch.searchsorted(cdf, u, right=True)[:, 0]


class StaticEngine:
    """Static-KV-cache rollouts, each prompt prefilled once per group; on CUDA one graph replay per token.

    Args:
        model: A supported HF causal LM (see `supports`), optionally wrapped by peft. Its parameters are
            read in place; ``generate`` runs under ``torch.inference_mode`` with autocast off.
        tokenizer: Decodes completions; gives the pad and EOS ids.
        dtype: Compute dtype of the rollout; default the model's (on CUDA the parameters are then shared
            with no copy).
            A different one (e.g. ``torch.bfloat16`` for a float32 policy) serves snapshots refreshed by
            `sync_weights`.
        use_cuda_graph: Capture the decode step; default True on CUDA. False runs the same steps eagerly.
        eos_check_every: Steps between the host checks for "every row finished" (each is a GPU→CPU sync);
            default 1 on the CPU (the check is free there) and 16 on CUDA.
        ignore_eos: Always generate ``max_new_tokens`` (benchmarks); EOS is then an ordinary token.
        length_bucket: The cache length is rounded up to a multiple of this, so prompts of slightly
            different lengths reuse one captured graph.
        compile: Compile the decode step with ``torch.compile`` (Inductor fuses the norms, RoPE and
            activations into a few kernels) before capturing it; costs compile time at the first
            ``setup``. Off by default: the plain step needs no compiler and warms up in about a second.
            It implies ``pack_weights=False`` (Inductor does not lower the packed weights); on the
            project's CPU a compiled 16 × 32 tiny rollout took 74 ms after a 26 s compile, against
            42 ms for the default eager step with packed weights.
        share_prompts: Prefill each run of equal consecutive prompt rows once and copy its KV cache to
            the run's rows (a GRPO group). False prefills every row (the reference the tests compare to).
        pack_weights: Serve the linear weights packed for oneDNN (see `StaticDecoder`); default on the
            CPU where available: one extra copy of the weights, for a demo-shaped float32 rollout of
            SmolLM2-135M in 1.00 s instead of 2.07 s (`bench/rollout_cpu.py`).

    Examples:
        >>> from weakreward.models import char_tokenizer, tiny_llama
        >>> tok = char_tokenizer()
        >>> engine = StaticEngine(tiny_llama(tok), tok)
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
        eos_check_every: int | None = None,
        ignore_eos: bool = False,
        length_bucket: int = 128,
        compile: bool = False,
        share_prompts: bool = True,
        pack_weights: bool | None = None,
    ) -> None:
        if eos_check_every is not None and eos_check_every < 1:
            raise ValueError(f"eos_check_every must be >= 1, got {eos_check_every}")
        if length_bucket < 1:
            raise ValueError(f"length_bucket must be >= 1, got {length_bucket}")
        if compile and pack_weights:
            raise ValueError("compile=True cannot trace oneDNN's packed weights: pass pack_weights=False (or None)")
        if compile:
            pack_weights = False
        self.decoder = StaticDecoder(model, dtype=dtype, pack_weights=pack_weights)
        self.model = model
        self.tokenizer = tokenizer
        self.device = self.decoder.device
        if use_cuda_graph is None:
            use_cuda_graph = self.device.type == "cuda"
        if use_cuda_graph and self.device.type != "cuda":
            raise ValueError(f"use_cuda_graph=True needs a CUDA model, got device {self.device}")
        self.use_cuda_graph = use_cuda_graph
        if eos_check_every is None:
            eos_check_every = 16 if self.device.type == "cuda" else 1
        self.eos_check_every = eos_check_every
        self.share_prompts = share_prompts
        self.ignore_eos = ignore_eos
        self.length_bucket = length_bucket
        self._step_fn = self.decoder.decode_step
        self._compiled = compile
        if compile:
            self._step_fn = torch.compile(self.decoder.decode_step, fullgraph=True, dynamic=False)
        all_eos = eos_token_ids(model, tokenizer)
        self.pad_id = pad_token_id(tokenizer, all_eos)
        self.eos_ids = [] if ignore_eos else all_eos
        self._eos = torch.tensor(self.eos_ids or [-1], dtype=torch.long, device=self.device)
        self._graph: torch.cuda.CUDAGraph | None = None
        self._graph_logits: torch.Tensor | None = None
        self.capture_seconds = 0.0
        """Seconds the last setup spent on warm-up and graph capture (0 when nothing was captured)."""

    # -- setup and weights -----------------------------------------------------------------------------

    def setup(self, batch_size: int, max_len: int) -> None:
        """Allocate buffers for ``batch_size`` rows and at least ``max_len`` positions and capture the
        decode step (CUDA). Idempotent: nothing happens when the shape already fits.

        Args:
            batch_size: Rows ``B``; a different value than the current buffers' reallocates them.
            max_len: Positions needed (prompt + new tokens), rounded up to a multiple of ``length_bucket``;
                buffers that are already at least that long are kept.
        """
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
        dtype, packed weights) of trainable parameters are re-derived, in place where a graph reads
        them; a parameter that moved (``p.data = ...``) rebinds the weights and drops the captured
        graph, which the next ``generate`` recaptures. ``generate`` itself re-derives only the
        snapshots whose parameters changed in place since (their version counters)."""
        if self.decoder.refresh_weights(trainable=True):
            self._graph = None

    # -- generation ------------------------------------------------------------------------------------

    def _device_generator(self, generator: torch.Generator | None) -> torch.Generator | None:
        if generator is None or generator.device == self.device or (generator.device.type == self.device.type == "cpu"):
            return generator
        # A CPU generator for a CUDA engine: seed a device generator from it (one host draw per call),
        # so runs with the same seed repeat and the per-token noise never crosses the bus.
        seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
        return torch.Generator(device=self.device).manual_seed(seed)

    def _step_logits(self, length: int) -> torch.Tensor:
        """The next decode step's logits; ``length`` is the number of cache slots written after it."""
        if self._graph is not None:
            self._graph.replay()
            assert self._graph_logits is not None, "set with the graph by _capture"
            return self._graph_logits
        if self._compiled:
            return self._step_fn()  # fixed shapes: a length that changed each step would recompile
        return self.decoder.decode_step(length)

    def generate(
        self,
        prompt_ids: torch.Tensor,
        prompt_mask: torch.Tensor,
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        generator: torch.Generator | None = None,
        record: bool = False,
    ) -> Generation:
        """Sample one completion per row of ``prompt_ids`` ``[B, P]`` (left-padded).

        ``temperature <= 0`` decodes greedily. Tensors in the result live on the model's device;
        ``completion_ids`` is ``[B, T]`` with ``T <= max_new_tokens`` (trailing all-padding columns are
        dropped, as Hugging Face's ``generate`` stops once every row has finished).

        Args:
            prompt_ids: ``[B, P]`` int64 prompt ids, left-padded.
            prompt_mask: ``[B, P]`` bool (or 0/1), True at real prompt tokens.
            max_new_tokens: The most tokens sampled per row.
            temperature: Divides the logits before sampling; ``<= 0`` is greedy.
            top_p: Nucleus mass in ``(0, 1]``.
            generator: The random stream of the sample (None: torch's global RNG).
            record: Keep the forward's activations and each step's logits as ``Generation.tape``
                (`weakreward.rollout.tape.ActivationTape`), for a backward pass with no training forward;
                eager steps only (see `records`).

        Raises:
            ValueError: ``max_new_tokens < 1``, ``top_p`` outside ``(0, 1]``, prompt ids and mask that are not
                both ``[B, P]``, or right-padded prompts.
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
        if record and not self.records:
            raise ValueError(f"this engine cannot record its rollout: {self.record_unsupported_reason()}")
        if self.decoder.refresh_weights():
            self._graph = None
        self.setup(b, p + max_new_tokens)
        gen = self._device_generator(generator)
        dec = self.decoder
        finished = torch.zeros(b, dtype=torch.bool, device=self.device)
        tokens: list[torch.Tensor] = []  # one [B] per step; a finished row's are padding
        repeats = prompt_runs(ids, mask) if self.share_prompts else None
        recorder = dec.recorder = Recorder(lowest_trained_layer(dec)) if record else None
        # Inference mode, not just no_grad: the loop's tensors skip version counting and autograd's
        # dispatch, 6-9% of a tiny decode step on the CPU. What the call returns is built after the
        # block, outside it, so the trainer's autograd can read it.
        with torch.inference_mode(), torch.autocast(self.device.type, enabled=False):
            logits = dec.prefill(ids, mask, repeats=repeats)
            for t in range(max_new_tokens):
                if recorder is not None:
                    recorder.logits.append(logits)
                token = sample_tokens(logits, temperature, top_p, gen).masked_fill_(finished, self.pad_id)
                tokens.append(token)
                if self.eos_ids:
                    finished |= torch.isin(token, self._eos)  # [B]; no host sync
                    # sync: every eos_check_every steps (each step on the CPU, where it costs nothing)
                    if (t + 1) % self.eos_check_every == 0 and bool(finished.all()):
                        break
                if t + 1 == max_new_tokens:
                    break
                dec.tokens.copy_(token)
                logits = self._step_logits(p + t + 1)  # slots 0..p-1 hold the prompt, p + t this token
        dec.recorder = None
        out_ids = torch.stack(tokens, dim=1)  # [B, steps run]
        out_mask = completion_mask(out_ids, self.eos_ids)  # up to and including each row's first EOS
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
            tape=None if recorder is None else self._tape(recorder, repeats, b),
        )

    @property
    def records(self) -> bool:
        """Whether ``generate(..., record=True)`` works: eager decode steps (no CUDA graph, not compiled)
        over a model `ActivationTape` supports."""
        return self.record_unsupported_reason() is None

    def record_unsupported_reason(self) -> str | None:
        """Why this engine cannot record its rollout for `ActivationTape`, or None when it can."""
        if self.use_cuda_graph or self._compiled:
            return "a captured or compiled decode step keeps no per-step activations"
        return tape_unsupported_reason(self.decoder)

    def _tape(self, recorder: Recorder, repeats: torch.Tensor | None, b: int) -> ActivationTape:
        if repeats is None:
            row_group = first = torch.arange(b, device=self.device)
        else:
            repeats = repeats.to(self.device)
            row_group = torch.repeat_interleave(torch.arange(repeats.numel(), device=self.device), repeats)
            first = repeats.cumsum(0) - repeats
        return ActivationTape(self.decoder, recorder, row_group, first)
