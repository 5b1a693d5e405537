"""Reductions shared by the backbone pooling and the classic cues, written for speed on the CPU."""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


def mean_std(x: Tensor, dims: Sequence[int], correction: int = 0) -> tuple[Tensor, Tensor]:
    """Mean and standard deviation of ``x`` over ``dims`` (``correction=1``: the sample deviation), those dims
    dropped. Without autograd, two passes of plain element-wise ops: the values of ``torch.std_mean`` within float
    rounding, at a fifth of its time on the CPU whatever the memory format (channels-last maps included). With
    autograd, ``torch.std_mean`` itself, whose gradient is zero rather than NaN where the deviation is zero."""
    dims = tuple(dims)
    if torch.is_grad_enabled() and x.requires_grad:
        std, mean = torch.std_mean(x, dims, correction=correction)
        return mean, std
    m = x.mean(dims, keepdim=True)
    d = x - m
    n = math.prod(x.shape[k] for k in dims)
    return m.squeeze(dims), d.mul_(d).sum(dims).div_(n - correction).sqrt_()
