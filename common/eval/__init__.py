"""Evaluation harness (DESIGN section 6): correlations with teacher labels and the Waterloo D/L/P tests."""
from .protocol import DEFAULT_MARGIN, Assessment, assess
from .run import DEFAULT_MODELS, Evaluation, default_models, evaluate
from .stats import auc, correlations, krcc, srcc

__all__ = ["DEFAULT_MARGIN", "DEFAULT_MODELS", "Assessment", "Evaluation", "assess", "auc", "correlations",
           "default_models", "evaluate", "krcc", "srcc"]
