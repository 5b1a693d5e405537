"""Screen-content suite."""
from suites.screen import data  # noqa: F401  (registers the screen data recipe)
