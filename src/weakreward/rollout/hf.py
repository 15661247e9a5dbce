"""`HFEngine`: the portable rollout engine, a thin wrapper around ``model.generate`` (any causal LM)."""

from __future__ import annotations

from typing import Any, Literal

import torch

from weakreward.kernels.linear import onednn_linear
from weakreward.rollout.engine import Generation, completion_mask, eos_token_ids, pad_token_id


class HFEngine:
    """Samples with Hugging Face ``generate`` from the live policy (shares its weights: no sync needed).

    Sampling uses exactly ``temperature`` and ``top_p`` (``top_k`` and every other processor from the
    model's generation config are switched off), so the log-probs the trainer computes with the same
    temperature are the sampling policy's. ``generate`` draws from torch's global RNG; when a
    ``generator`` is passed, a seed is drawn from it and the call runs under ``torch.random.fork_rng``
    so the global RNG is left untouched and the sample stream is reproducible from the generator alone.

    Args:
        model: A causal LM (peft-wrapped or not).
        tokenizer: Its tokenizer (pad and EOS ids; decoding).
        cpu_linear: ``"onednn"`` runs ``generate`` under `weakreward.kernels.linear.onednn_linear`: its
            float32 CPU linear layers multiply in oneDNN (a demo-shaped rollout of SmolLM2-135M took
            2.1-2.4 s instead of 3.3-3.8 s on the project's CPU); ``"torch"`` leaves them to ``F.linear``.
            No effect on CUDA or in other dtypes.

    Examples:
        >>> from weakreward.models import char_tokenizer, tiny_llama
        >>> tok = char_tokenizer(); engine = HFEngine(tiny_llama(tok), tok)
        >>> enc = tok(["1+1="], return_tensors="pt")
        >>> gen = engine.generate(enc.input_ids, enc.attention_mask.bool(), max_new_tokens=3, temperature=1.0,
        ...                       top_p=1.0, generator=torch.Generator().manual_seed(0))
        >>> gen.completion_ids.shape[0], len(gen.completions)
        (1, 1)
    """

    def __init__(self, model: Any, tokenizer: Any, *, cpu_linear: Literal["onednn", "torch"] = "onednn") -> None:
        if cpu_linear not in ("onednn", "torch"):
            raise ValueError(f"cpu_linear must be 'onednn' or 'torch', got {cpu_linear!r}")
        self.model = model
        self.tokenizer = tokenizer
        self.cpu_linear = cpu_linear
        self.eos_ids = eos_token_ids(model, tokenizer)
        self.pad_id = pad_token_id(tokenizer, self.eos_ids)

    def _generation_config(self, max_new_tokens: int, temperature: float, top_p: float) -> Any:
        from transformers import GenerationConfig

        return GenerationConfig(
            do_sample=True,
            temperature=float(temperature),
            top_p=float(top_p),
            top_k=0,
            max_new_tokens=int(max_new_tokens),
            pad_token_id=self.pad_id,
            eos_token_id=self.eos_ids or None,
            use_cache=True,
        )

    @torch.no_grad()
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
        """Sample one completion per row of ``prompt_ids`` ``[B, P]`` (left-padded); see `Generation`.

        Args: as `RolloutEngine.generate`.
        """
        config = self._generation_config(max_new_tokens, temperature, top_p)
        was_training = self.model.training
        self.model.eval()
        devices = [prompt_ids.device] if prompt_ids.is_cuda else []
        try:
            with (
                torch.random.fork_rng(devices=devices, enabled=generator is not None),
                onednn_linear(self.cpu_linear == "onednn"),
            ):
                if generator is not None:
                    torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
                out = self.model.generate(
                    input_ids=prompt_ids, attention_mask=prompt_mask.long(), generation_config=config
                )
        finally:
            self.model.train(was_training)
        completion_ids = out[:, prompt_ids.shape[1] :]
        mask = completion_mask(completion_ids, self.eos_ids)
        completion_ids = completion_ids.masked_fill(~mask, self.pad_id)
        texts = [
            self.tokenizer.decode(row[m].tolist(), skip_special_tokens=True)
            for row, m in zip(completion_ids.cpu(), mask.cpu())
        ]
        return Generation(
            prompt_ids=prompt_ids,
            prompt_mask=prompt_mask.bool(),
            completion_ids=completion_ids,
            completion_mask=mask,
            completions=texts,
        )

    def sync_weights(self) -> None:
        """Nothing to do: ``generate`` runs on the trained model itself."""
