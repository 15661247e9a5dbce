"""GRPO's objective as pure functions: group advantages, the clipped surrogate, the k3 KL, aggregation.

Notation, per completion ``i`` (``B`` in a batch) and token ``t`` (``T`` the padded length):

- advantage (Shao et al. 2024, DeepSeekMath, GRPO): ``A_i = (r_i − mean_g r) / (std_g r + eps)`` over the
  group ``g`` of completions sampled from the same prompt; ``none`` drops the division (Dr. GRPO, Liu
  et al. 2025); ``batch`` divides by the standard deviation over the whole batch.
- ratio ``ρ_it = exp(log π_θ(y_it) − log π_old(y_it))``.
- clipped surrogate (PPO, Schulman et al. 2017, with DAPO's separate upper range, Yu et al. 2025):
  ``ℓ_it = max(−A_i ρ_it, −A_i clip(ρ_it, 1 − ε, 1 + ε_high))``; dual-clip (Ye et al. 2020) caps it at
  ``−c A_i`` when ``A_i < 0``.
- KL to the reference, k3 estimator (Schulman 2020): ``k3 = exp(d) − d − 1`` with
  ``d = log π_ref − log π_θ``; unbiased for KL(π_θ ‖ π_ref) and always ≥ 0. The loss adds ``β · k3``.
- aggregation of the per-token loss ``L_it`` with mask ``m_it``: ``token-mean`` = ``Σ L m / Σ m``
  (verl, DAPO); ``seq-mean-token-mean`` = ``1/B Σ_i (Σ_t L m / Σ_t m)`` (GRPO's formula as written in
  arXiv 2604.18574); ``dr-grpo`` = ``Σ L m / (B · T_max)`` with a constant ``T_max`` (Dr. GRPO).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

AdvantageNorm = Literal["group", "none", "batch"]
LossAgg = Literal["token-mean", "seq-mean-token-mean", "dr-grpo"]


def group_advantages(
    scores: np.ndarray | Sequence[float],
    group_ids: Sequence[Hashable],
    norm: AdvantageNorm = "group",
    eps: float = 1e-6,
) -> np.ndarray:
    """GRPO advantages from rewards, one per completion.

    NaN scores (a reward could not score the completion) get advantage 0 and are left out of their
    group's mean and standard deviation. A group whose scores are all equal gets advantages 0.
    Standard deviations are the population ones (``ddof=0``).

    Args:
        scores: ``[B]`` rewards.
        group_ids: ``[B]`` equal id = same prompt.
        norm: ``"group"`` (mean/std per group), ``"none"`` (mean only), ``"batch"`` (group mean, batch std).
        eps: Added to the standard deviation.

    Returns:
        ``[B]`` float64 advantages.

    Examples:
        >>> group_advantages([1.0, 0.0, 1.0, 1.0], ["a", "a", "b", "b"], norm="none").tolist()
        [0.5, -0.5, 0.0, 0.0]
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(group_ids) != len(s):
        raise ValueError(f"group_advantages: {len(s)} scores but {len(group_ids)} group ids")
    if norm not in ("group", "none", "batch"):
        raise ValueError(f'advantage_norm must be "group", "none" or "batch", got {norm!r}')
    valid = ~np.isnan(s)
    centred = np.zeros_like(s)
    stds = np.ones_like(s)
    index: dict[Hashable, list[int]] = {}
    for i, g in enumerate(group_ids):
        index.setdefault(g, []).append(i)
    for rows in index.values():
        idx = np.asarray([i for i in rows if valid[i]], dtype=np.int64)
        if idx.size == 0:
            continue
        centred[idx] = s[idx] - s[idx].mean()
        stds[idx] = s[idx].std()
    if norm == "group":
        adv = centred / (stds + eps)
    elif norm == "batch":
        batch_std = s[valid].std() if valid.any() else 0.0
        adv = centred / (batch_std + eps)
    else:
        adv = centred
    adv[~valid] = 0.0
    return adv


def kl_penalty(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, estimator: str = "k3") -> torch.Tensor:
    """Per-token estimate of KL(π_θ ‖ π_ref) from the sampled tokens' log-probs.

    ``d = ref_logprobs − logprobs``; k1 = ``−d``, k2 = ``d² / 2``, k3 = ``exp(d) − d − 1`` (low variance,
    never negative; Schulman 2020, used by GRPO).

    Args:
        logprobs: ``[B, T]`` log π_θ of the sampled tokens (with grad).
        ref_logprobs: ``[B, T]`` log π_ref of the same tokens.
        estimator: ``"k3"``, ``"k1"`` or ``"k2"``.

    Returns:
        ``[B, T]`` per-token KL estimates.

    Examples:
        >>> lp = torch.tensor([[-1.0, -2.0]])
        >>> kl_penalty(lp, lp).tolist()
        [[0.0, 0.0]]
    """
    d = ref_logprobs - logprobs
    if estimator == "k3":
        # Clamped like verl: exp of a large log-ratio would overflow and is never informative.
        d = d.clamp(-20.0, 20.0)
        return torch.exp(d) - d - 1.0
    if estimator == "k1":
        return -d
    if estimator == "k2":
        return 0.5 * d * d
    raise ValueError(f'kl_estimator must be "k3", "k1" or "k2", got {estimator!r}')


def aggregate(
    per_token: torch.Tensor,
    mask: torch.Tensor,
    mode: LossAgg = "token-mean",
    *,
    total_tokens: float | None = None,
    total_seqs: int | None = None,
    max_tokens: int | None = None,
) -> torch.Tensor:
    """Reduce a per-token loss ``[B, T]`` to a scalar.

    For gradient accumulation over micro-batches pass the totals of the *whole* batch, so that the sum
    of the micro-batches' results equals the full batch's.

    Args:
        per_token: ``[B, T]`` loss per token.
        mask: ``[B, T]`` bool, True at completion tokens.
        mode: ``"token-mean"`` ``Σ L m / N_tok``; ``"seq-mean-token-mean"`` ``Σ_i (Σ_t L m / n_i) / N_seq``;
            ``"dr-grpo"`` ``Σ L m / (N_seq · max_tokens)``.
        total_tokens: ``N_tok``; default: this batch's masked tokens.
        total_seqs: ``N_seq``; default ``B``.
        max_tokens: The constant of ``dr-grpo`` (the generation budget); default ``T``.

    Returns:
        A scalar tensor.

    Examples:
        >>> L = torch.tensor([[1.0, 3.0], [2.0, 0.0]]); m = torch.tensor([[True, True], [True, False]])
        >>> aggregate(L, m, "token-mean").item(), aggregate(L, m, "seq-mean-token-mean").item()
        (2.0, 2.0)
        >>> aggregate(L, m, "dr-grpo").item()
        1.5
    """
    m = mask.to(per_token.dtype)
    n_seq = per_token.shape[0] if total_seqs is None else total_seqs
    if mode == "token-mean":
        n_tok = m.sum() if total_tokens is None else torch.as_tensor(total_tokens, dtype=per_token.dtype)
        return (per_token * m).sum() / torch.clamp(n_tok, min=1.0)
    if mode == "seq-mean-token-mean":
        per_seq = (per_token * m).sum(-1) / m.sum(-1).clamp(min=1.0)
        return per_seq.sum() / max(n_seq, 1)
    if mode == "dr-grpo":
        t_max = per_token.shape[1] if max_tokens is None else max_tokens
        return (per_token * m).sum() / max(n_seq * t_max, 1)
    raise ValueError(f'loss_agg must be "token-mean", "seq-mean-token-mean" or "dr-grpo", got {mode!r}')


@dataclass
class LossOutput:
    """What `policy_loss` returns.

    Attributes:
        loss: Scalar to call ``backward`` on.
        policy_loss: The aggregated clipped surrogate (detached).
        kl: The aggregated KL estimate (detached; 0 when β = 0 and no reference was given).
        clip_frac: Fraction of tokens where a clip was active (detached).
        ratio_mean: Mean importance ratio over tokens (detached).
    """

    loss: torch.Tensor
    policy_loss: torch.Tensor
    kl: torch.Tensor
    clip_frac: torch.Tensor
    ratio_mean: torch.Tensor


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    clip_eps: float = 0.2,
    clip_eps_high: float | None = None,
    dual_clip: float | None = None,
    ref_logprobs: torch.Tensor | None = None,
    beta: float = 0.0,
    kl_estimator: str = "k3",
    agg: LossAgg = "token-mean",
    total_tokens: float | None = None,
    total_seqs: int | None = None,
    max_tokens: int | None = None,
) -> LossOutput:
    """GRPO's loss: clipped surrogate plus ``β`` times the per-token KL, aggregated.

    ``L_it = max(−A_i ρ_it, −A_i clip(ρ_it, 1 − ε, 1 + ε_high))``, capped at ``−c A_i`` for ``A_i < 0``
    when ``dual_clip = c``, plus ``β · KL_it``; reduced by `aggregate`.

    Args:
        logprobs: ``[B, T]`` log π_θ of the sampled tokens, with grad.
        old_logprobs: ``[B, T]`` log-probs under the policy that sampled (detached).
        advantages: ``[B]`` one per completion.
        mask: ``[B, T]`` bool.
        clip_eps: ε.
        clip_eps_high: ε_high (None = ε).
        dual_clip: c > 1, or None.
        ref_logprobs: ``[B, T]`` reference log-probs; required when ``beta > 0``.
        beta: KL coefficient.
        kl_estimator: ``"k3"`` (default), ``"k1"`` or ``"k2"``.
        agg: Aggregation mode, see `aggregate`; ``total_*`` and ``max_tokens`` are passed on to it.

    Returns:
        `LossOutput`.

    Examples:
        >>> lp = torch.zeros(2, 3, requires_grad=True)
        >>> out = policy_loss(lp, lp.detach(), torch.tensor([1.0, -1.0]), torch.ones(2, 3, dtype=torch.bool))
        >>> out.loss.item(), out.clip_frac.item()
        (0.0, 0.0)
    """
    if beta > 0 and ref_logprobs is None:
        raise ValueError("policy_loss: beta > 0 needs ref_logprobs")
    eps_high = clip_eps if clip_eps_high is None else clip_eps_high
    mask = mask.bool()
    m = mask.to(logprobs.dtype)
    adv = advantages.to(logprobs.dtype)[:, None]
    ratio = torch.exp((logprobs - old_logprobs).clamp(-20.0, 20.0))
    unclipped = -adv * ratio
    clipped = -adv * ratio.clamp(1.0 - clip_eps, 1.0 + eps_high)
    per_token = torch.maximum(unclipped, clipped)
    clip_active = clipped > unclipped
    if dual_clip is not None:
        capped = torch.minimum(per_token, -adv * dual_clip)
        dual_active = (adv < 0) & (per_token > -adv * dual_clip)
        per_token = torch.where(adv < 0, capped, per_token)
        clip_active = clip_active | dual_active
    pg = aggregate(per_token, mask, agg, total_tokens=total_tokens, total_seqs=total_seqs, max_tokens=max_tokens)
    if ref_logprobs is not None:
        kl_tok = kl_penalty(logprobs, ref_logprobs, kl_estimator)
        kl = aggregate(kl_tok, mask, agg, total_tokens=total_tokens, total_seqs=total_seqs, max_tokens=max_tokens)
    else:
        kl = torch.zeros((), dtype=logprobs.dtype, device=logprobs.device)
    loss = pg + beta * kl if beta > 0 else pg
    n_tok = m.sum().clamp(min=1.0)
    return LossOutput(
        loss=loss,
        policy_loss=pg.detach(),
        kl=kl.detach(),
        clip_frac=((clip_active.to(m.dtype) * m).sum() / n_tok).detach(),
        ratio_mean=((ratio.detach() * m).sum() / n_tok),
    )
