"""Underwater suite: underwater image quality and enhancement."""
from suites.underwater import data  # noqa: F401  (registers the underwater data recipe)
