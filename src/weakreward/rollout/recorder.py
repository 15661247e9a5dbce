"""`Recorder`: the activations one rollout's forward computed, kept for the backward pass.

`StaticDecoder` hands a recorder (when one is set) the tensors it computes anyway: per layer the
residual stream entering the layer (``"x"``), the rotated queries (``"q"``), the attention output before
the output projection (``"a"``), the residual stream entering the MLP (``"x_mid"``) and the MLP's gate
and up projections side by side (``"gate_up"``); layer ``-1`` holds the final residual (the LM head's input).
Nothing is copied: the recorder keeps references, the prefill's ``[U, P, ·]`` tensors once and each
decode step's ``[B, 1, ·]`` tensors in a list. Keys and values are read back from the decoder's KV
cache. `weakreward.rollout.tape.ActivationTape` turns a recorder into a gradient.
"""

from __future__ import annotations

import torch


class Recorder:
    """The activations of one ``prefill`` and the decode steps after it.

    Attributes:
        first_layer: The lowest layer recorded.
        prompt_ids: ``[U, P]`` the prompts the prefill computed (one row per group when prompts are shared).
        prompt_mask: ``[U, P]`` bool, True at real prompt tokens.
        prompt_positions: ``[U, P]`` their RoPE positions.
        prefill: ``(layer, name) → [U, P, ·]`` (``"q"``: ``[U, H, P, D]``).
        steps: ``(layer, name) → [[B, 1, ·], ...]``, one entry per decode step (``"q"``: ``[B, H, 1, D]``).
        logits: ``[B, V]`` per sampled token, appended by the engine: ``logits[t]`` is what token ``t`` was
            sampled from.
        decoding: False during the prefill, True once decode steps are recorded.

    Args:
        first_layer: Layers below it are not recorded (the backward pass stops above them: with LoRA on
            the top 10 of SmolLM2's 30 layers, a third of the activations is kept).
    """

    def __init__(self, first_layer: int = 0) -> None:
        self.first_layer = first_layer
        self._clear()

    def _clear(self) -> None:
        self.prompt_ids = torch.empty(0, 0, dtype=torch.long)
        self.prompt_mask = torch.empty(0, 0, dtype=torch.bool)
        self.prompt_positions = torch.empty(0, 0, dtype=torch.long)
        self.prefill: dict[tuple[int, str], torch.Tensor] = {}
        self.steps: dict[tuple[int, str], list[torch.Tensor]] = {}
        self.logits: list[torch.Tensor] = []
        self.decoding = False

    def prompt(self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor) -> None:
        """Start a recording at a prefill (earlier activations are dropped).

        Args:
            ids: ``[U, P]`` the prompt rows the prefill computes.
            mask: ``[U, P]`` bool, True at real tokens.
            positions: ``[U, P]`` their RoPE positions.
        """
        self._clear()
        self.prompt_ids, self.prompt_mask, self.prompt_positions = ids, mask, positions

    def add(self, layer: int, name: str, tensor: torch.Tensor) -> None:
        """Keep ``tensor`` (a reference) as an activation of the prefill, or of the current decode step.

        Args:
            layer: The layer index; -1 for the final residual.
            name: ``"x"``, ``"q"``, ``"a"``, ``"x_mid"`` or ``"gate_up"`` (see the module docstring).
            tensor: ``[U, P, ·]`` in the prefill, ``[B, 1, ·]`` in a decode step (``"q"``: heads before positions).
        """
        if 0 <= layer < self.first_layer:
            return  # no gradient goes below first_layer: keeping its activations would only hold memory
        if self.decoding:
            self.steps.setdefault((layer, name), []).append(tensor)
        else:
            self.prefill[(layer, name)] = tensor
