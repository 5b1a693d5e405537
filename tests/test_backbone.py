"""The backbone: multi-level outputs, width multiplier, torchvision-compatible keys, checkpoint loading."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from common.backbone import ResNetBackbone, fold_batchnorm, load_torchvision_checkpoint
from common.reduce import mean_std
from common.errors import WeightsError


def _torchvision_resnet18_keys() -> set[str]:
    """The state-dict keys of torchvision's resnet18 without ``fc``, spelled out from its layout."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = {"conv1.weight"} | {f"bn1.{b}" for b in bn}
    for layer in range(1, 5):
        for block in range(2):
            p = f"layer{layer}.{block}"
            keys |= {f"{p}.conv1.weight", f"{p}.conv2.weight"}
            keys |= {f"{p}.bn{i}.{b}" for i in (1, 2) for b in bn}
        if layer > 1:
            keys |= {f"layer{layer}.0.downsample.0.weight"} | {f"layer{layer}.0.downsample.1.{b}" for b in bn}
    return keys


def test_stage_outputs_and_strides() -> None:
    net = ResNetBackbone().eval()
    with torch.inference_mode():
        feats = net(torch.rand(2, 3, 96, 128))
    assert [f.shape[1] for f in feats] == [64, 128, 256, 512]
    assert [tuple(f.shape[2:]) for f in feats] == [(24, 32), (12, 16), (6, 8), (3, 4)]
    assert net.pooled(torch.rand(1, 3, 64, 64)).shape == (1, net.feature_dim)


def test_keys_match_torchvision_resnet18() -> None:
    state = ResNetBackbone().state_dict()
    assert set(state) == _torchvision_resnet18_keys()
    assert state["layer3.0.downsample.0.weight"].shape == (256, 128, 1, 1)
    assert sum(v.numel() for k, v in state.items() if "running" not in k and "num_batches" not in k) == 11_176_512


def test_width_multiplier() -> None:
    net = ResNetBackbone(width=0.25)
    assert net.channels == (16, 32, 64, 128)
    assert net(torch.rand(1, 3, 64, 64))[-1].shape[1] == 128
    with pytest.raises(ValueError, match="width"):
        ResNetBackbone(width=0)


def test_rejects_non_rgb_input() -> None:
    with pytest.raises(ValueError, match="RGB"):
        ResNetBackbone()(torch.rand(1, 1, 32, 32))


def test_load_torchvision_checkpoint(tmp_path: Path) -> None:
    src = ResNetBackbone()
    state = {f"module.{k}": v for k, v in src.state_dict().items()}
    state["module.fc.weight"] = torch.zeros(1000, 512)
    state["module.fc.bias"] = torch.zeros(1000)
    path = tmp_path / "resnet18.pth"
    torch.save({"state_dict": state}, path)
    loaded = load_torchvision_checkpoint(path)
    assert torch.equal(loaded.conv1.weight, src.conv1.weight)
    with pytest.raises(WeightsError, match="width"):
        load_torchvision_checkpoint(path, ResNetBackbone(width=0.5))
    with pytest.raises(WeightsError, match="no such"):
        load_torchvision_checkpoint(tmp_path / "missing.pth")


def test_folded_batchnorm_gives_the_same_features() -> None:
    torch.manual_seed(0)
    net = ResNetBackbone(width=0.25)
    with torch.no_grad():  # non-trivial BatchNorm statistics and affine parameters
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    net.eval()
    folded = fold_batchnorm(net)
    x = torch.rand(2, 3, 96, 96)
    with torch.inference_mode():
        assert torch.allclose(net.pooled(x), folded.pooled(x), atol=1e-4, rtol=1e-4)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())  # the original is untouched


def test_mean_std_matches_torch_and_keeps_gradients_finite() -> None:
    """The fast two-pass deviation gives torch's values on channels-last maps; under autograd a map of zeros (a
    dead channel) gets a zero gradient, not NaN."""
    x = torch.relu(torch.randn(4, 8, 10, 10) + 1).contiguous(memory_format=torch.channels_last)
    x[:, 0] = 0
    with torch.no_grad():
        mean, std = mean_std(x, (2, 3))
        ref_std, ref_mean = torch.std_mean(x, (2, 3), correction=0)
        assert torch.allclose(mean, ref_mean, atol=1e-6) and torch.allclose(std, ref_std, atol=1e-6)
        sample = mean_std(x.flatten(1), (1,), 1)[1]
        assert torch.allclose(sample, x.flatten(1).std(1), atol=1e-6)
    x.requires_grad_(True)
    mean, std = mean_std(x, (2, 3))
    (mean.sum() + std.sum()).backward()
    assert torch.isfinite(x.grad).all()
