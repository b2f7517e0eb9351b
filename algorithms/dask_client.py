"""A job runner's client of a Dask cluster: connecting, waiting for the workers, checking
that they can import a job's code. Light (``distributed`` only, no ``dask.dataframe``): a
job placed on one worker needs no more in its runner."""

from __future__ import annotations

import contextlib

from distributed import Client

from core.errors import JobError


def connect(address: str, timeout: float) -> Client:
    try:
        # The default client: the runner is a process of its own, one job, one client.
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise JobError(
            f"cannot reach the Dask scheduler at {address} within {timeout:g} s: {exc}"
        ) from None


def workers_within(client: Client, count: int, timeout: float) -> int:
    """Wait up to ``timeout`` seconds for ``count`` workers; how many there are then."""
    with contextlib.suppress(TimeoutError):
        client.wait_for_workers(count, timeout=timeout)
    return len(client.scheduler_info()["workers"])


def wait_for_workers(client: Client, expected: int, timeout: float) -> None:
    """Wait until the cluster the backend is still starting has all its workers."""
    started = workers_within(client, expected, timeout)
    if started < expected:
        raise JobError(f"only {started} of {expected} Dask workers started within {timeout:g} s")


def check_imports(client: Client, module: str) -> None:
    """Bring-your-own code must import on every worker: say which one cannot."""
    found = client.run(eval, f"__import__('importlib.util').util.find_spec({module!r}) is not None")
    missing = sorted(w for w, ok in found.items() if not ok)
    if missing:
        raise JobError(
            f"Dask worker(s) {', '.join(missing)} cannot import {module!r}: install it there or "
            "put it on the workers' PYTHONPATH"
        )
