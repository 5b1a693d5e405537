"""Backbone + head quality models, composed as in CenseoQoE: the shared network and the general ``iqa`` model.

:class:`QualityNet` is the shared ResNet-18-family backbone, its pooled multi-level statistics, a
BatchNorm and an MLP head that maps them to quality 0-100. ``dqa train backbone`` trains it (plus a
contrastive projection) on every domain; the file it writes holds the backbone and this head, so the
pretrained network is itself a general no-reference model, registered as ``iqa``, and the starting
point of ``dqa finetune``.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from common.backbone import ResNetBackbone, fold_batchnorm
from common.errors import WeightsError
from common.media import UniformK, grid_crops, resize, to_tensor
from common.model import Model, Prepared
from common.registry import ModelSpec, register
from common.weights import load_weights

WORK_SIDE = 768  # frames are scaled down (never up) so their short side is at most this, as in pretraining
CROP = 224
VIEWS = 3


def mlp(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    """A one-hidden-layer ReLU MLP; ``hidden=0``: a linear layer (a linear fusion, as VMAF's of its metrics)."""
    if hidden == 0:
        return nn.Sequential(nn.Linear(d_in, d_out))
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, d_out))


class HeadEnsemble(nn.Module):
    """``k`` BatchNorm + MLP heads (each as :func:`mlp` makes it) on one feature vector, run as grouped 1x1
    convolutions, and the mean of their outputs: (B, D) -> (B, 1). Heads trained from several seeds on one frozen
    backbone (Lakshminarayanan et al., "Simple and scalable predictive uncertainty estimation using deep
    ensembles", NeurIPS 2017) average out the luck of each run at almost no cost, the backbone being shared."""

    def __init__(self, d: int, hidden: int, k: int) -> None:
        super().__init__()
        if k < 2:
            raise ValueError(f"an ensemble needs at least 2 heads, got {k}")
        self.k = k
        self.norm = nn.BatchNorm1d(k * d)
        width = k * (hidden or d)
        self.hidden = nn.Conv1d(k * d, width, 1, groups=k) if hidden else None
        self.out = nn.Conv1d(width, k, 1, groups=k)

    def forward(self, f: Tensor) -> Tensor:
        x = self.norm(f.repeat(1, self.k)).unsqueeze(2)
        if self.hidden is not None:
            x = torch.relu(self.hidden(x))
        return self.out(x).squeeze(2).mean(1, keepdim=True)

    @torch.no_grad()
    def load_heads(self, heads: list[tuple[nn.BatchNorm1d, nn.Sequential]]) -> None:
        """Take the weights of ``k`` trained (BatchNorm, :func:`mlp`) pairs, in order."""
        if len(heads) != self.k:
            raise ValueError(f"{len(heads)} heads for an ensemble of {self.k}")
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(self.norm, name).copy_(torch.cat([getattr(norm, name) for norm, _ in heads]))
        layers = [(self.hidden, 0), (self.out, -1)] if self.hidden is not None else [(self.out, 0)]
        for conv, i in layers:
            conv.weight.copy_(torch.cat([m[i].weight for _, m in heads]).unsqueeze(2))
            conv.bias.copy_(torch.cat([m[i].bias for _, m in heads]))


class QualityNet(nn.Module):
    """Backbone -> pooled mean/std of every stage -> BatchNorm -> MLP -> quality ``50 + 25 * head``.

    The pooled statistics differ in scale by orders of magnitude, and the small ones (early-stage spread) carry
    blur and noise; per-feature BatchNorm puts every one on a unit scale. A LayerNorm here normalised the
    vector as a whole, so those features stayed negligible and the head learned content instead of quality.
    """

    def __init__(self, width: float = 0.375, blocks: tuple[int, int, int, int] = (2, 2, 2, 2), hidden: int = 256,
                 inputs: int = 1, input_unit: float = 1.0) -> None:
        super().__init__()
        self.backbone = ResNetBackbone(width=width, blocks=blocks)
        # the head reads ``inputs`` blocks of ``input_unit`` x the pooled feature width (subclasses concatenate more)
        d = int(self.backbone.feature_dim * input_unit) * inputs
        self.hidden = hidden
        self.norm = nn.BatchNorm1d(d)
        self.quality = mlp(d, hidden, 1)
        self.backbone_frozen = False

    def features(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) RGB in [0, 1] -> normalised pooled features (B, D); training needs B > 1."""
        return self.norm(self.backbone.pooled(x))

    def head(self, f: Tensor) -> Tensor:
        return 50 + 25 * self.quality(f).squeeze(1)

    def forward(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) -> quality (B,); (B, V, 3, h, w) views -> the mean over each sample's views."""
        if x.ndim == 5:
            b, v = x.shape[:2]
            return self(x.flatten(0, 1)).view(b, v).mean(1)
        return self.head(self.features(x))

    def freeze_backbone(self, train_stages: int = 0) -> None:
        """Train only the head and the backbone's last ``train_stages`` stages (0-4); the other weights and every
        BatchNorm statistic of the backbone stay as they are (so scoring can still fold them into the convolutions)."""
        if not 0 <= train_stages <= 4:
            raise ValueError(f"train_stages must be 0-4, got {train_stages}")
        self.backbone_frozen = True
        trained = tuple(f"layer{i}." for i in range(5 - train_stages, 5))
        for name, p in self.backbone.named_parameters():
            p.requires_grad_(bool(train_stages) and name.startswith(trained))

    def train(self, mode: bool = True) -> QualityNet:
        super().train(mode)
        if self.backbone_frozen:
            self.backbone.eval()
        return self

    def config(self) -> dict[str, Any]:
        """What :meth:`build` needs to make this network again (stored in the weight file)."""
        return {"width": self.backbone.width, "blocks": list(self.backbone.blocks), "hidden": self.hidden}

    @classmethod
    def build(cls, cfg: dict[str, Any]) -> QualityNet:
        """A fresh network from a weight file's ``config``."""
        return cls(width=float(cfg.get("width", 0.375)), blocks=tuple(cfg.get("blocks", (2, 2, 2, 2))),
                   hidden=int(cfg.get("hidden", 256)))

    @property
    def reads_backbone(self) -> bool:
        """Whether the head reads the backbone's features (subclasses' cue-only heads do not)."""
        return True

    def export(self, meta: dict[str, Any] | None = None) -> dict[str, Any]:
        """The weight-file form (fp16): ``config``, ``backbone`` (left out where the head does not read it) and
        ``quality`` (norm + head) state dicts."""
        half = {k: (v.detach().half() if v.is_floating_point() else v).cpu() for k, v in self.state_dict().items()}
        backbone = {k.removeprefix("backbone."): v for k, v in half.items() if k.startswith("backbone.")}
        return {"config": {**(meta or {}), **self.config()}, **({"backbone": backbone} if self.reads_backbone else {}),
                "quality": {k: v for k, v in half.items() if k.startswith(("norm.", "quality."))}}

    @classmethod
    def from_export(cls, state: dict[str, Any], where: str = "weights") -> QualityNet:
        """Rebuild from :meth:`export`'s form (a WeightsError says what is missing or mismatched)."""
        missing = [k for k in ("config", "quality") if k not in state]
        if not missing:
            net = cls.build(state["config"])
            missing += ["backbone"] if net.reads_backbone and "backbone" not in state else []
        if missing:
            raise WeightsError(f"{where}: not a dqa quality-network file (no {', '.join(missing)}); "
                               "use a file written by `dqa train backbone` or `dqa finetune`")
        backbone = state["backbone"] if net.reads_backbone else net.backbone.state_dict()  # unread: as built
        tensors = {**{f"backbone.{k}": v for k, v in backbone.items()}, **state["quality"]}
        try:
            net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in tensors.items()})
        except RuntimeError as exc:
            raise WeightsError(f"{where}: the tensors do not match the network in its config ({exc})") from exc
        return net


def _views_last(batch: Prepared) -> Prepared:
    """(B, V, 3, H, W) views channels-last per view, as the convolutions run fastest (in a tuple, its first
    element: the views)."""
    if not isinstance(batch, Tensor):
        return (_views_last(batch[0]), *batch[1:])
    if batch.ndim == 5:
        return batch.flatten(0, 1).contiguous(memory_format=torch.channels_last).unflatten(0, batch.shape[:2])
    return batch


class QualityModel(Model):
    """General no-reference quality (0-100) of images and video frames from the pretrained :class:`QualityNet`.

    Each frame is scaled down so its short side is at most 768 pixels (the pretraining scale) and scored
    as the mean of three 224-pixel crops spread over it; a video is pooled over 8 uniform frames.
    """

    name = "iqa"
    mode = "NR"
    channels_last = True
    autocast = True
    weights_name = "backbone"
    net_class: type[QualityNet] = QualityNet
    map_tile = CROP

    def __init__(self, device: str | torch.device = "cpu", weights: str | Path | None = None) -> None:
        state, sha = load_weights(self.weights_name, weights)
        super().__init__(device, weights_sha256=sha)
        self.net = self.net_class.from_export(state, str(weights or self.weights_name)).eval()
        self.inference_net = copy.deepcopy(self.net)  # scoring runs this copy, with BatchNorm folded into the convs;
        self.inference_net.backbone = fold_batchnorm(self.net.backbone)  # ``net`` stays the trainable network
        self.config = dict(state["config"])
        self.sampler = UniformK(8)
        self.to(self.device)

    def working_frame(self, frame: np.ndarray) -> Tensor:
        x = to_tensor(frame)
        return resize(x, WORK_SIDE) if min(x.shape[-2:]) > WORK_SIDE else x

    def map_frame(self, frame: np.ndarray) -> np.ndarray:
        return self.working_frame(frame).mul(255).round_().clamp_(0, 255).byte().permute(1, 2, 0).numpy()

    def prepare(self, frame: np.ndarray, ref: np.ndarray | None, state: dict[str, Any]) -> Prepared:
        return grid_crops(self.working_frame(frame), CROP, VIEWS)

    def train_views(self, frame: np.ndarray, rng: np.random.Generator, state: dict[str, Any]) -> Prepared:
        """Training input of one frame of a file (``state`` as :meth:`begin` left it): ``VIEWS`` random crops at the
        working scale, flipped together at random."""
        x = self.working_frame(frame)
        if min(x.shape[-2:]) < CROP:
            x = grid_crops(x, CROP, 1)[0]
        h, w = x.shape[-2:]
        crops = [x[:, y:y + CROP, x0:x0 + CROP] for y, x0 in
                 zip(rng.integers(0, h - CROP + 1, VIEWS), rng.integers(0, w - CROP + 1, VIEWS))]
        views = torch.stack(crops)
        return views.flip(-1) if rng.random() < 0.5 else views

    def forward(self, batch: Prepared) -> Tensor:
        return self.inference_net(_views_last(batch)).clamp(0, 100)

    def to(self, device: str | torch.device) -> Model:
        super().to(device)
        self.net.to(self.device, memory_format=torch.channels_last)
        self.inference_net.to(self.device, memory_format=torch.channels_last)
        return self


register(ModelSpec("iqa", QualityModel, "General no-reference quality 0-100 from the quality-aware pretrained backbone",
                   suite="common", weights="backbone"))
