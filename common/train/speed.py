"""How long would backbone pretraining take here? (``python -m common.train.speed``)

Times a few training steps of :class:`~common.train.backbone.PretrainNet` for each candidate backbone width
and crop size on random data, and prints milliseconds per crop and the minutes one epoch of the set would
take (``--lists``: training lists of the set, 12 crops each), compute only (the recipe reads crops from
the once-decoded set). This is how the recipe's width 0.375 was chosen for a 2-hour budget on 2 CPU cores;
128-pixel crops then bought 12 epochs, as the first runs learned slowly rather than overfitting. On a
shared machine compare the rows of one run with each other rather than with another run.
"""
from __future__ import annotations

import argparse
import time

import torch

from common.train.backbone import PretrainLoss, PretrainNet

CANDIDATES = ((0.5, 224), (0.5, 160), (0.375, 192), (0.375, 128), (0.25, 224))


def step_seconds(width: float, crop: int, lists: int = 4, steps: int = 2, device: str = "cpu") -> float:
    """Mean seconds of one optimiser step on ``lists`` severity lists (6 images x 2 crops each)."""
    torch.manual_seed(0)
    net = PretrainNet(width).to(device)
    opt = torch.optim.AdamW(net.parameters(), 1e-3)
    loss_fn = PretrainLoss()
    batch = {"views": torch.randint(0, 256, (lists, 6, 2, 3, crop, crop), dtype=torch.uint8, device=device),
             "label": torch.rand(lists, 6, device=device) * 100}
    for i in range(steps + 1):
        if i == 1:
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        loss, _ = loss_fn.loss(net, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lists", type=int, default=2770, help="training lists per epoch (default 2770, the backbone set)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    a = p.parse_args(argv)
    print(f"torch threads {torch.get_num_threads()}, device {a.device}")
    print("| width | crop | ms per crop | minutes per epoch |\n|---|---|---|---|")
    lists = 4
    for width, crop in CANDIDATES:
        per_crop = step_seconds(width, crop, lists=lists, device=a.device) / (lists * 12)
        print(f"| {width} | {crop} | {1000 * per_crop:.0f} | {per_crop * 12 * a.lists / 60:.1f} |", flush=True)


if __name__ == "__main__":
    main()
