"""Where a model came from: package versions, the project's version and git revision."""

from __future__ import annotations

import functools
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("skiff", "xgboost", "pandas", "numpy", "pyarrow", "fsspec", "prefect")


def package_version(name: str) -> str | None:
    """The installed version of package ``name``, or None when it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


@functools.cache
def skiff_release() -> str:
    """Skiff's installed version ("0+unknown" in a checkout that was never installed)."""
    return package_version("skiff") or "0+unknown"


def git_revision() -> str | None:
    """The checkout's commit when Skiff runs from a git checkout, else None."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def provenance() -> dict[str, Any]:
    return {
        "skiff_version": package_version("skiff"),
        "git_revision": git_revision(),
        "python": platform.python_version(),
        "host": socket.gethostname(),
        "packages": {p: v for p in PACKAGES if (v := package_version(p))},
    }
