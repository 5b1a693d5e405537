"""Linear probe: does a frozen backbone's pooled feature carry quality? (``python -m common.train.probe``)

Ridge regression from :meth:`ResNetBackbone.pooled` features of whole images to the teacher label is
fitted on the set's training contents (a fixed random subset of rows; the ridge strength chosen by
content-grouped cross-validation) and scored on the held-out contents, where the D-, L- and P-tests
and the label correlations are measured exactly as ``dqa eval`` measures models. The same probe on a
randomly initialised backbone of the same shape is the control; ``--baselines`` adds BRISQUE and NIQE
rows on the same items. Results merge into ``docs/eval/<suite>.md``.
"""
from __future__ import annotations

import argparse
import logging
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from common.backbone import ResNetBackbone
from common.data.manifest import Item, read_manifest
from common.eval.run import Evaluation, Scored, evaluate, shown_path, tabulate
from common.eval.stats import srcc
from common.weights import load_manifest, load_state, record_measured, sha256_file, weights_dir

log = logging.getLogger(__name__)

ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0)


@torch.inference_mode()
def pooled_features(backbone: ResNetBackbone, items: list[Item], batch: int = 8, progress: bool = True) -> np.ndarray:
    """(N, D) pooled features of each row's whole image; rows of equal size share a forward pass."""
    backbone.eval()
    out = np.zeros((len(items), backbone.feature_dim), np.float32)
    order = sorted(range(len(items)), key=lambda i: (items[i].content, str(items[i].path)))
    bar = tqdm(total=len(items), unit="img", disable=not progress, desc="features", dynamic_ncols=True)
    group: list[tuple[int, np.ndarray]] = []

    def flush() -> None:
        x = torch.from_numpy(np.stack([img for _, img in group])).permute(0, 3, 1, 2).float() / 255
        feats = backbone.pooled(x).numpy()
        for (i, _), f in zip(group, feats):
            out[i] = f
        bar.update(len(group))
        group.clear()

    for i in order:
        img = np.asarray(Image.open(items[i].path).convert("RGB"))
        if group and (len(group) == batch or group[0][1].shape != img.shape):
            flush()
        group.append((i, img))
    if group:
        flush()
    bar.close()
    return out


@dataclass
class Ridge:
    """Standardised-feature ridge regression ``y = ((x - mean) / std) @ w + b``."""

    mean: np.ndarray
    std: np.ndarray
    w: np.ndarray
    b: float
    alpha: float

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, alpha: float) -> Ridge:
        mean, std = x.mean(0), x.std(0) + 1e-6
        z = (x - mean) / std
        w = np.linalg.solve(z.T @ z + alpha * len(z) / 100 * np.eye(z.shape[1]), z.T @ (y - y.mean()))
        return cls(mean, std, w, float(y.mean()), alpha)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std) @ self.w + self.b


def fit_probe(x: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: int = 5) -> Ridge:
    """Ridge with the strength that gives the best content-grouped cross-validated SRCC."""
    ids = np.unique(groups)
    fold_of = {g: k % folds for k, g in enumerate(ids)}
    fold = np.array([fold_of[g] for g in groups])
    best, best_alpha = -np.inf, ALPHAS[0]
    for alpha in ALPHAS:
        pred = np.zeros_like(y)
        for k in range(folds):
            held = fold == k
            if held.any() and (~held).any():
                pred[held] = Ridge.fit(x[~held], y[~held], alpha).predict(x[held])
        score = srcc(pred, y)
        log.info("ridge alpha %g: cross-validated SRCC %.4f", alpha, score)
        if score > best:
            best, best_alpha = score, alpha
    return Ridge.fit(x, y, best_alpha)


def load_backbone(path: str | Path) -> ResNetBackbone:
    """A backbone from a ``dqa train backbone`` file (fp16 state and its width/blocks config)."""
    state = load_state(Path(path))
    cfg = state.get("config", {})
    net = ResNetBackbone(width=cfg.get("width", 1.0), blocks=tuple(cfg.get("blocks", (2, 2, 2, 2))))
    net.load_state_dict({k: v.float() for k, v in state["backbone"].items()})
    return net


def probe(set_dir: str | Path, weights: str | Path, out_dir: Path = Path("docs/eval"), suite: str = "backbone",
          n_train: int = 4000, seed: int = 0, baselines: bool = False, progress: bool = True,
          command: str = "") -> Evaluation:
    """Probe the backbone in ``weights`` and a random-init control on a set; merge the rows into the table."""
    man = read_manifest(set_dir)
    label = man.meta.get("label", "fused")
    train = [i for i in man.items if i.split == "train" and label in i.labels]
    rng = np.random.default_rng(seed)
    train = [train[k] for k in sorted(rng.choice(len(train), min(n_train, len(train)), replace=False))]
    test = man.select("test")
    if baselines:
        evaluate(set_dir, ["niqe", "brisque"], out_dir=out_dir, suite=suite, progress=progress)
    trained = load_backbone(weights)
    torch.manual_seed(seed)
    control = ResNetBackbone(width=trained.width, blocks=trained.blocks)
    scored = []
    for name, net, sha in (("backbone-probe", trained, sha256_file(Path(weights))),
                           ("random-init-probe", control, None)):
        x_train = pooled_features(net, train, progress=progress)
        y = np.array([i.labels[label] for i in train])
        ridge = fit_probe(x_train, y, np.array([i.content for i in train]))
        pred = ridge.predict(pooled_features(net, test, progress=progress))
        log.info("%s: alpha %g, %d training rows", name, ridge.alpha, len(train))
        scored.append(Scored(name, "NR", True, sha, pred.astype(np.float64), []))
    if not command:
        options = {"--out": str(out_dir) != "docs/eval" and str(out_dir), "--suite": suite != "backbone" and suite,
                   "--n-train": n_train != 4000 and str(n_train)}
        command = shlex.join(["python", "-m", "common.train.probe", "--set", shown_path(man.csv.parent),
                              "--weights", str(weights), *(x for k, v in options.items() if v for x in (k, v)),
                              *(["--baselines"] if baselines else [])])
    ev = tabulate(man, test, scored, "test", label, 20.0, out_dir, suite, command)
    record_probe(Path(weights), ev.table, man.sha256, command)
    return ev


def record_probe(weights: Path, table: dict, set_sha256: str, command: str) -> None:
    """Put the probe table's figures in the weights manifest when ``weights`` is the shipped file it lists."""
    if weights.resolve().parent != weights_dir().resolve():
        return
    entry = load_manifest().get(weights.stem)
    if entry is None or entry.get("sha256") != sha256_file(weights):
        log.warning("%s is not the file its manifest entry lists; its probe figures stay out of the manifest", weights)
        return
    keys = ("n", "srcc", "plcc", "d_auc", "l_test", "p_test")
    record_measured(weights.stem, {"held_out_linear_probe": {
        "set_sha256": set_sha256, "command": command,
        **{r["model"]: {k: round(r[k], 4) if isinstance(r[k], float) else r[k] for k in keys}
           for r in table["models"]}}})


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--set", dest="set_dir", required=True, help="a set built by `dqa data build` (e.g. the backbone set)")
    p.add_argument("--weights", required=True, help="backbone file from `dqa train backbone`")
    p.add_argument("--out", default="docs/eval", help="table folder (default docs/eval)")
    p.add_argument("--suite", default="backbone", help="table name (default backbone)")
    p.add_argument("--n-train", type=int, default=4000, help="training rows for the ridge (default 4000)")
    p.add_argument("--baselines", action="store_true", help="also evaluate BRISQUE and NIQE on the same items")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    ev = probe(a.set_dir, a.weights, Path(a.out), a.suite, a.n_train, baselines=a.baselines)
    print(ev.markdown)


if __name__ == "__main__":
    main()
