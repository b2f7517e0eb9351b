"""Where ``skiff api`` sends a training job: which backend and options, from the server's
``--backend`` and the job's ResourceConfig; and the job's own process (``job_flow``).

By default a job of one instance runs on the local backend, and one of several on a Dask
``LocalCluster`` of that many workers (capped at this machine's cores: said in the job's
log); ``--backend dask --scheduler ADDR`` sends every job to that cluster, ``--backend ec2``
launches the job's instances (``ml.c5.2xlarge`` → ``c5.2xlarge``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.processes import child_env
from core.runtime import runtime_root, store_id
from core.store import Store


@dataclass(frozen=True)
class Placement:
    """The server's choice of compute: ``auto`` (local, or a LocalCluster for several
    instances), ``local``, ``dask`` (with ``options``: a scheduler) or ``ec2``."""

    backend: str = "auto"
    options: dict[str, Any] = field(default_factory=dict)

    def for_job(self, instance_type: str, count: int) -> tuple[str, dict[str, Any], str]:
        """(backend, its options, a line for the job's log) for a job of ``count``
        ``instance_type`` instances."""
        if self.backend == "ec2":
            ec2 = {"instance_type": instance_type.removeprefix("ml."), "instance_count": count}
            return "ec2", self.options | ec2, f"{count} × {ec2['instance_type']} on EC2"
        if self.backend == "dask" or (self.backend == "auto" and count > 1):
            if scheduler := self.options.get("scheduler"):
                return "dask", dict(self.options), f"the Dask cluster at {scheduler}"
            cores = os.cpu_count() or 1
            workers = min(count, cores)
            capped = f" (capped at this machine's {cores} cores)" if workers < count else ""
            options = self.options | {"workers": workers, "threads": 1}
            return "dask", options, f"a LocalCluster of {workers} workers{capped}"
        return "local", dict(self.options), "one process on this machine"


def start_job(store: Store, name: str, backend: str, options: dict[str, Any], env: dict) -> int:
    """Start the job's flow run (``job_flow``); returns its pid."""
    arguments = [store.root, name, "--backend", backend, "--options", json.dumps(options)]
    return start_flow("flows.api.job_flow", arguments, f"{name}.log", store, env)


def start_flow(module: str, arguments: list[str], log_name: str, store: Store, env: dict) -> int:
    """Start ``python -m module arguments`` (a flow run) in a process of its own session, so
    that it outlives the server; its output goes to a log file in the runtime folder.
    Returns its pid."""
    folder = runtime_root() / "api" / store_id(store.root)
    folder.mkdir(parents=True, exist_ok=True)
    with open(Path(folder) / log_name, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *arguments],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=child_env(**env),
            start_new_session=True,
        )
    return proc.pid
