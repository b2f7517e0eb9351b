"""This machine's runtime folder: state that belongs to one machine and never to the store.

An endpoint server's pid, URL and log, and the lock that serialises updates of an endpoint
from this machine, live here, under ``$SKIFF_RUNTIME`` (default ``~/.local/state/skiff``).
One folder per endpoint and store, so two stores may each have an endpoint of one name.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from core.errors import ServingError
from core.names import check_name


def runtime_root() -> Path:
    """``$SKIFF_RUNTIME``, else ``$XDG_STATE_HOME/skiff``, else ``~/.local/state/skiff``."""
    default = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local/state")) / "skiff"
    return Path(os.environ.get("SKIFF_RUNTIME", default))


def store_id(store_root: str) -> str:
    """A short id of a store's root URL (folder names must not hold URLs)."""
    return hashlib.sha256(store_root.encode()).hexdigest()[:10]


def endpoint_folder(store_root: str, endpoint: str) -> Path:
    """This machine's folder for endpoint ``endpoint`` of the store at ``store_root``."""
    name = check_name(endpoint, "endpoint", ServingError)
    return runtime_root() / "endpoints" / f"{name}-{store_id(store_root)}"


def endpoint_folders(store_root: str) -> dict[str, Path]:
    """Endpoint name → its folder, for every endpoint of that store with one on this machine."""
    suffix = f"-{store_id(store_root)}"
    found = (runtime_root() / "endpoints").glob(f"*{suffix}")
    return {p.name.removesuffix(suffix): p for p in sorted(found)}


def api_file(store_root: str) -> Path:
    """Where a ``skiff api`` serving the store at ``store_root`` on this machine says so (its
    URL and pid), while it runs: ``skiff notebook`` uses that one rather than start another."""
    return runtime_root() / "api" / f"{store_id(store_root)}.json"
