"""Check dqa's VMAF against Netflix's libvmaf, the reference C implementation.

The FFmpeg build in the ``imageio-ffmpeg`` wheel is linked with libvmaf and carries its built-in
models, so the check runs offline: ``python -m common.metrics.libvmaf DIST REF`` prints, for the
VMAF score and each of its six features, the largest per-frame difference between dqa (vmaf-torch on
the coded Y planes) and libvmaf; the test suite checks the registered ``vmaf`` model the same way.
libvmaf's default ``vmaf_v0.6.1`` uses fixed-point features, ``vmaf_float_v0.6.1`` the floating-point
ones that vmaf-torch reproduces.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch

FEATURES = ("adm2", "motion2", "vif_scale0", "vif_scale1", "vif_scale2", "vif_scale3")


def libvmaf_frames(dist: str | Path, ref: str | Path, model: str = "vmaf_float_v0.6.1",
                   size: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """Per-frame ``vmaf`` and features from libvmaf (keys without the ``integer_`` prefix).

    ``size`` = (w, h): scale the distorted clip (bicubic) to the reference's size first, as VMAF's
    practice is for lower rungs of a resolution ladder.
    """
    try:
        import imageio_ffmpeg
    except ImportError as exc:
        raise ImportError("libvmaf needs imageio-ffmpeg (its FFmpeg has libvmaf): pip install imageio-ffmpeg") from exc
    scale = f"scale={size[0]}:{size[1]}:flags=bicubic," if size else ""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "vmaf.json"
        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(dist), "-i", str(ref), "-lavfi",
                        f"[0:v]{scale}setpts=PTS-STARTPTS[d];[1:v]setpts=PTS-STARTPTS[r];"
                        f"[d][r]libvmaf=model=version={model}:log_fmt=json:log_path={log}:n_threads=1",
                        "-f", "null", "-"], check=True)
        frames = json.loads(log.read_text())["frames"]
    return {k.removeprefix("integer_"): np.array([f["metrics"][k] for f in frames]) for k in frames[0]["metrics"]}


def dqa_frames(dist: str | Path, ref: str | Path) -> dict[str, np.ndarray]:
    """Per-frame ``vmaf`` and the same features from dqa, on the coded Y planes that libvmaf sees."""
    from common.media import read_frames
    from common.metrics.vmaf import VmafFeatures

    d, r = (torch.stack([torch.from_numpy(f.data)[None] for f in read_frames(p, pixels="luma")]) for p in (dist, ref))
    n = min(len(d), len(r))
    d, r = d[:n], r[:n]
    vmaf = VmafFeatures()
    f = vmaf.frame_features(d, r, torch.cat([r[:1], r[:-1]]))
    motion = f[:, 1].double().numpy()
    out = {"vmaf": vmaf.scores(f).double().numpy(), "adm2": f[:, 0].double().numpy(),
           "motion2": np.minimum(motion, np.r_[motion[1:], motion[-1:]])}
    out.update({f"vif_scale{i}": f[:, 2 + i].double().numpy() for i in range(4)})
    return out


def max_differences(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> dict[str, float]:
    """Largest per-frame |dqa - libvmaf| for the score and each feature (from the two ``*_frames`` results)."""
    if len(ours["vmaf"]) != len(theirs["vmaf"]):
        raise RuntimeError(f"frame counts differ: dqa {len(ours['vmaf'])}, libvmaf {len(theirs['vmaf'])}")
    return {k: float(np.abs(ours[k] - theirs[k]).max()) for k in ("vmaf", *FEATURES)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pairs", nargs="+", help="DIST REF [DIST REF ...] video files of equal size")
    p.add_argument("--model", action="append", metavar="VERSION",
                   help="libvmaf model version, repeatable (default: vmaf_float_v0.6.1 and vmaf_v0.6.1)")
    a = p.parse_args(argv)
    if len(a.pairs) % 2:
        p.error("give distorted and reference files in pairs")
    print("| pair | libvmaf model | VMAF (libvmaf mean) | max abs diff: " + " | ".join(("vmaf", *FEATURES)) + " |")
    print("|---|---|---|" + "---|" * (1 + len(FEATURES)))
    for dist, ref in zip(a.pairs[::2], a.pairs[1::2]):
        ours = dqa_frames(dist, ref)  # once per pair: vmaf-torch is the slow side
        for model in a.model or ["vmaf_float_v0.6.1", "vmaf_v0.6.1"]:
            theirs = libvmaf_frames(dist, ref, model)
            d = max_differences(ours, theirs)
            print(f"| {Path(dist).name} vs {Path(ref).name} | {model} | {theirs['vmaf'].mean():.2f} | "
                  + " | ".join(f"{d[k]:.4f}" for k in ("vmaf", *FEATURES)) + " |")


if __name__ == "__main__":
    main()
