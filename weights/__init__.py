"""Pretrained weights shipped with dqa; ``manifest.json`` lists them with sha256 and provenance."""
