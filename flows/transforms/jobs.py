"""A transform job's operations: check it, then run it on its backend, following its record."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from backends.base import no_transforms
from backends.catalog import backend_class, get_backend
from core.errors import SkiffError, TransformError
from core.records.hosting import HostingStore
from core.records.registry import ModelRegistry
from core.records.transforms import TransformJob, TransformStatus, TransformStore
from core.store import Store
from serving.batch.options import check_options
from serving.batch.reading import list_inputs

Progress = Callable[[TransformStatus], None]


def model_reference(store: Store, given: str, group: str) -> dict[str, Any]:
    """A model as people name it: a version number (of ``group``), ``GROUP:VERSION``, or a
    hosted model's name (what SageMaker's CreateModel made)."""
    name, _, number = given.rpartition(":")
    if number.isdigit():
        return {"model_group": name or group, "model_version": int(number)}
    return {"model": given}


def summary_line(status: TransformStatus) -> str:
    """``1/3 objects, 1,200,000 rows, 850,000 rows/s`` (and bad rows, where skipped)."""
    line = f"{status.objects_done}/{status.objects} object(s), {status.rows:,} rows"
    line += f", {status.rows_per_second:,.0f} rows/s"
    return line + (f", {status.bad_rows:,} bad row(s) skipped" if status.bad_rows else "")


def check(store: Store, spec: TransformJob, deep: bool = True) -> None:
    """Refuse a job that cannot run, before anything is recorded: its options, its model,
    its input; ``deep``, also how its first input object fits the model (which loads the
    model and the scoring stack here: the command line leaves that to the job's runner,
    which fails the job naming the same problem).

    Raises:
        TransformError: naming what is wrong.
        BackendError: its backend runs no transform jobs.
    """
    check_options(spec)
    if not backend_class(spec.backend).runs_transforms():
        raise no_transforms(spec.backend)
    try:
        if spec.model is not None:
            HostingStore(store).model(spec.model)
        else:
            ModelRegistry(store).get(str(spec.model_group), int(spec.model_version or 0))
    except SkiffError as exc:
        raise TransformError(f"cannot transform with {spec.source}: {exc}") from None
    inputs = list_inputs(spec.input_url, store.storage_options)
    if deep:
        from serving.batch.run import check_first_object  # pandas, xgboost: only here

        check_first_object(store, spec, inputs[0])


def run(
    store: Store,
    spec: TransformJob,
    backend_options: dict[str, Any] | None = None,
    progress: Progress | None = None,
    every: float = 1.0,
    deep_check: bool = True,
) -> TransformStatus:
    """Check ``spec``, record it, and run it on its backend to its end; ``progress`` is
    called with its record every ``every`` seconds meanwhile. Interrupted (Ctrl-C, a
    cancelled flow run), the job is stopped before this returns.

    Raises:
        TransformError, BackendError: it could not start (nothing recorded).
    """
    check(store, spec, deep_check)
    jobs = TransformStore(store)
    ended: list[TransformStatus] = []
    failed: list[BaseException] = []

    with get_backend(spec.backend, **(backend_options or {})) as backend:

        def work() -> None:
            try:
                ended.append(backend.transform(spec, store))
            except BaseException as exc:  # raised again in the caller's thread
                failed.append(exc)

        worker = threading.Thread(target=work, name=f"transform-{spec.name}", daemon=True)
        worker.start()
        try:
            while worker.is_alive():
                worker.join(every)
                if (
                    progress is not None
                    and not failed
                    and store.exists(jobs.key(spec.name, "job.json"))
                ):
                    progress(jobs.status(spec.name))
        except BaseException:
            if store.exists(jobs.key(spec.name, "job.json")):
                jobs.request_stop(spec.name)
            worker.join()
            raise
    if failed:
        raise failed[0]
    return ended[0]
