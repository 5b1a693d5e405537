"""Data engine: pristine sources, degradations, label teachers and dataset builders (DESIGN section 5)."""
