"""Backends by name, imported only when chosen (their heavy dependencies with them)."""

from __future__ import annotations

from typing import Any

from backends.base import TrainingBackend
from core.errors import BackendError
from core.plugins import PluginTable

BACKENDS = PluginTable(
    "backend",
    {
        "local": "backends.local:LocalBackend",
        "dask": "backends.dask:DaskBackend",
        "ec2": "backends.ec2:Ec2Backend",
    },
    BackendError,
)


def get_backend(name: str, **options: Any) -> TrainingBackend:
    """A backend instance for a registered name or a dotted path ``package.module:Class``.

    Raises:
        BackendError: the name is unknown (the message lists the valid ones) or fails to load.
    """
    cls = BACKENDS.load(name)
    if not (isinstance(cls, type) and issubclass(cls, TrainingBackend)):
        raise BackendError(f"{name!r} is not a TrainingBackend subclass")
    return cls(**options)
