"""Backends by name, imported only when chosen (their heavy dependencies with them)."""

from __future__ import annotations

from typing import Any

from algorithms.errors import AlgorithmError
from algorithms.registry import load_object
from backends.base import TrainingBackend
from backends.errors import BackendError

BACKENDS = {
    "local": "backends.local:LocalBackend",
    "dask": "backends.dask:DaskBackend",
    "ec2": "backends.ec2:Ec2Backend",
}


def get_backend(name: str, **options: Any) -> TrainingBackend:
    """A backend instance for a registered name or a dotted path ``package.module:Class``.

    Raises:
        BackendError: the name is unknown (the message lists the valid ones) or fails to load.
    """
    if ":" not in name and name not in BACKENDS:
        raise BackendError(
            f"unknown backend {name!r}; choose one of {', '.join(sorted(BACKENDS))} "
            "or give a dotted path 'package.module:Class'"
        )
    try:
        cls = load_object(BACKENDS.get(name, name))
    except AlgorithmError as exc:
        raise BackendError(str(exc)) from exc
    if not (isinstance(cls, type) and issubclass(cls, TrainingBackend)):
        raise BackendError(f"{name!r} is not a TrainingBackend subclass")
    return cls(**options)
