"""The runner's Dask side for jobs placed on one worker (``placement="worker"``): the whole
job, reading its channels and training with the algorithm's ``train``, is one task on one
worker thread, so a cluster runs as many jobs side by side as it has threads.

That is what a tuning job's trials want: many small trainings at once, each on data one
worker holds, where ``xgboost.dask`` would spread every trial over every worker (a collective
each round) and train one trial at a time (the cluster's lock). Jobs placed this way take no
lock. The worker's log lines reach the job's log as they come (Dask's events); its rounds go
to the job's live channel, as on the local backend. A job that ends while its task trains
(stopped, past its max runtime, its runner gone) is seen by the task at its next round, which
then gives the worker its thread back.
"""

from __future__ import annotations

import contextlib
import queue
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distributed import Client, get_worker

from algorithms.base import Report, TrainedModel, TrainingContext
from algorithms.catalog import resolve_algorithm
from algorithms.channels import read_job_channels, training_data
from algorithms.dask_client import check_imports, connect, wait_for_workers
from core.errors import SkiffError
from core.records.jobs import JobStore, Secondary, Status, TrainingJob
from core.store import Store

if TYPE_CHECKING:
    from algorithms.run import JobRunner

THREADS = 1  # a task is one of the worker's threads: Dask runs as many at once as it has
LOG_WAIT = 5.0  # seconds the runner waits, once the task is done, for its last log lines


class JobEnded(SkiffError):
    """Raised in a worker's training when the job it trains for is over."""


class _UntilEnded:
    """A job's ``report``, which also looks at the job's status every ``every`` seconds and
    ends the training (raising JobEnded between two rounds) once the job is over."""

    def __init__(self, report: Report, jobs: JobStore, name: str, every: float = 0.5):
        self.report, self.jobs, self.name, self.every = report, jobs, name, every
        self._looked = time.monotonic()

    def __call__(self, round: int, metrics: dict[str, float]) -> None:
        self.report(round, metrics)
        if time.monotonic() - self._looked >= self.every:
            self._looked = time.monotonic()
            status = self.jobs.status(self.name)
            if status.status.terminal:
                raise JobEnded(f"job {self.name} ended {status.status} while training")

    def flush(self) -> None:
        self.report.flush()  # type: ignore[attr-defined]


def topic(name: str) -> str:
    """The Dask event topic on which a job's worker speaks to its runner."""
    return f"skiff-job:{name}"


def train_task(
    spec_json: str,
    root: str,
    storage_options: dict[str, Any],
    hyperparameters: dict[str, Any],
    report: Report,
    each_round: tuple[str, ...] | None,
) -> tuple[TrainedModel, bytes, str, list[str], int]:
    """On a worker: read the job's channels, train, and return (the model's description, its
    file's bytes, the label, the features, how many events were sent to the runner)."""
    spec = TrainingJob.model_validate_json(spec_json)
    store, worker = Store(root, storage_options), get_worker()
    sent = 0

    def say(**event: str) -> None:
        nonlocal sent
        worker.log_event(topic(spec.name), event)
        sent += 1

    algorithm = resolve_algorithm(spec.algorithm)
    frames = read_job_channels(spec, store)
    data = training_data(spec, frames)
    rows = ", ".join(f"{k}: {len(v)} rows" for k, v in frames.items())
    say(training=f"{spec.algorithm} on the worker {worker.address} ({rows})")
    with tempfile.TemporaryDirectory(prefix=f"skiff-{spec.name}-") as tmp:
        context = TrainingContext(
            output_dir=Path(tmp),
            log=lambda line: say(log=line),
            threads=THREADS,
            report=_UntilEnded(report, JobStore(store), spec.name),
            each_round=each_round,
        )
        try:
            model = algorithm.train(data, hyperparameters, context)
        except Exception as exc:
            exc.skiff_events = sent  # type: ignore[attr-defined] - pickled with it
            raise
        finally:
            context.report.flush()  # type: ignore[attr-defined]
        model_bytes = (Path(tmp) / model.model_file).read_bytes()
    return model, model_bytes, data.label, data.features, sent


class _Relay:
    """What the worker says, into the job's record as it arrives: its log lines, and the
    move to Training once it has read the data. Dask calls it on its event loop, which must
    not wait for the store: a thread of its own does the writing."""

    def __init__(self, runner: JobRunner):
        self.runner, self.handled = runner, 0
        self._events: queue.SimpleQueue[dict[str, str]] = queue.SimpleQueue()
        self._handled = threading.Condition()
        threading.Thread(target=self._handle, daemon=True, name="skiff-worker-relay").start()

    def __call__(self, event: tuple[float, dict[str, str]]) -> None:
        self._events.put(event[1])

    def _handle(self) -> None:
        while True:
            event = self._events.get()
            with contextlib.suppress(Exception):  # one unwritten line must not stop the rest
                if "training" in event:
                    self.runner.move(Status.IN_PROGRESS, Secondary.TRAINING, event["training"])
                else:
                    self.runner.log(event["log"])
            with self._handled:
                self.handled += 1
                self._handled.notify_all()

    def wait_for(self, count: int, timeout: float) -> None:
        """Wait up to ``timeout`` seconds until ``count`` events have been handled."""
        with self._handled:
            self._handled.wait_for(lambda: self.handled >= count, timeout)


def train_on_a_worker(
    runner: JobRunner, hyperparameters: dict[str, Any], context: TrainingContext
) -> TrainedModel:
    """Train the runner's job as one task on one of the cluster's workers; the model is
    written into ``context.output_dir``, as ``Algorithm.train`` writes it."""
    spec, resources = runner.spec, runner.spec.resources
    client: Client = connect(resources.scheduler, resources.connect_timeout)
    future = None
    try:
        if resources.workers:
            wait_for_workers(client, resources.workers, resources.worker_start_timeout)
        check_imports(client, __name__)  # a worker must have Skiff's own code for this
        if ":" in spec.algorithm:
            check_imports(client, spec.algorithm.partition(":")[0])
        relay = _Relay(runner)
        client.subscribe_topic(topic(spec.name), relay)
        where = f"a worker of {resources.scheduler} reads {', '.join(spec.channels)}"
        runner.move(Status.IN_PROGRESS, Secondary.DOWNLOADING, where)
        future = client.submit(
            train_task,
            spec.model_dump_json(),
            runner.store.root,
            runner.store.storage_options,
            hyperparameters,
            context.report,
            context.each_round,
            key=f"skiff-train-{spec.name}",
            pure=False,
        )
        try:
            model, model_bytes, label, features, sent = future.result()
        except Exception as exc:  # what the worker said before it failed goes first
            relay.wait_for(getattr(exc, "skiff_events", 0), LOG_WAIT)
            raise
        relay.wait_for(sent, LOG_WAIT)
        runner.take_columns(label, features)
        (context.output_dir / model.model_file).write_bytes(model_bytes)
        return model
    finally:
        with contextlib.suppress(Exception):  # a frozen worker must not turn a failure into a hang
            if future is not None:
                future.cancel()
            client.close(timeout=5)
