"""Frame-batching runner: decode in background workers, batch frames across files, stream results to disk.

Workers (threads: decoding and tensor work release the GIL) read files, apply the model's temporal
sampler and :meth:`Model.prepare`, and push prepared frames into a queue bounded in bytes. The main
thread groups frames of any files that share a shape into batches, runs the model under
``inference_mode`` (channels-last, autocast on CUDA), and as soon as every frame of a file is scored
it pools them, writes the file's row and syncs it to disk. Memory is bounded by the queue budget
whatever the length of the videos.
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import queue
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from common.errors import DqaError, MediaError
from common.media import (RAW_EXTS, AllFrames, Frame, RawSpec, TemporalSampler, VideoInfo, find_media, keyframe_indices,
                          media_kind, probe_video, read_media, rgb_array_to_luma, sample_indices)
from common.model import Model, Prepared, main_tensor, prepared_nbytes, prepared_shape, stack_prepared
from common.output import Writer, file_key, open_writer
from common.pooling import pool
from common.result import FrameScore, Result

log = logging.getLogger(__name__)

QUEUE_BYTES = 64 << 20  # prepared frames waiting for the model: a few batches, so the model never starves
# glibc keeps freed full-frame buffers in its heaps (decode threads allocate, the main thread frees): scoring a
# 1080p pair with PSNR peaked at 2-3.9 GB RSS with ~150 MB in use. Trimming after every TRIM_BYTES of model
# input held it at ~0.7 GB at unchanged speed (tried: trimming per batch, 30% slower; a fixed mmap threshold,
# 2x slower for SSIM; per-thread arena limits, no effect).
TRIM_BYTES = 128 << 20
# frames left waiting this long for more run as a smaller batch. On 2 CPU cores a file's keyframes arrive about 35 ms
# apart, and at 0.02 s nearly every frame ran alone, where the network costs about twice the CPU per frame that it
# does in a batch of 8 (docs/video.md, "Speed")
IDLE_FLUSH_S = 0.1
ARRAY_PATH = "<array>"
ARRAY_FPS = 25.0  # frame rate assumed for clip arrays
Scored = list[tuple[int, int, torch.Tensor | Exception]]  # (job, frame index, model output or the error raised)


@dataclass(frozen=True)
class ScoreOptions:
    """How files are read and pooled; ``None`` means the model's default."""

    sampler: TemporalSampler | None = None
    pooling: str | None = None
    raw: RawSpec | None = None
    backend: str = "auto"
    resize_ref: bool = False
    workers: int = 2
    progress: bool = True
    on_frames: Callable[[int], object] | None = None  # called with the number of frames scored so far


@dataclass
class Job:
    """One file (or array) to score, with its reference for full-reference models."""

    idx: int
    path: str
    media: Path | np.ndarray
    ref: Path | np.ndarray | None = None
    error: str | None = None  # known before decoding, e.g. no reference found


@dataclass
class _JobState:
    job: Job
    frames: dict[int, float] = field(default_factory=dict)  # frame index -> time
    outputs: dict[int, torch.Tensor] = field(default_factory=dict)
    total: int | None = None  # frames the worker produced, known at its end message
    extras: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class _Closed(Exception):
    """The consumer has stopped; producers should return."""


class _ByteQueue:
    """A FIFO that blocks producers while the bytes it holds exceed a budget (one item always fits)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.items: deque[tuple[int, tuple]] = deque()
        self.used = 0
        self.closed = False
        self.cond = threading.Condition()

    def put(self, item: tuple, nbytes: int = 0) -> None:
        """Append an item, waiting while over budget; raises _Closed once the consumer has gone."""
        with self.cond:
            while self.used and self.used + nbytes > self.budget and not self.closed:
                self.cond.wait()
            if self.closed:
                raise _Closed
            self.items.append((nbytes, item))
            self.used += nbytes
            self.cond.notify_all()

    def close(self) -> None:
        """Drop what is queued and release waiting producers."""
        with self.cond:
            self.closed = True
            self.items.clear()
            self.used = 0
            self.cond.notify_all()

    def pending(self) -> int:
        """Items waiting to be taken."""
        with self.cond:
            return len(self.items)

    def get(self, timeout: float) -> tuple | None:
        with self.cond:
            if not self.items and not self.cond.wait_for(lambda: bool(self.items), timeout):
                return None
            nbytes, item = self.items.popleft()
            self.used -= nbytes
            self.cond.notify_all()
            return item


def _error_text(exc: BaseException, path: str) -> str:
    """A one-line error that starts with the file it is about."""
    text = str(exc) if isinstance(exc, (DqaError, ValueError, TypeError)) else f"{type(exc).__name__}: {exc}"
    return text if text.startswith(path) else f"{path}: {text}"


def _kind(media: Path | np.ndarray) -> str:
    """"image" or "video" for a path or an array (HxWx3 image, TxHxWx3 clip)."""
    if isinstance(media, np.ndarray):
        return "video" if media.ndim == 4 else "image"
    return media_kind(media)


def raw_spec_for(media: Path, opts: ScoreOptions) -> RawSpec | None:
    """The raw YUV layout applies to .yuv files only."""
    return opts.raw if media.suffix.lower() in RAW_EXTS else None


def _probe(media: Path | np.ndarray, opts: ScoreOptions) -> VideoInfo | None:
    """The probe of a video file, done once per file and handed to the decoder (None for arrays)."""
    return None if isinstance(media, np.ndarray) else probe_video(media, raw=raw_spec_for(media, opts))


def plan_frames(media: Path | np.ndarray, sampler: TemporalSampler, opts: ScoreOptions = ScoreOptions(),
                context: int = 0) -> tuple[list[int] | None, VideoInfo | None]:
    """The frame indices the runner scores in a video (None for an image) and the file's probe (None for arrays
    and images). For a model with ``context`` frames, a keyframe sampler's picks move ``context`` frames on, so
    that the context frames (see :func:`with_context`) start at the keyframe and decoding still starts there."""
    if _kind(media) != "video":
        return None, None
    info = _probe(media, opts)
    n, fps = (len(media), ARRAY_FPS) if info is None else (info.n_frames, info.fps)
    keys = None if info is None or raw_spec_for(media, opts) else (lambda: keyframe_indices(media))
    indices = sample_indices(sampler, n, fps, keys)
    if context and getattr(sampler, "needs_keyframes", False):
        indices = sorted({min(k + context, n - 1) for k in indices})
    return indices, info


def with_context(indices: list[int] | None, context: int) -> list[int] | None:
    """The frames to decode: the sampled ones with the ``context`` frames before each (those that exist), sorted
    (an image's None as it is)."""
    if indices is None or not context:
        return indices
    return sorted({k - j for k in indices for j in range(context + 1) if k - j >= 0})


def _frames(media: Path | np.ndarray, indices: list[int] | None, opts: ScoreOptions, pixels: str,
            info: VideoInfo | None = None) -> Iterator[Frame]:
    """The given frames of a file or array (an image is a single frame), as ``pixels`` says."""
    if isinstance(media, np.ndarray):
        if media.ndim not in (3, 4) or media.shape[-1] != 3:
            raise ValueError(f"expected an HxWx3 image or a TxHxWx3 clip array, got shape {media.shape}")
        clip = media[None] if media.ndim == 3 else media
        wanted = [0] if indices is None else sorted({i for i in indices if 0 <= i < len(clip)})
        return (Frame(i, i / ARRAY_FPS, rgb_array_to_luma(clip[i]) if pixels == "luma" else clip[i]) for i in wanted)
    return read_media(media, indices, raw=raw_spec_for(media, opts), backend=opts.backend, pixels=pixels, info=info)


def _match_ref(frame: np.ndarray, ref: np.ndarray, job: Job, resize_ref: bool) -> np.ndarray:
    """The reference frame at the distorted frame's size, or a clear error when they differ."""
    if ref.shape[:2] == frame.shape[:2]:
        return ref
    h, w = frame.shape[:2]
    if not resize_ref:
        raise MediaError(job.path, f"is {w}x{h} but its reference {job.ref} is {ref.shape[1]}x{ref.shape[0]}; "
                                   "pass --resize-ref to scale the reference to the distorted size")
    t = torch.from_numpy(np.ascontiguousarray(ref)).float()
    t = t[None, None] if ref.ndim == 2 else t.permute(2, 0, 1)[None]
    t = F.interpolate(t, size=(h, w), mode="bicubic", antialias=True, align_corners=False)[0]
    out = t[0] if ref.ndim == 2 else t.permute(1, 2, 0)
    if ref.dtype.kind == "f":
        return out.numpy()
    return out.round().clamp(0, np.iinfo(ref.dtype).max).numpy().astype(ref.dtype)


def _pairs(dist: Iterator[Frame], refs: Iterator[Frame] | None, extras: dict[str, Any],
           still: bool = False) -> Iterator[tuple[Frame, Frame | None]]:
    """Distorted frames with the reference frames of the same index; notes in ``extras`` when counts differ.

    A ``still`` reference (an image) is the reference of every distorted frame. Closing the pairs (or reaching
    their end) closes both decoders.
    """
    n = 0
    try:
        if refs is None:
            yield from ((f, None) for f in dist)
            return
        if still:
            image = next(refs)
            yield from ((f, image) for f in dist)
            return
        while True:
            frame, ref = next(dist, None), next(refs, None)
            if frame is None or ref is None:
                if frame is not None or ref is not None:
                    longer = "distorted file" if frame is not None else "reference"
                    extras["unpaired_frames"] = f"the {longer} has more frames; scored the first {n} pairs"
                return
            if frame.index != ref.index:
                raise DqaError(f"distorted frame {frame.index} met reference frame {ref.index}; the files "
                               "do not decode to the same frame sequence")
            n += 1
            yield frame, ref
    finally:
        for it in (dist, refs):
            if hasattr(it, "close"):  # stop the decoders of a pair cut short
                it.close()


def _work(model: Model, job: Job, opts: ScoreOptions, out: _ByteQueue) -> None:
    """Decode one job and push its prepared frames, then an end or error message."""
    sampler = opts.sampler or model.sampler
    state: dict[str, Any] = {}
    n = 0
    extras: dict[str, Any] = {}
    try:
        if job.error:
            raise DqaError(job.error)
        if model.mode == "FR" and job.ref is None:
            raise DqaError(f"{job.path}: model {model.name} is full-reference; give a reference with --ref")
        pixels = model.pixels
        kind = _kind(job.media)
        ref_kind = _kind(job.ref) if model.mode == "FR" else None
        to_luma = False
        if ref_kind not in (None, kind) and pixels == "luma":
            pixels, to_luma = "rgb", True  # image against video: the same BT.601 luma of RGB on both sides
            extras["luma"] = "BT.601 of decoded RGB on both sides (an image paired with a video)"
        indices, info = plan_frames(job.media, sampler, opts, model.context_frames)  # both sides: pairs align
        scored = set(indices) if indices is not None and model.context_frames else None
        indices = with_context(indices, model.context_frames)
        ref_info = None
        if kind == "video":
            n_dist = len(job.media) if info is None else info.n_frames
            if ref_kind == "video":
                ref_info = _probe(job.ref, opts)
                n_ref = len(job.ref) if ref_info is None else ref_info.n_frames
                if n_ref != n_dist:
                    extras["unpaired_frames"] = (f"the distorted file has {n_dist} frames and the reference "
                                                 f"{n_ref}; frames present in both were scored")
        model.begin(job.media, state)
        dist = _frames(job.media, indices, opts, pixels, info)
        refs = None
        if ref_kind is not None:
            ref_indices = None if ref_kind == "image" else indices if kind == "video" else [0]
            refs = _frames(job.ref, ref_indices, opts, pixels, ref_info)
        pairs = _pairs(dist, refs, extras, still=ref_kind == "image")
        last = indices[-1] if indices else None
        try:
            for frame, ref in pairs:
                data, ref_data = frame.data, None if ref is None else ref.data
                if to_luma:
                    data, ref_data = rgb_array_to_luma(data), rgb_array_to_luma(ref_data)
                if ref_data is not None and not model.sizes_own_reference:
                    ref_data = _match_ref(data, ref_data, job, opts.resize_ref)
                if scored is not None and frame.index not in scored:
                    model.observe(data, ref_data, state)
                    continue
                x = model.prepare(data, ref_data, state)
                out.put(("frame", job.idx, frame.index, frame.time, x), prepared_nbytes(x))
                n += 1
                if frame.index == last:  # the last planned frame: report the end before the decoders shut down
                    break
            if "unpaired_frames" in extras:
                log.warning("%s: %s", job.path, extras["unpaired_frames"])
            if n == 0:
                raise MediaError(job.path, "no frames could be decoded")
            out.put(("end", job.idx, n, extras))
        finally:
            pairs.close()  # and with it the decoders
    except _Closed:
        raise
    except Exception as exc:  # one bad file must never stop the run
        log.debug("failed on %s", job.path, exc_info=True)
        out.put(("error", job.idx, _error_text(exc, job.path)))


def _malloc_trim() -> Callable[[], object]:
    """glibc's ``malloc_trim(0)``, which hands freed heap pages back to the OS; a no-op elsewhere."""
    try:
        return functools.partial(ctypes.CDLL(None).malloc_trim, 0)
    except (OSError, AttributeError):
        return lambda: None


_release_freed_memory = _malloc_trim()


def _autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def _on_device(model: Model, batch: torch.Tensor) -> torch.Tensor:
    """A batch (or one element of a tuple batch) on the model's device, channels-last where the model wants it
    (4-D images)."""
    batch = batch.to(model.device, non_blocking=True)
    if model.channels_last and batch.ndim == 4:
        batch = batch.contiguous(memory_format=torch.channels_last)
    return batch


def model_forward(model: Model, batch: Prepared) -> torch.Tensor:
    """A stacked batch of prepared items through the model on its device (channels-last, autocast on CUDA);
    float outputs on the CPU."""
    batch = _on_device(model, batch) if isinstance(batch, torch.Tensor) else tuple(_on_device(model, t) for t in batch)
    with torch.inference_mode(), _autocast(model.device, model.autocast):
        return model.forward(batch).float().cpu()


class _Batcher:
    """Groups prepared frames by shape across files and runs the model on full (or flushed) groups."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.buckets: dict[tuple, list[tuple[int, int, Prepared]]] = defaultdict(list)
        self.buffered_bytes = 0
        self.calls = 0
        self.since_trim = 0

    def add(self, job_idx: int, frame_idx: int, x: Prepared) -> Scored:
        key = prepared_shape(x)
        self.buckets[key].append((job_idx, frame_idx, x))
        self.buffered_bytes += prepared_nbytes(x)
        if len(self.buckets[key]) >= self.model.batch_size(main_tensor(x).shape):
            return self.run(key)
        if self.buffered_bytes > QUEUE_BYTES:
            return self.run(max(self.buckets, key=lambda k: len(self.buckets[k])))
        return []

    def holds(self, job_idx: int) -> bool:
        """Whether frames of this job wait in a bucket."""
        return any(j == job_idx for items in self.buckets.values() for j, _, _ in items)

    def flush(self) -> Scored:
        out = []
        for key in list(self.buckets):
            out += self.run(key)
        return out

    def run(self, key: tuple) -> Scored:
        items = self.buckets.pop(key)
        self.buffered_bytes -= sum(prepared_nbytes(x) for _, _, x in items)
        try:
            ys = self._forward(stack_prepared([x for _, _, x in items]))
            return [(j, f, y) for (j, f, _), y in zip(items, ys)]
        except Exception as exc:
            if len(items) == 1:
                return [(items[0][0], items[0][1], exc)]
            log.debug("batch of %d failed (%s); retrying items one by one", len(items), exc)
            results: Scored = []
            for j, f, x in items:
                try:
                    results.append((j, f, self._forward(stack_prepared([x]))[0]))
                except Exception as item_exc:
                    results.append((j, f, item_exc))
            return results

    def _forward(self, batch: Prepared) -> torch.Tensor:
        self.calls += 1
        self.since_trim += prepared_nbytes(batch)
        out = model_forward(self.model, batch)
        if self.since_trim >= TRIM_BYTES:
            self.since_trim = 0
            _release_freed_memory()
        return out


def _finish(model: Model, st: _JobState, pooling: str) -> Result:
    """Pool a job's frames into its Result (or an error row)."""
    job = st.job
    base = dict(path=job.path, pooling=pooling, model=model.name, weights_sha256=model.weights_sha256)
    if job.ref is not None and not isinstance(job.ref, np.ndarray):
        st.extras.setdefault("ref", str(job.ref))
    if st.error:
        return Result(score=None, error=st.error, extras=st.extras, **base)
    order = sorted(st.outputs)
    try:
        scores, extras = model.finalize(torch.stack([st.outputs[i] for i in order]))
        pooled = pool(scores, pooling)
    except Exception as exc:
        return Result(score=None, error=_error_text(exc, job.path), extras=st.extras, **base)
    frames = [FrameScore(i, st.frames[i], float(s)) for i, s in zip(order, scores)]
    bad = int(np.sum(~np.isfinite(scores)))
    if bad:
        extras = {**extras, "nonfinite_frames": bad}
        log.warning("%s: %d frames had no finite score and were left out of the pooled score", job.path, bad)
    return Result(score=pooled, frames=frames, extras={**st.extras, **extras}, **base)


def run_jobs(model: Model, jobs: Sequence[Job], opts: ScoreOptions = ScoreOptions(),
             writer: Writer | None = None) -> list[Result]:
    """Score jobs with batching across files; each finished file is written before later ones start."""
    pooling = opts.pooling or model.pooling
    pool(np.ones(1), pooling)  # reject an unknown pooling before any work
    if model.consecutive_frames and opts.sampler is not None and not isinstance(opts.sampler, AllFrames):
        raise ValueError(f"model {model.name} needs every frame (temporal features); drop --sampler")
    if not jobs:
        return []
    q = _ByteQueue(QUEUE_BYTES)
    todo: queue.SimpleQueue[Job] = queue.SimpleQueue()
    for job in jobs:
        todo.put(job)
    n_workers = max(1, min(opts.workers, len(jobs)))

    def worker() -> None:
        while True:
            try:
                _work(model, todo.get_nowait(), opts, q)
            except (queue.Empty, _Closed):
                return

    threads = [threading.Thread(target=worker, name=f"dqa-decode-{i}", daemon=True) for i in range(n_workers)]
    for t in threads:
        t.start()
    states = {job.idx: _JobState(job) for job in jobs}
    results: dict[int, Result] = {}
    batcher = _Batcher(model)
    bar = tqdm(total=len(jobs), unit="file", disable=not opts.progress, dynamic_ncols=True, desc=model.name)
    n_frames, t0 = 0, time.perf_counter()

    def complete(idx: int) -> None:
        st = states[idx]
        if idx in results or (st.error is None and (st.total is None or len(st.outputs) < st.total)):
            return
        res = _finish(model, st, pooling)
        results[idx] = res
        if writer is not None:
            writer.write(res)
        if res.error:
            log.warning("%s", res.error)
        bar.update(1)

    def collect(scored: Scored) -> None:
        nonlocal n_frames
        touched = set()
        for j, f, y in scored:
            st = states[j]
            if isinstance(y, Exception):
                st.error = st.error or _error_text(y, st.job.path)
            elif st.error is None:
                st.outputs[f] = y
                n_frames += 1
            touched.add(j)
        for j in touched:
            complete(j)
        if opts.on_frames is not None:
            opts.on_frames(n_frames)
        bar.set_postfix(frames_s=f"{n_frames / max(time.perf_counter() - t0, 1e-9):.1f}", refresh=False)

    try:
        while len(results) < len(jobs):
            msg = q.get(timeout=IDLE_FLUSH_S if batcher.buckets else 0.5)
            if msg is None:
                collect(batcher.flush())
                continue
            kind, idx = msg[0], msg[1]
            st = states[idx]
            if kind == "frame":
                _, _, frame_idx, t, x = msg
                st.frames[frame_idx] = t
                collect(batcher.add(idx, frame_idx, x))
            elif kind == "end":
                st.total, st.extras = msg[2], msg[3]
                last_job = len(results) == len(jobs) - 1  # every other file is done: nothing else will come
                if last_job and not q.pending() and batcher.holds(idx):  # so score its last frames now
                    collect(batcher.flush())
                complete(idx)
            else:
                st.error = msg[2]
                complete(idx)
    finally:
        q.close()
        bar.close()
    log.info("scored %d files, %d frames in %d model calls", len(jobs), n_frames, batcher.calls)
    return [results[job.idx] for job in jobs]


def _closest(d: Path, cands: list[Path], ref: Path) -> tuple[Path | None, str | None]:
    """The candidate whose folders under ``ref`` match the tail of ``d``'s folders best; an error if tied."""
    def shared(r: Path) -> int:
        n = 0
        for a, b in zip(reversed(d.parent.parts), reversed(r.relative_to(ref).parent.parts)):
            if a != b:
                break
            n += 1
        return n

    best = max(shared(r) for r in cands)
    top = [r for r in cands if shared(r) == best]
    if len(top) == 1:
        return top[0], None
    return None, f"{d}: ambiguous reference, {' and '.join(map(str, top[:3]))} match equally; mirror the folder layout"


def pair_references(dist: Sequence[Path], ref: Path, refs: Sequence[Path],
                    dist_roots: Sequence[Path]) -> list[tuple[Path, Path | None, str | None]]:
    """Pair each distorted file with one of ``refs`` (the media under the folder ``ref``) by name.

    In order: the same relative path, the same file name, the same stem with any extension, and
    the longest stem that prefixes the distorted stem followed by ``_``, ``-`` or ``.``
    (``clip_crf30.mp4`` -> ``clip.y4m``), as encoding ladders name their outputs. Several matches
    are told apart by their folders; a tie is an error row.
    """
    by_rel = {r.relative_to(ref): r for r in refs}
    by_name: dict[str, list[Path]] = defaultdict(list)
    by_stem: dict[str, list[Path]] = defaultdict(list)
    for r in refs:
        by_name[r.name].append(r)
        by_stem[r.stem].append(r)
    pairs = []
    for d in dist:
        rel = next((d.relative_to(root) for root in dist_roots if root.is_dir() and d.is_relative_to(root)), None)
        if rel is not None and rel in by_rel:
            pairs.append((d, by_rel[rel], None))
            continue
        cands = by_name.get(d.name) or by_stem.get(d.stem)
        if not cands:
            prefixes = [s for s in by_stem if len(d.stem) > len(s) and d.stem.startswith(s) and d.stem[len(s)] in "_-."]
            cands = by_stem[max(prefixes, key=len)] if prefixes else []
        if not cands:
            pairs.append((d, None, f"{d}: no reference found in {ref} (looked for the same name, stem, or a stem prefix)"))
            continue
        pairs.append((d, *_closest(d, cands, ref)))
    return pairs


def build_jobs(paths: Sequence[str | Path], ref: str | Path | None = None, mode: str = "NR") -> list[Job]:
    """Jobs for every media file under ``paths``, paired with references for FR models.

    References are left out of the distorted files (a reference folder inside a scored folder,
    or a reference file among them), unless that would leave nothing to score.
    """
    roots = [Path(p) for p in paths]
    files = find_media(roots)
    if not files:
        raise ValueError(f"no image or video files found in {', '.join(map(str, roots))}")
    if mode == "FR" and ref is None:
        raise ValueError("this model is full-reference: pass the reference file or folder with --ref")
    if ref is None:
        return [Job(i, file_key(str(f)), f) for i, f in enumerate(files)]
    ref_path = Path(ref)
    if ref_path.is_file():
        refs = [ref_path]
    elif ref_path.is_dir():
        inner = [r.resolve() for r in roots if r.is_dir() and r.resolve() != ref_path.resolve()
                 and r.resolve().is_relative_to(ref_path.resolve())]
        refs = [r for r in find_media([ref_path]) if not any(r.resolve().is_relative_to(i) for i in inner)]
    else:
        raise ValueError(f"--ref {ref_path}: no such file or folder")
    ref_keys = {r.resolve() for r in refs}
    files = [f for f in files if f.resolve() not in ref_keys] or files
    if ref_path.is_file():
        return [Job(i, file_key(str(d)), d, ref_path) for i, d in enumerate(files)]
    pairs = pair_references(files, ref_path, refs, roots)
    return [Job(i, file_key(str(d)), d, r, err) for i, (d, r, err) in enumerate(pairs)]


def score_folder(model: Model | str, paths: Sequence[str | Path], ref: str | Path | None = None,
                 out: str | Path | None = None, fmt: str | None = None, resume: bool = False,
                 device: str = "auto", weights: str | None = None, **options: Any) -> list[Result]:
    """Score every image and video under ``paths`` (recursively), writing each row as it finishes.

    ``out`` is a .jsonl, .csv or .json file (or ``-`` for JSONL on stdout); ``options`` are
    :class:`ScoreOptions` fields. With ``resume``, files already in ``out`` are skipped and new
    rows appended. Returns the results of the files scored in this call.
    """
    from common.registry import load_model

    if resume and out is None:
        raise ValueError("resume needs an output file: it skips the files already written there")
    if isinstance(model, str):
        model = load_model(model, device=device, weights=weights)
    opts = ScoreOptions(**options)
    jobs = build_jobs(paths, ref, model.mode)
    writer = None
    if out is not None:
        writer = open_writer(out, fmt, resume, model.name, model.metric, model.weights_sha256)
    try:
        if writer is not None and writer.done:
            before = len(jobs)
            jobs = [j for j in jobs if file_key(j.path) not in writer.done]
            log.info("resuming: %d of %d files already in %s", before - len(jobs), before, out)
        return run_jobs(model, jobs, opts, writer)
    finally:
        if writer is not None:
            writer.close()


def score_one(model: Model, media: str | Path | np.ndarray, ref: str | Path | np.ndarray | None = None,
              **options: Any) -> Result:
    """Score a single file or array (``Model.score``); errors come back in ``Result.error``."""
    options.setdefault("progress", False)
    opts = ScoreOptions(**options)
    if isinstance(media, np.ndarray):
        job = Job(0, ARRAY_PATH, media, ref if isinstance(ref, np.ndarray) else (Path(ref) if ref else None))
    else:
        path = Path(media)
        if not path.exists():
            raise MediaError(path, "no such file")
        job = Job(0, str(path), path, ref if isinstance(ref, np.ndarray) else (Path(ref) if ref else None))
    return run_jobs(model, [job], opts)[0]
