"""Which steps a rerun may skip: Prefect task caching keyed on inputs and an explicit code version.

A cached step's result is a small JSON record (ids and URLs, never a pickle) kept under the
store's ``cache/`` folder, so a rerun from a new process, or from a Prefect worker, finds it.
The key is the step's name, its inputs, and :func:`code_version`: Prefect's own TASK_SOURCE
hashes only a task's body, so a change in a function that the task calls would not count.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from prefect.cache_policies import INPUTS, CachePolicy
from prefect.context import TaskRunContext
from prefect.filesystems import RemoteFileSystem, WritableFileSystem
from prefect.tasks import Task

from core.provenance import skiff_release
from core.store import Store

PACKAGES = ("core", "algorithms", "backends", "flows", "serving")
CACHE_FOLDER = "cache"
_ROOT = Path(__file__).resolve().parents[1]

T = TypeVar("T", bound=Task)


@cache
def code_version() -> str:
    """``<package version>+<hash of every source file of Skiff's packages>``."""
    digest = hashlib.sha256()
    for package in PACKAGES:
        for path in sorted((_ROOT / package).rglob("*.py")):
            digest.update(str(path.relative_to(_ROOT)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return f"{skiff_release()}+{digest.hexdigest()[:12]}"


@dataclass
class StepAndCode(CachePolicy):
    """The step's name and the code version: with INPUTS, the key of a cacheable step."""

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str:
        return f"{task_ctx.task.name}-{code_version()}"


CACHED = INPUTS + StepAndCode()


def result_storage(store: Store) -> Path | WritableFileSystem:
    """Where cached results of steps working on ``store`` live: under the store itself.

    Prefect takes a local folder as a path; remote storage must be a block saved on the
    Prefect server, so one is saved per store URL (credentials come from the environment).
    """
    url = store.url(CACHE_FOLDER)
    if store.is_local:
        return Path(url).resolve()
    block = RemoteFileSystem(basepath=url)
    block.save(f"skiff-cache-{hashlib.sha256(url.encode()).hexdigest()[:16]}", overwrite=True)
    return block


def cached(step: T, storage: Path | WritableFileSystem, refresh: bool = False) -> T:
    """``step`` with its results kept in ``storage`` (see :func:`result_storage`);
    ``refresh`` recomputes and replaces them."""
    return step.with_options(
        cache_policy=CACHED,
        result_storage=storage,
        result_serializer="json",
        persist_result=True,
        refresh_cache=refresh,
    )
