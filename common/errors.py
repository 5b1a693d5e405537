"""Exceptions that dqa raises for problems a user can fix."""
from __future__ import annotations

from pathlib import Path


class DqaError(Exception):
    """Base class of every error dqa raises on purpose."""


class MediaError(DqaError):
    """A file cannot be read as an image or video; the message names the file and the cause."""

    def __init__(self, path: str | Path, cause: str) -> None:
        self.path = str(path)
        self.cause = cause
        super().__init__(f"{self.path}: {cause}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # picklable across worker processes
        return type(self), (self.path, self.cause)


class WeightsError(DqaError):
    """Model weights are missing, tampered with or incompatible; ``status`` says which in one word."""

    def __init__(self, message: str, status: str = "missing") -> None:
        self.status = status
        super().__init__(message)

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return type(self), (str(self), self.status)
