"""Checkpoints that survive a crash: written to a temporary folder, fsynced, then renamed atomically.

Layout of ``run_dir/checkpoints/step-000012/``:

- ``weights.pt``: the trainable parameters (the LoRA adapter, or every parameter for full fine-tuning);
- ``state.pt``: optimizer, scheduler, step, and every RNG state (torch CPU/CUDA, numpy, python
  ``random``, the trainer's sampling generator) plus each reward's ``state_dict()``.

A folder named ``step-*`` is always complete: a crash mid-write leaves only a ``.tmp-*`` folder, which
`latest_checkpoint` ignores and `prune_checkpoints` removes.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

_STEP_DIR = re.compile(r"^step-(\d+)$")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _save(obj: Any, path: Path) -> None:
    with open(path, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())


def rng_state(generator: torch.Generator | None = None) -> dict[str, Any]:
    """Every RNG state the trainer depends on."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if generator is not None:
        state["generator"] = generator.get_state()
    return state


def set_rng_state(state: dict[str, Any], generator: torch.Generator | None = None) -> None:
    """Restore what `rng_state` returned.

    Args:
        state: What `rng_state` returned.
        generator: The trainer's sampling generator, restored too.
    """
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if generator is not None and "generator" in state:
        generator.set_state(state["generator"])


def save_checkpoint(
    ckpt_root: str | os.PathLike[str], step: int, weights: dict[str, torch.Tensor], state: dict[str, Any]
) -> Path:
    """Write ``step-{step:06d}`` under ``ckpt_root`` atomically and return its path.

    Args:
        ckpt_root: The checkpoints folder (created when missing).
        step: The number of completed optimizer steps.
        weights: Name → tensor of the trainable parameters.
        state: Everything else (optimizer, scheduler, RNG, rewards), torch-serialisable.
    """
    root = Path(ckpt_root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:06d}"
    tmp = root / f".tmp-step-{step:06d}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    _save({k: v.detach().cpu() for k, v in weights.items()}, tmp / "weights.pt")
    _save({"step": step, **state}, tmp / "state.pt")
    _fsync_dir(tmp)
    if final.exists():
        # Re-saving a step (e.g. the final save right after a periodic one): move the old one out of the
        # way first so the rename below stays atomic.
        old = root / f".old-step-{step:06d}-{os.getpid()}"
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    _fsync_dir(root)
    return final


def list_checkpoints(ckpt_root: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """Complete checkpoints under ``ckpt_root`` as ``(step, path)``, oldest first."""
    root = Path(ckpt_root)
    if not root.is_dir():
        return []
    out = []
    for child in root.iterdir():
        match = _STEP_DIR.match(child.name)
        if match and (child / "state.pt").exists() and (child / "weights.pt").exists():
            out.append((int(match.group(1)), child))
    return sorted(out)


def latest_checkpoint(ckpt_root: str | os.PathLike[str]) -> Path | None:
    """The newest complete checkpoint, or None."""
    found = list_checkpoints(ckpt_root)
    return found[-1][1] if found else None


def prune_checkpoints(ckpt_root: str | os.PathLike[str], keep: int) -> None:
    """Delete all but the ``keep`` newest checkpoints, and any leftover temporary folders.

    Args:
        ckpt_root: The ``checkpoints/`` folder.
        keep: How many of the newest checkpoints to keep.
    """
    root = Path(ckpt_root)
    if not root.is_dir():
        return
    for child in root.iterdir():
        if child.name.startswith((".tmp-step-", ".old-step-")):
            shutil.rmtree(child, ignore_errors=True)
    for _, path in list_checkpoints(root)[:-keep]:
        shutil.rmtree(path, ignore_errors=True)


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(weights, state)`` of the checkpoint folder ``path``."""
    path = Path(path)
    weights = torch.load(path / "weights.pt", map_location="cpu", weights_only=True)
    state = torch.load(path / "state.pt", map_location="cpu", weights_only=False)
    return weights, state
