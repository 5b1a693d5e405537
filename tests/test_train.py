"""The shared trainer and losses: known answers for each loss, learning, exact resume, early stopping."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from common.train import (TrainConfig, Trainer, UncertaintyWeighting, batch_kl_loss, epoch_order, info_nce, l1_loss,
                          mse_loss, plcc_loss, rank_loss)

T = torch.tensor([10.0, 40.0, 70.0, 90.0])


def test_absolute_losses() -> None:
    assert l1_loss(T + 2, T).item() == pytest.approx(2.0)
    assert mse_loss(T + 2, T).item() == pytest.approx(4.0)
    with pytest.raises(ValueError, match="equal length"):
        l1_loss(T, T[:3])


def test_rank_loss_counts_only_misordered_pairs_within_groups() -> None:
    assert rank_loss(T, T).item() == 0.0
    assert rank_loss(-T, T).item() > 0
    assert rank_loss(T, T, margin=100.0).item() > rank_loss(T, T, margin=1.0).item()
    # pairs 0-1 and 2-3 are misordered, but each sits in its own group with correct order inside
    pred, groups = torch.tensor([3.0, 4.0, 1.0, 2.0]), torch.tensor([0, 0, 1, 1])
    assert rank_loss(pred, T).item() > 0 and rank_loss(pred, T, groups=groups).item() == 0.0
    assert rank_loss(T, torch.zeros(4)).item() == 0.0  # no pair qualifies
    assert rank_loss(-T, T, min_gap=100).item() == 0.0


def test_plcc_loss_sees_linearity_not_scale() -> None:
    assert plcc_loss(3 * T - 7, T).item() == pytest.approx(0.0, abs=1e-6)
    assert plcc_loss(-T, T).item() == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="at least 2"):
        plcc_loss(T[:1], T[:1])


def test_batch_kl_sees_relative_distances_only() -> None:
    assert batch_kl_loss(T + 25, T).item() == pytest.approx(0.0, abs=1e-6)
    assert batch_kl_loss(T.flip(0), T).item() > 0.1
    assert batch_kl_loss(T * 0.5, T).item() > 0  # distances shrunk
    with pytest.raises(ValueError, match="tau"):
        batch_kl_loss(T, T, tau=0)


def test_info_nce_prefers_matching_rows() -> None:
    torch.manual_seed(0)
    a = torch.randn(8, 16)
    assert info_nce(a, a + 0.01 * torch.randn(8, 16)).item() < info_nce(a, torch.randn(8, 16)).item()
    assert info_nce(a, a, negatives=torch.randn(4, 16)).item() < 0.1


def test_uncertainty_weighting_learns_to_down_weight_a_noisy_task() -> None:
    w = UncertaintyWeighting(["clean", "noisy"])
    opt = torch.optim.SGD(w.parameters(), lr=0.1)
    for _ in range(200):
        opt.zero_grad()
        w({"clean": torch.tensor(0.1), "noisy": torch.tensor(5.0)}).backward()
        opt.step()
    weights = w.weights()
    assert weights["clean"] > 3 * weights["noisy"]  # optimum exp(-s) = 1 / L
    with pytest.raises(ValueError, match="missing"):
        w({"clean": torch.tensor(1.0)})


class Linear(Dataset):
    """y = quality of x through a fixed random direction, plus label noise."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 8, generator=g)
        self.y = 50 + 10 * (self.x @ torch.linspace(-1, 1, 8)) + torch.randn(n, generator=g)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {"x": self.x[i], "y": self.y[i]}


class Regress:
    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        p = model(batch["x"]).squeeze(1)
        rank = rank_loss(p, batch["y"], margin=1.0)
        return l1_loss(p, batch["y"]) + rank, {"rank": rank.item()}

    def predict(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        return model(batch["x"]).squeeze(1), batch["y"]


def _net() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))


CFG = dict(epochs=4, batch_size=16, lr=1e-2, warmup_steps=5, progress=False)


def test_training_raises_validation_srcc(tmp_path: Path) -> None:
    model = _net()
    trainer = Trainer(model, Regress(), Linear(256, 0), Linear(64, 1), TrainConfig(**CFG), tmp_path / "ck.pt")
    before = trainer.validate()["val_srcc"]
    fit = trainer.fit()
    assert fit.stopped == "epochs" and fit.epochs == 4 and fit.steps == 64
    assert fit.best_srcc > max(0.75, before + 0.3), (before, fit.best_srcc)
    log = [json.loads(line) for line in (tmp_path / "ck.log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2, 3, 4] and all("val_plcc" in r and "train_loss" in r for r in log)


def test_a_stopped_run_resumes_to_the_same_weights(tmp_path: Path) -> None:
    whole = Trainer(_net(), Regress(), Linear(200, 0), Linear(40, 1), TrainConfig(**CFG), tmp_path / "a.pt")
    whole.fit()
    first = Trainer(_net(), Regress(), Linear(200, 0), Linear(40, 1), TrainConfig(**CFG, max_steps=19), tmp_path / "b.pt")
    assert first.fit().stopped == "max_steps"  # stopped mid-epoch 2 (13 batches per epoch)
    assert torch.load(tmp_path / "b.pt", weights_only=True)["state"]["batch"] == 6
    second = Trainer(_net(), Regress(), Linear(200, 0), Linear(40, 1), TrainConfig(**CFG), tmp_path / "b.pt")
    fit = second.fit()
    assert fit.steps == 52 and fit.epochs == 4
    for (k, a), b in zip(whole.model.state_dict().items(), second.model.state_dict().values()):
        assert torch.equal(a, b), k


def test_early_stopping_and_best_weights_restored(tmp_path: Path) -> None:
    class Worsening(Regress):
        def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
            return -l1_loss(model(batch["x"]).squeeze(1), batch["y"]), {}  # moves away from the labels

    cfg = TrainConfig(**{**CFG, "epochs": 20}, patience=2)
    trainer = Trainer(_net(), Worsening(), Linear(64, 0), Linear(32, 1), cfg, tmp_path / "ck.pt")
    fit = trainer.fit()
    assert fit.stopped == "early stop" and fit.epochs == fit.best_epoch + 2 < 20
    assert trainer.validate()["val_srcc"] == pytest.approx(fit.best_srcc)
    again = Trainer(_net(), Worsening(), Linear(64, 0), Linear(32, 1), cfg, tmp_path / "ck.pt")
    refit = again.fit()  # re-running a finished run trains no further epoch and gives its best weights
    assert (refit.stopped, refit.epochs, refit.steps, refit.best_epoch) == ("early stop", fit.epochs, fit.steps,
                                                                           fit.best_epoch)
    assert all(torch.equal(a, b) for a, b in zip(trainer.model.state_dict().values(),
                                                 again.model.state_dict().values()))



def test_weight_averaging_ends_with_the_mean_of_the_last_epochs_and_resumes(tmp_path: Path) -> None:
    """``average_from``: the run ends with the mean of the weights at the end of that epoch and every later one
    (not the best epoch's), reports its validation SRCC, and a run stopped mid-way resumes to the same mean."""
    snapshots: list[dict[str, Tensor]] = []

    class Snapshots(Trainer):
        def _log(self, row: dict) -> None:
            super()._log(row)
            snapshots.append({k: v.clone() for k, v in self.model.state_dict().items()})

    cfg = TrainConfig(**CFG, average_from=2)
    trainer = Snapshots(_net(), Regress(), Linear(200, 0), Linear(40, 1), cfg, tmp_path / "a.pt")
    fit = trainer.fit()
    assert fit.averaged == 3 and len(snapshots) == 4
    for k, v in trainer.model.state_dict().items():
        assert torch.allclose(v, torch.stack([s[k] for s in snapshots[1:]]).mean(0), atol=1e-6), k
    assert fit.averaged_srcc == pytest.approx(trainer.validate()["val_srcc"])
    assert Trainer(_net(), Regress(), Linear(200, 0), Linear(40, 1), TrainConfig(**CFG)).fit().averaged == 0
    stopped = Trainer(_net(), Regress(), Linear(200, 0), Linear(40, 1), TrainConfig(**CFG, average_from=2,
                                                                                   max_steps=30), tmp_path / "b.pt")
    assert stopped.fit().stopped == "max_steps"  # mid-epoch 3, one epoch averaged
    resumed = Trainer(_net(), Regress(), Linear(200, 0), Linear(40, 1), cfg, tmp_path / "b.pt")
    assert resumed.fit().averaged == 3
    assert all(torch.equal(a, b) for a, b in zip(trainer.model.state_dict().values(),
                                                 resumed.model.state_dict().values()))

def test_frozen_parameters_and_bad_settings(tmp_path: Path) -> None:
    model = _net()
    frozen = [p.detach().clone() for p in model[0].parameters()]
    for p in model[0].parameters():
        p.requires_grad_(False)
    Trainer(model, Regress(), Linear(64, 0), config=TrainConfig(**{**CFG, "epochs": 1})).fit()
    assert all(torch.equal(a, b) for a, b in zip(frozen, model[0].parameters()))
    with pytest.raises(ValueError, match="frozen"):
        Trainer(model, Regress(), Linear(8, 0), params=list(model[0].parameters()))
    with pytest.raises(ValueError, match="empty"):
        Trainer(_net(), Regress(), Linear(0, 0))


def test_epoch_order_is_a_fixed_permutation() -> None:
    a = epoch_order(50, seed=3, epoch=1)
    assert a == epoch_order(50, seed=3, epoch=1) and sorted(a) == list(range(50))
    assert a != epoch_order(50, seed=3, epoch=2)


def test_resuming_with_other_settings_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    Trainer(_net(), Regress(), Linear(64, 0), config=TrainConfig(**CFG, max_steps=3), checkpoint=tmp_path / "c.pt").fit()
    caplog.set_level(logging.WARNING, logger="common.train.trainer")
    Trainer(_net(), Regress(), Linear(64, 0), config=TrainConfig(**{**CFG, "lr": 0.5}), checkpoint=tmp_path / "c.pt").fit()
    assert f"continuing with the new ones (lr: {CFG['lr']} -> 0.5)" in caplog.text
