"""The dqa web demo: one Gradio Blocks app with a tab per suite, built from the model registry.

Every registered model appears in the tab of its suite (a new suite's models appear with no edit here),
general models in "General" and the classic metrics in "Classic metrics". A tab scores an uploaded file or
a bundled sample against an optional reference and shows the pooled 0-100 score with its ACR word, the
per-frame plot and the worst and best frames of a video, the quality (or error) map of an image, and the
result as a JSON download.

Safety: uploads are capped in size and type; the only server files a page can name are the bundled samples;
every failure shows as a message in the page (never a stack trace); models run on the CPU.
"""
from __future__ import annotations

import argparse
import functools
import importlib
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.errors import DqaError
from common.maps import quality_map
from common.media import load_image, media_kind
from common.model import Model
from common.registry import ModelSpec, get_spec, list_models, load_model
from common.runner import ScoreOptions, plan_frames, score_one
from common.weights import weights_status
from apps.options import DEFAULT_HOST, DEFAULT_MAX_MB, DEFAULT_PORT
from apps.widgets import (UPLOAD_EXTS, UploadError, band, check_upload, extreme_frames, frame_table, heat_overlay,
                          paired_sample, samples, user_message, write_json)

log = logging.getLogger(__name__)

NO_SAMPLE = "(none)"
GROUP_TITLES = {"common": ("General", "General no-reference image and video quality from the shared backbone."),
                "classic": ("Classic metrics", "Full-reference metrics (PSNR, SSIM, MS-SSIM, GMSD, VMAF) and "
                                               "no-reference classics (NIQE, BRISQUE, ...), as published.")}


def tab_groups() -> list[tuple[str, str, str, list[ModelSpec]]]:
    """(key, title, blurb, models) per tab: suites in name order, then General, then Classic metrics; in a tab,
    models whose weights are missing come last (the first model is the tab's default)."""
    by_suite: dict[str, list[ModelSpec]] = {}
    for spec in sorted(list_models(), key=lambda s: s.weights is not None and weights_status(s.weights) != "ok"):
        by_suite.setdefault(spec.suite, []).append(spec)
    order = sorted(k for k in by_suite if k not in GROUP_TITLES) + [k for k in GROUP_TITLES if k in by_suite]
    groups = []
    for key in order:
        if key in GROUP_TITLES:
            title, blurb = GROUP_TITLES[key]
        else:
            title, blurb = _suite_title(key, by_suite[key][0])
        groups.append((key, title, blurb, by_suite[key]))
    return groups


def _suite_title(key: str, spec: ModelSpec) -> tuple[str, str]:
    """A suite tab's title and blurb, from the first line of its package's docstring ("Video suite: ...")."""
    module = spec.cls.__module__
    if not module.startswith("suites."):
        return key, ""
    doc = (importlib.import_module(".".join(module.split(".")[:2])).__doc__ or key).strip().splitlines()[0]
    return doc.split(":")[0].removesuffix(" suite").strip() or key, doc


@functools.lru_cache(maxsize=None)
def cpu_model(name: str) -> Model:
    """A registered model on the CPU, loaded once per process."""
    return load_model(name, device="cpu")


class Scorer:
    """The handler behind every tab's Score button (``max_bytes``: the upload limit, checked again here)."""

    def __init__(self, max_bytes: int, out_dir: Path) -> None:
        self.max_bytes, self.out_dir = max_bytes, out_dir

    def _pick(self, upload: str | None, sample: str | None, what: str, names: dict[str, str]) -> Path:
        if upload:
            path = check_upload(upload, self.max_bytes)
            names[str(path)] = path.name
            return path
        if sample and sample != NO_SAMPLE:
            known = samples()
            if sample not in known:  # a page can only name the bundled samples
                raise UploadError(f"unknown sample {sample!r}")
            names[str(known[sample])] = sample
            return known[sample]
        raise UploadError(f"upload {what} or pick a bundled sample")

    def __call__(self, name: str, upload: str | None, sample: str | None, ref_upload: str | None,
                 ref_sample: str | None, progress: Callable[..., Any]) -> dict[str, Any]:
        """Score and return the outputs by role (see :func:`_outputs`); ``error`` is set instead when it fails."""
        names: dict[str, str] = {}
        try:
            spec = get_spec(name)
            path = self._pick(upload, sample, "an image or a video", names)
            ref = self._pick(ref_upload, ref_sample, "the reference", names) if spec.mode == "FR" else None
            kind = media_kind(path)
            if kind not in spec.inputs:
                raise UploadError(f"{path.name}: model {name} scores {' and '.join(spec.inputs)} files, not {kind}s")
            model = cpu_model(name)
            progress(0.0, desc="reading")
            indices, _ = plan_frames(path, model.sampler, ScoreOptions(), model.context_frames)
            total = len(indices) if indices else 1
            result = score_one(model, path, ref, on_frames=lambda n: progress(n / total, desc=f"{n}/{total} frames"))
            if result.error:
                raise DqaError(result.error)
            json_path = write_json(result, model.metric, Path(tempfile.mkdtemp(dir=self.out_dir)))
            out: dict[str, Any] = {"score": round(float(result.score), 3), "band": band(result.score, spec),
                                   "json": str(json_path)}
            if kind == "video":
                out["plot"] = frame_table(result)
                out["frames"] = extreme_frames(path, result, spec.higher_better)
            elif model.map_tile is not None and (ref is None or media_kind(ref) == "image"):
                image = load_image(path)
                qmap = quality_map(model, image, None if ref is None else load_image(ref))
                out["map"] = heat_overlay(model.map_frame(image), qmap.goodness())
                out["map_label"] = (f"Error map against {names.get(str(ref), 'the reference')} (red: furthest from it)"
                                    if ref is not None else "Quality map (red: worse, green: better)")
            return out
        except (DqaError, ValueError, TypeError, OSError) as exc:
            return {"error": user_message(str(exc), names)}
        except Exception as exc:  # never a stack trace in the page: log it, show one line
            log.exception("demo: scoring failed")
            return {"error": user_message(f"{type(exc).__name__}: {exc}", names)}


def _outputs(gr: Any, res: dict[str, Any]) -> list[Any]:
    """Component updates in the order of a tab's outputs: status, score, band, plot, frames, map, json."""
    import pandas as pd

    err = res.get("error")
    status = f"**Could not score:** {err}" if err else "Scored."
    plot, frames, qmap = res.get("plot"), res.get("frames"), res.get("map")
    return [gr.update(value=status),
            gr.update(value=res.get("score")), gr.update(value=res.get("band", "")),
            gr.update(value=pd.DataFrame(plot) if plot else None, visible=bool(plot)),
            gr.update(value=frames or None, visible=bool(frames)),
            gr.update(value=qmap, visible=qmap is not None, label=res.get("map_label")),
            gr.update(value=res.get("json"), visible="json" in res)]


def _tab(gr: Any, key: str, title: str, blurb: str, specs: list[ModelSpec], scorer: Scorer) -> None:
    """One tab: inputs on the left, results on the right."""
    choices = [(f"{s.name}: {s.description}", s.name) for s in specs]
    sample_names = [NO_SAMPLE, *samples()]
    first_fr = specs[0].mode == "FR"
    with gr.Tab(title, id=key, elem_id=f"tab-{key}"):
        gr.Markdown(blurb)
        with gr.Row():
            with gr.Column():
                model = gr.Dropdown(choices, value=specs[0].name, label="Model", elem_id=f"{key}-model")
                media = gr.File(label="Image or video", file_types=list(UPLOAD_EXTS), elem_id=f"{key}-media")
                sample = gr.Dropdown(sample_names, value=NO_SAMPLE, label="or a bundled sample",
                                     elem_id=f"{key}-sample")
                ref = gr.File(label="Reference", file_types=list(UPLOAD_EXTS), visible=first_fr,
                              elem_id=f"{key}-ref")
                ref_sample = gr.Dropdown(sample_names, value=NO_SAMPLE, label="or a bundled reference",
                                         visible=first_fr, elem_id=f"{key}-ref-sample")
                go = gr.Button("Score", variant="primary", elem_id=f"{key}-go")
            with gr.Column():
                status = gr.Markdown(elem_id=f"{key}-status")
                score = gr.Number(label="Score", interactive=False, elem_id=f"{key}-score")
                verdict = gr.Textbox(label="Verdict", interactive=False, elem_id=f"{key}-band")
                plot = gr.LinePlot(x="time (s)", y="score", label="Per-frame score", visible=False,
                                   elem_id=f"{key}-plot")
                frames = gr.Gallery(label="Worst and best frames", columns=2, height=280, object_fit="contain",
                                    visible=False, elem_id=f"{key}-frames")
                qmap = gr.Image(label="Quality map (red: worse, green: better)", interactive=False, visible=False,
                                elem_id=f"{key}-map")
                download = gr.File(label="Result (JSON)", interactive=False, visible=False, elem_id=f"{key}-json")

        def on_model(name: str) -> list[Any]:
            fr = get_spec(name).mode == "FR"
            return [gr.update(visible=fr), gr.update(visible=fr)]

        def on_sample(name: str, current: str) -> Any:
            pair = paired_sample(name) if name and name.startswith("dist/") else None
            return gr.update(value=pair or current)

        def on_score(name: str, upload: str | None, pick: str | None, ref_upload: str | None, ref_pick: str | None,
                     progress: gr.Progress = gr.Progress()) -> list[Any]:
            return _outputs(gr, scorer(name, upload, pick, ref_upload, ref_pick, progress))

        model.change(on_model, model, [ref, ref_sample])
        sample.change(on_sample, [sample, ref_sample], ref_sample)
        go.click(on_score, [model, media, sample, ref, ref_sample],
                 [status, score, verdict, plot, frames, qmap, download])


def build_app(max_mb: float = DEFAULT_MAX_MB) -> Any:
    """The Blocks app (not launched)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no network: no telemetry, no version check
    import gradio as gr

    out_dir = Path(tempfile.mkdtemp(prefix="dqa-demo-"))
    scorer = Scorer(int(max_mb * 2**20), out_dir)
    with gr.Blocks(title="dqa: domain-specific quality assessment", analytics_enabled=False) as app:
        gr.Markdown("# dqa\nScore an image or a video with any dqa model. Scores are 0-100, higher is better, "
                    "unless a model says otherwise. Everything runs on this machine's CPU.")
        with gr.Tabs():
            for key, title, blurb, specs in tab_groups():
                _tab(gr, key, title, blurb, specs, scorer)
    return app


def launch(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, share: bool = False, max_mb: float = DEFAULT_MAX_MB,
           block: bool = True) -> Any:
    """Build and serve the app; ``block=False`` returns at once (tests)."""
    import gradio as gr

    theme = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
    app = build_app(max_mb)
    app.queue(default_concurrency_limit=1)
    app.launch(server_name=host, server_port=port, share=share, max_file_size=f"{max_mb:g}mb",
               prevent_thread_lock=not block, quiet=not block, ssr_mode=False, show_error=False, theme=theme,
               footer_links=[])
    return app


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    if args.port < 0 or args.port > 65535:
        raise ValueError(f"--port must be 0-65535, got {args.port}")
    if args.max_upload_mb <= 0:
        raise ValueError(f"--max-upload-mb must be positive, got {args.max_upload_mb}")
    launch(args.host, args.port, args.share, args.max_upload_mb)
    return 0
