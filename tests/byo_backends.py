"""A bring-your-own backend named by dotted path, with options of its own (the tests' stand-in
for a SLURM or Kubernetes backend someone writes)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from backends.base import BackendOptions
from backends.local import LocalBackend, LocalOptions
from core.records.jobs import TrainingJob


class NiceOptions(LocalOptions):
    """Options of the nice backend: the local one, at a lower priority."""

    niceness: int = Field(0, ge=0, le=19, description="how nice the job's process is")
    queue: str = Field("default", description="which queue to charge")


class NiceBackend(LocalBackend):
    """The local backend, recording its own options in the job's resources."""

    name: ClassVar[str] = "nice"
    Options: ClassVar[type[BackendOptions]] = NiceOptions
    options: NiceOptions

    def prepare(self, job: TrainingJob) -> TrainingJob:
        job = super().prepare(job)
        own = {"niceness": self.options.niceness, "queue": self.options.queue}
        return job.model_copy(update={"resources": job.resources.under(own)})
