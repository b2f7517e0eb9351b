"""Compute backends that run training jobs. ``import backends`` loads nothing heavy."""

from backends.base import TrainingBackend
from backends.catalog import BACKENDS, get_backend

__all__ = ["BACKENDS", "TrainingBackend", "get_backend"]
