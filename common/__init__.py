"""Shared pieces of dqa: media decoding, backbone, runner, registry, weights and metrics."""
