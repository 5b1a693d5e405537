"""Model registry: suites register models on import; ``load_model`` builds one by name."""
from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

import torch

from common.errors import WeightsError
from common.model import Model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSpec:
    """What ``dqa list`` shows about a model, and how to build it."""

    name: str
    cls: type[Model]
    description: str
    suite: str
    weights: str | None = None  # manifest key, None for models without learned weights
    extra: str | None = None  # pip extra the model needs, if any
    factory: Callable[..., Model] | None = None

    @property
    def mode(self) -> str:
        return self.cls.mode

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.cls.inputs

    @property
    def higher_better(self) -> bool:
        return self.cls.higher_better

    @property
    def score_range(self) -> tuple[float, float]:
        return self.cls.score_range


_REGISTRY: dict[str, ModelSpec] = {}
_DISCOVERED = False
_BUILTIN_MODULES = ("common.metrics.models", "common.metrics.nr_models", "common.quality")


def register(spec: ModelSpec) -> ModelSpec:
    """Add a model; a suite calls this at import time. Re-registering a name replaces it."""
    _REGISTRY[spec.name] = spec
    return spec


def _discover() -> None:
    """Import the built-in metric models and every subpackage of ``suites`` so they register."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    for mod in _BUILTIN_MODULES:
        importlib.import_module(mod)
    import suites

    for info in pkgutil.iter_modules(suites.__path__, "suites."):
        importlib.import_module(info.name)


def list_models() -> list[ModelSpec]:
    """Every registered model, sorted by suite then name."""
    _discover()
    return sorted(_REGISTRY.values(), key=lambda s: (s.suite, s.name))


def get_spec(name: str) -> ModelSpec:
    """The spec of a registered model, or ValueError listing the known names."""
    _discover()
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))} (see `dqa list`)")
    return _REGISTRY[name]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else CPU; asking for CUDA without one is an error."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but no CUDA GPU is available; use --device cpu or auto")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {device!r}; use auto, cpu or cuda")
    return dev


def load_model(name: str, device: str | torch.device = "auto", weights: str | None = None) -> Model:
    """Build a registered model on a device, with its shipped weights or a user's ``weights`` file."""
    spec = get_spec(name)
    dev = resolve_device(device)
    if weights is not None and spec.weights is None:
        raise WeightsError(f"model {name!r} has no learned weights, so --weights does not apply")
    build = spec.factory or spec.cls
    model = build(device=dev, weights=weights) if spec.weights is not None else build(device=dev)
    log.debug("loaded %r", model)
    return model
