"""The entry point every backend runs: ``python -m algorithms.run <job-spec-url> [--scheduler A]``.

Locally it runs in a child process; on a remote machine it runs the same way. ``--scheduler``
(a Dask scheduler's address, e.g. one started beside it on a training instance) overrides the
spec's, so the job trains there with the algorithm's distributed variant. It reads the
spec, reads the channels, trains, uploads the model and its metadata (published last), and
records every status change in the job's folder. The job is the runner's (``watch``): it
beats the job's heartbeat, and stops the job itself at its max runtime or when asked, with or
without its launcher, which only waits, backs those up, and records an unexpected death.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from algorithms import channels
from algorithms.archive import write_model_archive
from algorithms.base import TrainedModel, TrainingContext, TrainingData
from algorithms.catalog import resolve_algorithm
from algorithms.watch import JobLog, Watch
from core.clock import now
from core.errors import SkiffError
from core.provenance import provenance
from core.records.channel import RoundsWriter
from core.records.jobs import JobStatus, JobStore, Secondary, Status, TrainingJob, split_spec_url
from core.records.manifest import ModelManifest
from core.store import Store

STOP_SIGNAL = signal.SIGUSR2  # the watch to the main thread: the job is over (on_dask: USR1)
STOP_GRACE = 10.0


class JobStopped(BaseException):
    """Raised in the runner's main thread when its watch has ended the job."""


def _raise_stopped(signum: int, frame: object) -> None:
    raise JobStopped


class Runner:
    """Runs one job of a kind (``jobs``: its records), moving its status along as it goes: the
    watch, the stop, the record of how it ended. Subclasses do the work, in ``_run``."""

    def __init__(self, jobs: JobStore, name: str):
        self.store, self.jobs = jobs.store, jobs
        self.spec: Any = self.jobs.spec(name)
        self.status: Any = self.jobs.status(name)
        # When the job must be over: its max runtime counts from its creation. The watch
        # stops it then, and a wait for the cluster's lock gives up before.
        created = datetime.fromisoformat(self.status.started_at or now())
        self.deadline = created.timestamp() + self.spec.max_runtime_seconds
        self.log = JobLog(self.jobs, name)
        self._lock = threading.RLock()  # the watch may end the job while it moves along

    def move(self, status: Status, secondary: Secondary, message: str = "", **changes: Any) -> None:
        """Move the job's status along; a job already over stays as it ended (the watch may
        have ended it while its work still reports)."""
        with self._lock:
            if self.status.status.terminal:
                return
            self.status = self.status.moved(status, secondary, message, **changes)
            self.jobs.write_status(self.status)
        self.log(f"{status}/{secondary}" + (f": {message}" if message else ""))
        self.log.save()

    def flush(self) -> None:
        """Save what is kept in memory as the job goes (its rounds), before it ends."""

    def run(self) -> JobStatus:
        watch = Watch(self.jobs, self.spec, self.deadline, self.log, self._stop)
        if threading.current_thread() is threading.main_thread():
            signal.signal(STOP_SIGNAL, _raise_stopped)
        watch.start()
        try:
            self._run()
        except BaseException as exc:  # record every failure, then let the process end
            self.record_end(exc)
            if not isinstance(exc, Exception | JobStopped):
                raise
        finally:
            watch.done.set()
            self.flush()
        return self.status

    def _stop(self, secondary: Secondary, why: str) -> None:
        """End the job Stopped (from the watch): record it, then stop the work in the main
        thread, which unwinds at its next Python step (between two rounds, say); one deep in C
        code for longer than STOP_GRACE seconds ends with the process."""
        with self._lock:
            if self.status.status.terminal:
                return
            self.flush()
            if secondary == Secondary.STOPPED:  # asked: say so at once, as SageMaker does
                self.move(Status.STOPPING, Secondary.STOPPING, why)
            self.move(Status.STOPPED, secondary, why, failure_reason=why)
        signal.pthread_kill(threading.main_thread().ident, STOP_SIGNAL)  # type: ignore[arg-type]
        time.sleep(STOP_GRACE)
        os._exit(1)

    def record_end(self, exc: BaseException, context: str = "") -> None:
        """Record why the job ended: ``exc`` stopped it (Ctrl-C) or failed it."""
        if isinstance(exc, JobStopped) or self.status.status.terminal:
            return  # the watch recorded why
        if isinstance(exc, KeyboardInterrupt):
            self.move(Status.STOPPED, Secondary.STOPPED, "interrupted")
            return
        reason = str(exc) if isinstance(exc, SkiffError) else f"{type(exc).__name__}: {exc}"
        reason = context + reason
        self.move(Status.FAILED, Secondary.FAILED, reason, failure_reason=reason)

    def _run(self) -> None:
        raise NotImplementedError


class JobRunner(Runner):
    """Runs one training job."""

    spec: TrainingJob

    def __init__(self, store: Store, name: str, scheduler: str | None = None):
        super().__init__(JobStore(store), name)
        if scheduler:
            self.use_scheduler(scheduler)
        self.rounds = RoundsWriter(store.root, name)

    def use_scheduler(self, address: str) -> None:
        """Train on the Dask scheduler at ``address``, whatever the spec's resources say."""
        resources = self.spec.resources.model_copy(update={"scheduler": address})
        self.spec = self.spec.model_copy(update={"resources": resources})

    def flush(self) -> None:
        self.rounds.flush()

    def _run(self) -> None:
        spec = self.spec
        if self.status.transitions and self.status.transitions[0].message != "created":
            self.log(f"created {self.status.transitions[0].message}")  # where it was placed
        self.move(Status.IN_PROGRESS, Secondary.STARTING, f"pid {os.getpid()}")
        algorithm = resolve_algorithm(spec.algorithm)
        hyperparameters = algorithm.validate_hyperparameters(spec.hyperparameters)
        for line in getattr(algorithm, "hyperparameter_notes", lambda given: [])(
            spec.hyperparameters
        ):
            self.log(line)
        with tempfile.TemporaryDirectory(prefix=f"skiff-{spec.name}-") as tmp:
            context = TrainingContext(
                output_dir=Path(tmp),
                log=self.log,
                threads=spec.resources.threads,
                report=self.rounds,
                each_round=tuple(spec.each_round) if spec.each_round is not None else None,
            )
            scheduler = spec.resources.scheduler
            if scheduler and spec.resources.placement == "worker":
                from algorithms.on_a_worker import train_on_a_worker  # distributed: only here

                model = train_on_a_worker(self, hyperparameters, context)
            elif scheduler and hasattr(algorithm, "train_distributed"):
                from algorithms.on_dask import train_on_cluster  # distributed loads only here

                model = train_on_cluster(self, algorithm, hyperparameters, context)
            else:
                if scheduler:
                    self.log(
                        f"{spec.algorithm} has no distributed variant: training in the "
                        "driver process"
                    )
                model = self._train_here(algorithm, hyperparameters, context)
            self.move(Status.IN_PROGRESS, Secondary.UPLOADING, model.model_file)
            model_path = Path(tmp) / model.model_file
            digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
            model_url = self.store.upload_file(
                model_path, self.jobs.output_key(spec.name, model.model_file)
            )
            if spec.artifact_url:  # SageMaker's layout too, for SageMaker code to read
                write_model_archive(model_path, spec.artifact_url, self.store.storage_options)
                self.log(f"model archive: {spec.artifact_url}")
        manifest = ModelManifest(
            model_file=model.model_file,
            model_url=model_url,
            sha256=digest,
            predictor=model.predictor,
            label=self.spec.label,  # the data's own, for a job that took them from it
            features=self.spec.features,
            feature_schema=spec.feature_schema,
            metrics=model.metrics,
            history=model.history,
            info=model.info,
            algorithm=spec.algorithm,
            hyperparameters=hyperparameters,
            job_name=spec.name,
            dataset_id=spec.dataset_id,
            tuning_job=spec.tuning_job,
            provenance=provenance(),
        )
        # The manifest is written last, so readers trust what it names.
        self.jobs.publish(self.jobs.manifest_key(spec.name), manifest)
        self.move(
            Status.COMPLETED,
            Secondary.COMPLETED,
            json.dumps(model.metrics),
            metrics=model.metrics,
            model_url=model_url,
            info={"provenance": manifest.provenance, **model.info},
        )

    def training_data(self, frames: dict[str, Any]) -> TrainingData:
        """The job's channels, read (pandas or Dask frames), as an algorithm takes them."""
        data = channels.training_data(self.spec, frames)
        self.take_columns(data.label, data.features)
        return data

    def take_columns(self, label: str, features: list[str]) -> None:
        """A job whose data names its own columns (SageMaker's formats) takes them from its
        train channel: they are recorded in the spec, and in the model's manifest."""
        if not self.spec.features:
            self.spec = self.spec.model_copy(update={"label": label, "features": features})
            self.log(f"label {label!r}, {len(features)} features")

    def _train_here(
        self, algorithm: Any, hyperparameters: dict[str, Any], context: TrainingContext
    ) -> TrainedModel:
        spec = self.spec
        self.move(Status.IN_PROGRESS, Secondary.DOWNLOADING, ", ".join(spec.channels))
        frames = channels.read_job_channels(spec, self.store)
        data = self.training_data(frames)
        self.log(f"read {', '.join(f'{k}: {len(v)} rows' for k, v in frames.items())}")
        self.move(Status.IN_PROGRESS, Secondary.TRAINING, spec.algorithm)
        return algorithm.train(data, hyperparameters, context)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m algorithms.run", description=__doc__)
    parser.add_argument("spec_url", help="URL of the job's job.json in the store")
    parser.add_argument("--scheduler", help="train on this Dask scheduler (tcp://host:8786)")
    args = parser.parse_args(argv)
    root, name = split_spec_url(args.spec_url)
    status = JobRunner(Store(root), name, args.scheduler).run()
    return 0 if status.status == Status.COMPLETED else 1


if __name__ == "__main__":
    sys.exit(main())
