"""The dask backend: the job's runner trains on a Dask cluster, placed one of two ways
(``placement``): across every worker with ``xgboost.dask`` (``cluster``, the default: one job
at a time), or as one task on one worker thread (``worker``: jobs side by side, a tuning job's
trials; ``algorithms/on_a_worker.py``).

The cluster is exactly one of: a ``LocalCluster`` this backend creates (the default), an
existing scheduler (``scheduler="tcp://host:8786"``), or a cluster class by dotted path with
keyword arguments (``cluster_class="dask_jobqueue:SLURMCluster"``), which this backend creates.
It tears down only what it created. ``distributed`` is imported only when a cluster is needed.

The runner (``python -m algorithms.run``) runs in a child process, as with the local backend,
and connects to the scheduler; so max runtime, stop requests and Ctrl-C behave the same. Dask
workers need only xgboost and dask for the built-in algorithm placed on the cluster (Skiff's
own code too, placed on a worker); bring-your-own code must be importable on every worker (the
job fails naming the workers that cannot import it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from typing import Any, ClassVar

from backends.base import BackendOptions
from backends.dask_options import DaskOptions
from backends.local import LocalBackend
from core.errors import BackendError
from core.plugins import load_object
from core.processes import import_path
from core.records.jobs import JobResources, TrainingJob
from core.records.transforms import TransformJob

logger = logging.getLogger(__name__)
WORKER_PRELOAD = "algorithms.dask_worker_preload"


class DaskBackend(LocalBackend):
    """Runs jobs on a Dask cluster.

    Args:
        options: ``DaskOptions`` (or their fields as keywords).
        worker_start_timeout: seconds the job waits for the LocalCluster's workers to start.
        poll_interval: as the local backend's.
    """

    name: ClassVar[str] = "dask"
    Options: ClassVar[type[BackendOptions]] = DaskOptions
    options: DaskOptions

    def __init__(
        self,
        options: BackendOptions | None = None,
        *,
        worker_start_timeout: float = JobResources().worker_start_timeout,
        poll_interval: float = 0.2,
        **given: Any,
    ):
        super().__init__(options, poll_interval=poll_interval, **given)
        self.workers, self.worker_threads = self.options.workers or 2, self.options.threads or 1
        self.worker_start_timeout = worker_start_timeout
        self._created: Any = None
        self._stack = contextlib.ExitStack()
        self._creating = threading.Lock()  # a tuning job's trials start in threads of their own

    def scheduler_address(self) -> str:
        """The scheduler's address, creating the cluster on first use (a LocalCluster's
        workers may still be starting when this returns; jobs wait for them)."""
        if self.options.scheduler:
            return self.options.scheduler
        with self._creating:
            if self._created is None:
                self._created = self._stack.enter_context(self._create_cluster())
                if not self.options.cluster_class:
                    # Start the workers without waiting for them (entering a cluster waits
                    # for those it has): they boot and import the training stack while the
                    # job's runner process starts, and the runner waits for all of them.
                    self._created.scale(self.workers)
            return self._created.scheduler_address

    def _create_cluster(self) -> Any:
        if cluster_class := self.options.cluster_class:
            cls = load_object(cluster_class, BackendError)
            logger.info("creating %s(%s)", cluster_class, self.options.cluster_kwargs)
            return cls(**self.options.cluster_kwargs)
        from distributed import LocalCluster
        from distributed.worker_memory import parse_memory_limit

        logger.info(
            "creating a LocalCluster: %d workers × %d threads", self.workers, self.worker_threads
        )
        # Workers are processes of their own: give them our import path, so code importable
        # here (bring-your-own algorithms) is importable there.
        memory = parse_memory_limit("auto", 1, self.workers, logger=logger)  # LocalCluster's
        # Dask's INFO lines (a hundred a run: every connection, every worker's banner) are not
        # the user's business: warnings and errors only, here and in the worker processes
        # (which read it from their environment when they import distributed; a user's own
        # setting wins).
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
        logging.getLogger("distributed").setLevel(logging.WARNING)
        return LocalCluster(
            n_workers=0,
            threads_per_worker=self.worker_threads,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
            memory_limit=memory,
            preload=[WORKER_PRELOAD],
            env={"PYTHONPATH": import_path()},
            silence_logs=logging.WARNING,
        )

    def warm_preload(self) -> tuple[str, ...]:
        """A runner of a job placed on one worker needs Dask's client (half a second of
        imports a trial would pay)."""
        return ("algorithms.on_a_worker",) if self.options.placement == "worker" else ()

    def prepare(self, job: TrainingJob) -> TrainingJob:
        address = self.scheduler_address()
        self._check_reachable(address)
        o = self.options
        created = o.cluster_class or f"LocalCluster {self.workers}×{self.worker_threads}"
        resources: dict[str, Any] = {
            "scheduler": address,
            "cluster": "existing scheduler" if o.scheduler else created,
            "collective_timeout": o.collective_timeout,
            "connect_timeout": o.connect_timeout,
        }
        if o.placement:
            resources["placement"] = o.placement
        if not (o.scheduler or o.cluster_class):
            # A LocalCluster's workers may still be starting: the job waits for them. Any
            # other cluster was started by its owner, or by its class before it returned.
            resources |= {
                "workers": self.workers,
                "worker_start_timeout": self.worker_start_timeout,
            }
        return job.model_copy(update={"resources": job.resources.under(resources)})

    def prepare_transform(self, job: TransformJob) -> TransformJob:
        """A transform job's blocks are scored on the cluster's workers: it is given the
        scheduler as a training job is, and the size of its blocks."""
        prepared = self.prepare(job)  # type: ignore[arg-type]
        blocks = prepared.resources.under({"partition_mb": self.options.partition_mb})
        return prepared.model_copy(update={"resources": blocks})  # type: ignore[return-value]

    def _check_reachable(self, address: str) -> None:
        from distributed import Client

        timeout = self.options.connect_timeout
        try:
            Client(address, timeout=timeout, set_as_default=False).close()
        except (OSError, TimeoutError) as exc:
            raise BackendError(
                f"cannot reach the Dask scheduler at {address} within {timeout:g} s: {exc}"
            ) from None

    def close(self) -> None:
        self._stack.close()  # only what we created: a given scheduler is left alone
        self._created = None
        super().close()  # the warm runners, if a tuning job's trials used them
