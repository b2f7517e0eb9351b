"""The backend contract: run a training job to a terminal status, and release what you made;
and the options every backend declares beside its code."""

from __future__ import annotations

import argparse
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.json_schema import SkipJsonSchema

from algorithms.catalog import resolve_algorithm
from core.errors import BackendError, describe_invalid
from core.records.jobs import JobStatus, JobStore, Secondary, Status, TrainingJob
from core.records.transforms import TransformJob, TransformStatus, TransformStore
from core.store import Store


class BackendOptions(BaseModel):
    """What a backend is configured with: a pydantic model beside the backend's code that
    imports nothing heavy. The pipeline's options, its flags, the flows' parameters and
    ``--help`` are built from these models (``backends/catalog.py``), and they are validated
    once, here: a backend given a validated model trusts it.

    ``threads`` is the one option the pipeline offers every backend (``--threads``, the flows'
    ``threads``): the chosen backend's options receive it, so it is no flag or form field of
    any backend's own. A backend that cannot use it refuses it by name.
    """

    model_config = ConfigDict(extra="forbid")

    threads: SkipJsonSchema[int | None] = Field(None, ge=0, le=1024, description="training threads")


@dataclass(frozen=True)
class BackendCommand:
    """A ``skiff <backend> <name>`` command that a backend brings (``skiff ec2 reap``).

    ``arguments`` are ``add_argument`` calls as ``(flags, options)``; ``run`` returns rows to
    print as a table of ``columns``, or text to print as it is.
    """

    name: str
    help: str
    run: Callable[[argparse.Namespace], list[dict[str, Any]] | str]
    arguments: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = ()
    columns: tuple[str, ...] = ()


def no_transforms(backend: str) -> BackendError:
    return BackendError(
        f"the {backend} backend does not run transform jobs (yet): use local or dask"
    )


class TrainingBackend(ABC):
    """Runs training jobs, and batch transform jobs where it can, on some compute. Use it as
    a context manager: on exit it releases whatever it created (clusters, instances), whether
    the job succeeded or not.

    Args:
        options: the backend's options, already validated (the pipeline's); or
        **given: the same options as keywords, validated here.
    """

    name: ClassVar[str]
    Options: ClassVar[type[BackendOptions]] = BackendOptions

    def __init__(self, options: BackendOptions | None = None, **given: Any):
        if options is not None and given:
            raise BackendError(f"give the {self.name} backend options or keywords, not both")
        self.options = options if options is not None else self.validate_options(**given)

    @classmethod
    def validate_options(cls, **given: Any) -> BackendOptions:
        """``given`` as the backend's options.

        Raises:
            BackendError: naming each invalid option and why.
        """
        try:
            return cls.Options(**given)
        except ValidationError as exc:
            problems = describe_invalid(exc)
            raise BackendError(f"invalid {cls.name} backend options: {problems}") from None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:  # noqa: B027 - optional hook; the local backend holds nothing
        """Release what this backend created. Must be safe to call more than once."""

    def run(self, job: TrainingJob, store: Store) -> JobStatus:
        """Validate ``job``, record it in ``store`` as Pending, and run it to a terminal status.

        Raises:
            HyperparameterError, AlgorithmError: before anything is recorded.
            JobError: a job of that name exists already.
        """
        resolve_algorithm(job.algorithm).validate_hyperparameters(job.hyperparameters)
        job = self.prepare(job)
        jobs = JobStore(store)
        jobs.create(job)
        return self.execute(job, jobs)

    def run_recorded(self, name: str, store: Store) -> JobStatus:
        """Run a job already recorded Pending (by ``skiff api``, which answers its client at
        once) to a terminal status: prepare it, record what it was given, and execute it. A
        job that cannot start ends Failed, saying why.
        """
        jobs = JobStore(store)
        try:
            job = self.prepare(jobs.spec(name))
            jobs.publish(jobs.key(name, "job.json"), job)  # with the resources it was given
        except Exception as exc:
            reason = f"cannot start on the {self.name} backend: {exc}"
            return jobs.end(name, Status.FAILED, Secondary.FAILED, reason)
        return self.execute(job, jobs)

    def transform(self, job: TransformJob, store: Store) -> TransformStatus:
        """Record a transform job (its options already checked by ``serving.batch``) as
        Pending, and run it to a terminal status.

        Raises:
            BackendError: this backend runs no transform jobs (before anything is recorded).
            JobError: a transform job of that name exists already.
        """
        job = self.prepare_transform(job)
        jobs = TransformStore(store)
        jobs.create(job)
        return self.execute_transform(job, jobs)

    def run_recorded_transform(self, name: str, store: Store) -> TransformStatus:
        """Run a transform job already recorded Pending (by ``skiff api``), as
        ``run_recorded`` runs a training job."""
        jobs = TransformStore(store)
        try:
            job = self.prepare_transform(jobs.spec(name))
            jobs.publish(jobs.key(name, "job.json"), job)
        except Exception as exc:
            reason = f"cannot start on the {self.name} backend: {exc}"
            return jobs.end(name, Status.FAILED, Secondary.FAILED, reason)
        return self.execute_transform(job, jobs)

    def prepare_transform(self, job: TransformJob) -> TransformJob:
        """What ``prepare`` is to a training job. The default refuses: a backend runs
        transform jobs only where it says so.

        Raises:
            BackendError: naming the backend and those that do.
        """
        raise no_transforms(self.name)

    @classmethod
    def runs_transforms(cls) -> bool:
        """Whether this backend runs transform jobs (asked before it is made)."""
        return cls.prepare_transform is not TrainingBackend.prepare_transform

    def execute_transform(self, job: TransformJob, jobs: TransformStore) -> TransformStatus:
        """What ``execute`` is to a training job: the job runs ``python -m serving.batch.run
        <spec-url>`` (or the same code), under the same contract."""
        raise no_transforms(self.name)

    def expect_many_jobs(self) -> None:  # noqa: B027 - optional hook
        """A hint that many short jobs follow (a tuning job's trials), some at once: a backend
        may prepare for them. The local backend then forks each runner from a warm process
        (``backends.warm``). The default does nothing."""

    def prepare(self, job: TrainingJob) -> TrainingJob:
        """Acquire what the job needs and record it in ``job.resources`` (before the job is
        recorded). The default records nothing."""
        return job

    @abstractmethod
    def execute(self, job: TrainingJob, jobs: JobStore) -> JobStatus:
        """Run an already recorded job and return its final status.

        Contract: the job runs ``python -m algorithms.run <spec-url>`` (or the same code)
        somewhere, which moves its status along. When this returns, the status record is
        terminal (Completed, Failed or Stopped) and nothing started for the job still runs.
        A job that outlives ``job.max_runtime_seconds`` ends Stopped with secondary status
        MaxRuntimeExceeded; one whose stop was requested (``jobs.stop_requested``) ends
        Stopped; a runner that dies without a final status ends Failed with a reason.
        """
