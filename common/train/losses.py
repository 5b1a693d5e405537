"""Training losses for quality models: absolute, rank, linearity and batch-distribution terms.

All take ``pred`` and ``target`` as 1-D tensors on one scale (quality 0-100 for our teachers) and
return a scalar. Suites combine them; :class:`UncertaintyWeighting` balances several heads.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _pair(pred: Tensor, target: Tensor, what: str, min_len: int = 1) -> None:
    if pred.ndim != 1 or pred.shape != target.shape:
        raise ValueError(f"{what}: pred and target must be 1-D of equal length, got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")
    if len(pred) < min_len:
        raise ValueError(f"{what}: needs a batch of at least {min_len}, got {len(pred)}")


def l1_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error: robust to the occasional teacher outlier."""
    _pair(pred, target, "l1_loss")
    return F.l1_loss(pred, target.to(pred.dtype))


def mse_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared error."""
    _pair(pred, target, "mse_loss")
    return F.mse_loss(pred, target.to(pred.dtype))


def rank_loss(pred: Tensor, target: Tensor, groups: Tensor | None = None, margin: float = 0.0,
              min_gap: float = 0.0) -> Tensor:
    """Pairwise margin ranking: for every pair whose targets differ by more than ``min_gap`` (within one
    group, e.g. one content x distortion list, when ``groups`` is given), penalise
    ``max(0, margin - sign(t_i - t_j) (p_i - p_j))``. Zero when no pair qualifies."""
    _pair(pred, target, "rank_loss")
    dt = target[:, None] - target[None, :]
    valid = dt > min_gap
    if groups is not None:
        if groups.shape != pred.shape:
            raise ValueError("rank_loss: groups must have one id per sample")
        valid &= groups[:, None] == groups[None, :]
    if not valid.any():
        return pred.sum() * 0.0
    dp = pred[:, None] - pred[None, :]
    return F.relu(margin - dp[valid]).mean()


def plcc_loss(pred: Tensor, target: Tensor) -> Tensor:
    """``(1 - PLCC) / 2`` over the batch: rewards linearity with the labels whatever their offset and scale
    (Li et al., "Norm-in-Norm loss", ACM MM 2020)."""
    _pair(pred, target, "plcc_loss", min_len=2)
    p, t = pred - pred.mean(), target.to(pred.dtype) - target.mean()
    r = (p * t).sum() / (p.norm() * t.norm()).clamp_min(1e-8)
    return (1 - r) / 2


def batch_kl_loss(pred: Tensor, target: Tensor, tau: float = 10.0) -> Tensor:
    """KL divergence between the batch distributions ``softmax(target / tau)`` and ``softmax(pred / tau)``.

    A softmax over the batch ignores a common shift, so the loss sees only the relative distances among
    the batch samples (Cong et al., "Image Quality Assessment with Gradient Siamese Network", CVPRW 2022).
    ``tau`` is in label units.
    """
    _pair(pred, target, "batch_kl_loss", min_len=2)
    if tau <= 0:
        raise ValueError(f"batch_kl_loss: tau must be positive, got {tau}")
    log_q = F.log_softmax(pred / tau, 0)
    log_p = F.log_softmax(target.to(pred.dtype) / tau, 0)
    return F.kl_div(log_q, log_p, log_target=True, reduction="sum")


def info_nce(a: Tensor, b: Tensor, temperature: float = 0.1, negatives: Tensor | None = None) -> Tensor:
    """Contrastive loss: row ``i`` of ``a`` should match row ``i`` of ``b`` among all rows of ``b`` (and the
    extra ``negatives``), on cosine similarity (van den Oord et al. 2018; as used for quality-aware
    features by Madhusudana et al., "CONTRIQUE", IEEE TIP 2022)."""
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"info_nce: a and b must be (N, D) of equal shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
    keys = b if negatives is None else torch.cat([b, F.normalize(negatives, dim=1)])
    logits = a @ keys.T / temperature
    return F.cross_entropy(logits, torch.arange(len(a), device=a.device))


class UncertaintyWeighting(nn.Module):
    """Sum of task losses weighted by learned homoscedastic uncertainty: ``sum exp(-s_k) L_k + s_k``
    (Kendall, Gal & Cipolla, "Multi-task learning using uncertainty to weigh losses", CVPR 2018)."""

    def __init__(self, tasks: list[str] | tuple[str, ...]) -> None:
        super().__init__()
        if not tasks or len(set(tasks)) != len(tasks):
            raise ValueError("UncertaintyWeighting needs distinct task names")
        self.tasks = tuple(tasks)
        self.log_vars = nn.Parameter(torch.zeros(len(self.tasks)))

    def forward(self, losses: dict[str, Tensor]) -> Tensor:
        missing = set(self.tasks) - set(losses)
        if missing:
            raise ValueError(f"UncertaintyWeighting: missing task losses {sorted(missing)}")
        return sum(torch.exp(-s) * losses[t] + s for t, s in zip(self.tasks, self.log_vars))  # type: ignore[return-value]

    def weights(self) -> dict[str, float]:
        """Current weight ``exp(-s_k)`` of each task."""
        return {t: float(torch.exp(-s)) for t, s in zip(self.tasks, self.log_vars.detach())}
