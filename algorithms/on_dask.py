"""The runner's Dask side: connect, take the cluster's training lock, read the channels onto
the workers, and train with the algorithm's distributed variant.

xgboost trains one model at a time per set of workers, so every job on a cluster takes one
cluster-wide lock; a job that cannot get it before its max runtime ends Failed, "cluster busy".
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import dask.dataframe as dd  # here, not in read_channel: it loads while the workers start
import pandas as pd
from distributed import Client, Lock, futures_of, wait

from algorithms.base import TrainedModel, TrainingContext
from algorithms.channels import read_job_channels
from algorithms.dask_client import check_imports, connect, wait_for_workers
from core.errors import JobError, SchemaError, WorkerLost
from core.records.channel import log_line, logged, planned_rounds, read_rounds
from core.records.jobs import Secondary, Status

if TYPE_CHECKING:
    from algorithms.run import JobRunner

LOCK_NAME = "skiff-training"
MARGIN = 3.0  # seconds: give up on the lock before the backend's max-runtime kill


@contextlib.contextmanager
def fail_on_worker_loss(client: Client, silence: float, every: float = 0.5) -> Iterator[None]:
    """Raise WorkerLost in this (the main) thread as soon as a worker leaves the cluster, or
    sends no heartbeat for ``silence`` seconds (frozen, or cut off).

    Without it, a killed worker under a nanny is restarted, the scheduler reruns xgboost's
    task there, and the survivors wait for a peer that never comes back; and a frozen worker's
    task never ends, so xgboost.dask waits for it even after the collective timeout.
    """
    before = set(client.scheduler_info()["workers"])
    lost: list[str] = []
    stop = threading.Event()

    def raise_lost(signum: int, frame: Any) -> None:
        raise WorkerLost(f"Dask worker(s) lost during training: {'; '.join(lost)}")

    def problems() -> list[str]:
        workers = client.scheduler_info()["workers"]
        gone = [f"{w} left the cluster" for w in sorted(before - set(workers))]
        now = time.time()
        quiet = [
            f"{w} sent no heartbeat for {now - d['last_seen']:.0f} s"
            for w, d in sorted(workers.items())
            if w in before and now - d.get("last_seen", now) > silence
        ]
        return gone + quiet

    def watch() -> None:
        while not stop.wait(every):
            with contextlib.suppress(Exception):  # a slow answer is not a lost worker
                if found := problems():
                    lost.extend(found)
                    signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)
                    return

    previous = signal.signal(signal.SIGUSR1, raise_lost)
    watcher = threading.Thread(target=watch, daemon=True, name="skiff-worker-watch")
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()
        signal.signal(signal.SIGUSR1, previous)


def release_arrow_memory() -> None:
    """Run on each worker after the channels are read: arrow's allocator keeps the memory
    freed while converting Parquet to pandas (~650 MiB per 2M × 60 rows measured here)
    unless asked to give it back, and the worker then trains with it still held."""
    import pyarrow

    pyarrow.default_memory_pool().release_unused()


def cluster_info(client: Client) -> dict[str, Any]:
    info = client.scheduler_info()
    workers = info.get("workers", {})
    return {
        "scheduler": info.get("address"),
        "workers": len(workers),
        "threads": {w: d.get("nthreads") for w, d in sorted(workers.items())},
    }


def rows_per_worker(client: Client, frame: Any) -> dict[str, int]:
    """Rows of a persisted frame held by each worker."""
    futures = futures_of(frame)
    wait(futures)
    lengths = client.gather(client.map(len, futures))
    holders = client.who_has(futures)
    split: dict[str, int] = {}
    for future, rows in zip(futures, lengths, strict=True):
        for worker in list(holders.get(future.key, ()))[:1]:
            split[worker] = split.get(worker, 0) + rows
    return dict(sorted(split.items()))


def read_channel(url: str, name: str, runner: JobRunner, workers: int, threads: int) -> Any:
    """A channel as a Dask DataFrame of the job's columns, with a partition for every worker."""
    spec = runner.spec
    options = runner.store.storage_options or None
    frame = dd.read_parquet(url, storage_options=options)
    if frame.npartitions < threads:
        # dask folds row groups together: one partition per row group lets every thread
        # read (2M rows in two row groups, 1 worker × 2 threads: 0.5 s instead of 1-2 s).
        frame = dd.read_parquet(url, storage_options=options, split_row_groups=True)
    missing = [c for c in [*spec.features, spec.label] if c not in frame.columns]
    if missing:
        raise SchemaError(f"channel {name!r} lacks column(s) {', '.join(missing)}")
    columns = [*spec.features, spec.label]
    if frame.npartitions >= workers:
        return frame[columns]
    # Fewer partitions than workers means few row groups (pyarrow writes up to ~1M rows in
    # one): read it here and split it. Splitting on a worker would keep every piece there.
    whole = pd.read_parquet(url, columns=columns, storage_options=options)
    return dd.from_pandas(whole, npartitions=workers, sort=False)


def read_frames(runner: JobRunner, client: Client, workers: int, threads: int) -> dict[str, Any]:
    """The job's channels on the workers. SageMaker's formats are read here (CSV, libsvm:
    nothing to split by row group) and spread over the workers."""
    spec = runner.spec
    if spec.content_types:
        return {
            name: client.persist(dd.from_pandas(frame, npartitions=workers, sort=False))
            for name, frame in read_job_channels(spec, runner.store).items()
        }
    return {
        name: client.persist(read_channel(url, name, runner, workers, threads))
        for name, url in spec.channels.items()
    }


@contextlib.contextmanager
def rounds_to_log(runner: JobRunner, total: int | None, every: float = 1.0) -> Iterator[None]:
    """The rounds the job's log shows, logged here as they come: on Dask the rounds are
    reported by a worker (to the job's live channel), whose output nobody sees, so the
    runner reads them back from the channel."""
    done, seen = threading.Event(), 0

    def log_new() -> None:
        nonlocal seen
        with contextlib.suppress(Exception):  # a progress line is never worth a failure
            rounds = read_rounds(runner.jobs, runner.spec.name)
            for r in rounds[seen:]:
                if logged(r["round"], total):
                    runner.log(log_line(r["round"], {k: v for k, v in r.items() if k != "round"}))
            seen = max(seen, len(rounds))

    def follow() -> None:
        while not done.wait(every):
            log_new()

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=10)
        log_new()  # the last rounds, flushed as training ended


def train_on_cluster(
    runner: JobRunner, algorithm: Any, hyperparameters: dict[str, Any], context: TrainingContext
) -> TrainedModel:
    spec, resources = runner.spec, runner.spec.resources
    address = resources.scheduler
    client = connect(address, resources.connect_timeout)
    try:
        if resources.workers:
            wait_for_workers(client, resources.workers, resources.worker_start_timeout)
        if ":" in spec.algorithm:
            check_imports(client, spec.algorithm.partition(":")[0])
        lock = Lock(LOCK_NAME)
        budget = max(runner.deadline - time.time() - MARGIN, 0.0)
        started = time.monotonic()
        if not lock.acquire(timeout=budget):
            raise JobError(
                f"cluster busy: another training held the lock of {address} for "
                f"{budget:.0f} s, until this job's max runtime"
            )
        try:
            waited = time.monotonic() - started
            info = cluster_info(client)
            where = f"{info['workers']} workers at {address} (lock after {waited:.1f} s)"
            runner.move(Status.IN_PROGRESS, Secondary.DOWNLOADING, where)
            threads = sum(info["threads"].values())
            frames = read_frames(runner, client, info["workers"], threads)
            split = {name: rows_per_worker(client, f) for name, f in frames.items()}
            client.run(release_arrow_memory)
            runner.log(f"rows per worker: {split}")
            data = runner.training_data(frames)
            runner.move(Status.IN_PROGRESS, Secondary.TRAINING, f"{spec.algorithm} on Dask")
            timeout = resources.collective_timeout
            with (
                fail_on_worker_loss(client, silence=timeout),
                rounds_to_log(runner, planned_rounds(runner.spec)),
            ):
                model = algorithm.train_distributed(client, data, hyperparameters, context, timeout)
            model.info |= {"cluster": info, "rows_per_worker": split}
            return model
        finally:
            lock.release()
    finally:
        with contextlib.suppress(Exception):  # a frozen worker must not turn a failure into a hang
            client.close(timeout=5)
