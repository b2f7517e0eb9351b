"""The dask backend: the job's runner trains with ``xgboost.dask`` on a Dask cluster.

The cluster is exactly one of: a ``LocalCluster`` this backend creates (the default), an
existing scheduler (``scheduler="tcp://host:8786"``), or a cluster class by dotted path with
keyword arguments (``cluster_class="dask_jobqueue:SLURMCluster"``), which this backend creates.
It tears down only what it created. ``distributed`` is imported only when a cluster is needed.

The runner (``python -m algorithms.run``) runs in a child process, as with the local backend,
and connects to the scheduler; so max runtime, stop requests and Ctrl-C behave the same. Dask
workers need only xgboost and dask for the built-in algorithm; bring-your-own code must be
importable on every worker (the job fails naming the workers that cannot import it).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, ClassVar

from backends.local import LocalBackend
from core.errors import BackendError
from core.plugins import load_object
from core.processes import import_path
from core.records.jobs import TrainingJob

logger = logging.getLogger(__name__)
WORKER_PRELOAD = "algorithms.dask_worker_preload"


def check_cluster_options(
    scheduler: str | None,
    cluster_class: str | None,
    workers: int | None,
    threads: int | None,
    cluster_kwargs: dict[str, Any] | None,
) -> None:
    """Reject combinations that name more than one cluster, with the options named.

    Raises:
        BackendError: naming the conflicting options.
    """
    if scheduler and cluster_class:
        raise BackendError(
            "give either scheduler or cluster_class, not both: "
            f"scheduler={scheduler!r}, cluster_class={cluster_class!r}"
        )
    if scheduler and (workers or threads):
        raise BackendError(
            "workers and threads size a cluster Skiff creates; with "
            f"scheduler={scheduler!r} the cluster is already sized"
        )
    if cluster_class and (workers or threads):
        raise BackendError(
            "workers and threads size Skiff's LocalCluster; pass the size of "
            f"{cluster_class!r} in cluster_kwargs"
        )
    if cluster_kwargs and not cluster_class:
        raise BackendError("cluster_kwargs needs cluster_class")
    if scheduler and "://" not in scheduler:
        raise BackendError(f"scheduler {scheduler!r} must be an address like tcp://host:8786")


class DaskBackend(LocalBackend):
    """Runs jobs on a Dask cluster.

    Args:
        scheduler: address of an existing scheduler.
        workers: workers of the LocalCluster this backend creates (default 2).
        threads: threads per worker of that LocalCluster (default 1).
        cluster_class: ``package.module:Class`` of a cluster to create, with ``cluster_kwargs``.
        collective_timeout: seconds a collective operation may wait before the job fails (a
            frozen worker otherwise hangs xgboost forever).
        connect_timeout: seconds to reach the scheduler.
        worker_start_timeout: seconds the job waits for the LocalCluster's workers to start.
    """

    name: ClassVar[str] = "dask"

    def __init__(
        self,
        scheduler: str | None = None,
        workers: int | None = None,
        threads: int | None = None,
        cluster_class: str | None = None,
        cluster_kwargs: dict[str, Any] | None = None,
        collective_timeout: float = 300,
        connect_timeout: float = 10,
        worker_start_timeout: float = 60,
        poll_interval: float = 0.2,
    ):
        check_cluster_options(scheduler, cluster_class, workers, threads, cluster_kwargs)
        super().__init__(threads=0, poll_interval=poll_interval)
        self.scheduler, self.cluster_class = scheduler, cluster_class
        self.cluster_kwargs = dict(cluster_kwargs or {})
        self.workers, self.worker_threads = workers or 2, threads or 1
        self.collective_timeout, self.connect_timeout = collective_timeout, connect_timeout
        self.worker_start_timeout = worker_start_timeout
        self._created: Any = None
        self._stack = contextlib.ExitStack()

    def scheduler_address(self) -> str:
        """The scheduler's address, creating the cluster on first use (a LocalCluster's
        workers may still be starting when this returns; jobs wait for them)."""
        if self.scheduler:
            return self.scheduler
        if self._created is None:
            self._created = self._stack.enter_context(self._create_cluster())
            if not self.cluster_class:
                # Start the workers without waiting for them (entering a cluster waits for
                # those it has): they boot and import the training stack while the job's
                # runner process starts, and the runner waits for all of them.
                self._created.scale(self.workers)
        return self._created.scheduler_address

    def _create_cluster(self) -> Any:
        if self.cluster_class:
            cls = load_object(self.cluster_class, BackendError)
            logger.info("creating %s(%s)", self.cluster_class, self.cluster_kwargs)
            return cls(**self.cluster_kwargs)
        from distributed import LocalCluster
        from distributed.worker_memory import parse_memory_limit

        logger.info(
            "creating a LocalCluster: %d workers × %d threads", self.workers, self.worker_threads
        )
        # Workers are processes of their own: give them our import path, so code importable
        # here (bring-your-own algorithms) is importable there.
        memory = parse_memory_limit("auto", 1, self.workers, logger=logger)  # LocalCluster's
        return LocalCluster(
            n_workers=0,
            threads_per_worker=self.worker_threads,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
            memory_limit=memory,
            preload=[WORKER_PRELOAD],
            env={"PYTHONPATH": import_path()},
        )

    def prepare(self, job: TrainingJob) -> TrainingJob:
        address = self.scheduler_address()
        self._check_reachable(address)
        created = self.cluster_class or f"LocalCluster {self.workers}×{self.worker_threads}"
        cluster = "existing scheduler" if self.scheduler else created
        # A LocalCluster's workers may still be starting: the job waits for them. Any other
        # cluster was started by its owner, or by its class before it returned.
        starting = (
            {}
            if self.scheduler or self.cluster_class
            else {"workers": self.workers, "worker_start_timeout": self.worker_start_timeout}
        )
        resources = (
            starting
            | {
                "scheduler": address,
                "cluster": cluster,
                "collective_timeout": self.collective_timeout,
                "connect_timeout": self.connect_timeout,
            }
            | job.resources
        )
        return job.model_copy(update={"resources": resources})

    def _check_reachable(self, address: str) -> None:
        from distributed import Client

        try:
            Client(address, timeout=self.connect_timeout, set_as_default=False).close()
        except (OSError, TimeoutError) as exc:
            raise BackendError(
                f"cannot reach the Dask scheduler at {address} within "
                f"{self.connect_timeout:g} s: {exc}"
            ) from None

    def close(self) -> None:
        self._stack.close()  # only what we created: a given scheduler is left alone
        self._created = None
