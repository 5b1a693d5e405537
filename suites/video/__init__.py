"""Video suite: UGC, PGC-compressed and game-compressed video (no-reference and full-reference)."""
from suites.video import data, model  # noqa: F401  (register the data recipes and the ugc, pgc, game, pgc-fr models)
