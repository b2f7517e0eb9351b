"""Backends by name, imported only when chosen (their heavy dependencies with them), and their
options models, imported without them.

Each registered backend lists its class and its options model; a backend given by dotted path
(``package.module:Class``) brings its options as ``Class.Options``. The pipeline's config,
flags, flow parameters and ``--help`` are built from here (``flows/config.py``), so a new
backend's options appear wherever the built-in ones do.
"""

from __future__ import annotations

from typing import Any

from backends.base import BackendCommand, BackendOptions, TrainingBackend
from core.errors import BackendError
from core.plugins import PluginTable, is_dotted

BACKENDS = PluginTable(
    "backend",
    {
        "local": "backends.local:LocalBackend",
        "dask": "backends.dask:DaskBackend",
        "ec2": "backends.ec2:Ec2Backend",
    },
    BackendError,
)
# Light modules: the pipeline reads these without importing distributed or boto3.
OPTIONS = PluginTable(
    "backend",
    {
        "local": "backends.local:LocalOptions",
        "dask": "backends.dask_options:DaskOptions",
        "ec2": "backends.ec2_options:Ec2Options",
    },
    BackendError,
)
# What a backend adds to the ``skiff`` command (``skiff ec2 list|reap``), also light.
COMMANDS = PluginTable("backend", {"ec2": "backends.ec2_commands:COMMANDS"}, BackendError)


def backend_class(name: str) -> type[TrainingBackend]:
    """The backend class of a registered name or a dotted path.

    Raises:
        BackendError: the name is unknown (the message lists the valid ones), fails to load,
            or is not a backend.
    """
    cls = BACKENDS.load(name)
    if not (isinstance(cls, type) and issubclass(cls, TrainingBackend)):
        raise BackendError(f"{name!r} is not a TrainingBackend subclass")
    return cls


def options_model(name: str) -> type[BackendOptions]:
    """The options model of a registered backend (without importing the backend) or of a
    backend given by dotted path (its ``Options``)."""
    model = backend_class(name).Options if is_dotted(name) else OPTIONS.load(name)
    if not (isinstance(model, type) and issubclass(model, BackendOptions)):
        raise BackendError(f"the options of backend {name!r} are not a BackendOptions model")
    return model


def backend_commands() -> dict[str, tuple[BackendCommand, ...]]:
    """Backend name → the commands it adds to ``skiff``."""
    return {name: COMMANDS.load(name) for name in COMMANDS.table}


def get_backend(name: str, options: BackendOptions | None = None, **given: Any) -> TrainingBackend:
    """A backend instance for a registered name or a dotted path, from validated ``options``
    or from keywords (validated by the backend's options model)."""
    return backend_class(name)(options, **given)
