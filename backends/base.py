"""The backend contract: run a training job to a terminal status, and release what you made."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Self

from algorithms.catalog import resolve_algorithm
from core.records.jobs import JobStatus, JobStore, TrainingJob
from core.store import Store


class TrainingBackend(ABC):
    """Runs training jobs on some compute. Use it as a context manager: on exit it releases
    whatever it created (clusters, instances), whether the job succeeded or not.
    """

    name: ClassVar[str]

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
