"""Video suite: UGC, PGC-compressed and game-compressed video (no-reference and full-reference)."""
from suites.video import data  # noqa: F401  (registers the ugc, pgc and game data recipes)
