"""What the tests share that is not a fixture: waiting on a condition, free ports, small
synthetic data sets, training job specs, and reading back a flow run's task states."""

from __future__ import annotations

import io
import itertools
import os
import shlex
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.records.jobs import JobStore, TrainingJob
from core.store import Store

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = Path(
    os.environ.get("SKIFF_TEST_ARCHIVE", ROOT.parent / "shared/data/bank-additional.zip")
)


def wait_for(condition: Callable[[], object], timeout: float, what: str, every: float = 0.1):
    """Poll ``condition`` until it returns something truthy, or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def task_states(flow_run_id) -> dict[str, str]:
    """Task run name → state name (Completed, Cached, ...) in a flow run. "publish dataset
    <id>" reads as "publish", so a test need not know the dataset id."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return {run.name.split(" dataset")[0]: run.state.name for run in runs}


FEATURES = [f"f{i}" for i in range(8)]


def synthetic_frame(rows: int, seed: int) -> pd.DataFrame:
    """A small learnable binary problem: label depends on two features plus noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, len(FEATURES))).astype(np.float32)
    logit = 2 * x[:, 0] - 1.5 * x[:, 1] + rng.normal(scale=0.5, size=rows)
    frame = pd.DataFrame(x, columns=FEATURES)
    frame.insert(0, "y", (logit > 0).astype(np.float32))
    return frame


def write_channels(store: Store, dataset: str, train_rows: int, seed: int) -> dict[str, str]:
    """Synthetic train and validation Parquet channels, written through the store (a folder or
    S3); returns their URLs."""
    urls = {}
    for name, rows, offset in [("train", train_rows, 0), ("validation", train_rows // 4, 1)]:
        buffer = io.BytesIO()
        synthetic_frame(rows, seed + offset).to_parquet(buffer, index=False)
        urls[name] = store.write_bytes(f"datasets/{dataset}/{name}.parquet", buffer.getvalue())
    return urls


def in_threads(target: Callable[[int], object], count: int) -> None:
    """Run ``target(0)`` ... ``target(count - 1)`` at once, each in a thread, and wait for all."""
    threads = [threading.Thread(target=target, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


_names = itertools.count()


def make_job(store: Store, channels: dict[str, str], **changes) -> TrainingJob:
    """A training job on ``channels`` (the synthetic features), unique per call."""
    name = changes.pop("name", f"job-{os.getpid()}-{next(_names)}")
    fields = {
        "name": name,
        "channels": channels,
        "label": "y",
        "features": FEATURES,
        "output_url": store.url(JobStore.output_key(name)),
        "hyperparameters": {"num_round": 20},
    }
    return TrainingJob(**fields | changes)


def job_pid(jobs: JobStore, name: str) -> int:
    """The pid of the job's runner, as its Starting transition recorded it."""
    started = next(
        t
        for t in jobs.status(name).transitions
        if t.secondary_status == "Starting" and t.message.startswith("pid")
    )
    return int(started.message.split()[1])


def pipeline_process(prefect_api: str, cwd: Path, arguments: str, **popen: Any) -> Any:
    """``python -m flows.bank_marketing ARGUMENTS`` (one string, split as a shell would) in a
    process of its own, as a user runs it: against the session's Prefect server, with the
    checkout on its import path. With ``wait=False`` it returns the running ``Popen``."""
    command = [sys.executable, "-m", "flows.bank_marketing", *shlex.split(arguments)]
    env = os.environ | {"PREFECT_API_URL": prefect_api, "PYTHONPATH": str(ROOT)}
    if popen.pop("wait", True):
        options = {"capture_output": True, "text": True, "timeout": 600} | popen
        return subprocess.run(command, env=env, cwd=cwd, **options)
    return subprocess.Popen(command, env=env, cwd=cwd, **popen)


def start_logged(command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    """A service for the tests (a Prefect server, a Dask scheduler, serve.sh) in a session of
    its own, its output in ``log``; stop it with ``end_process``."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            command,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
