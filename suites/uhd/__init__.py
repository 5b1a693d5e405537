"""4K suite: true vs pseudo (upscaled) 4K, plus quality."""
from suites.uhd import data  # noqa: F401  (registers the uhd data recipe)
