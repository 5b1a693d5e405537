"""Night-image suite: low-light quality."""
from suites.night import data  # noqa: F401  (registers the night data recipe)
