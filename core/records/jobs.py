"""Training jobs as stored records: the spec, its status history, its log and its output.

Layout under the store root::

    jobs/<name>/job.json         the spec, claimed (so names are unique)
    jobs/<name>/status.json      status, secondary status, transitions, failure reason, metrics
    jobs/<name>/log.txt          the training log, rewritten whole as it grows
    jobs/<name>/heartbeat.json   when its runner last said it is alive (every few seconds)
    jobs/<name>/rounds.jsonl     each round's metrics as it trains (``core.records.channel``)
    jobs/<name>/stop-requested   present once someone asked the job to stop
    jobs/<name>/output/          model file, then model.json (its manifest, published last)
    jobs/<name>/cluster/         what a job's instances tell each other (the ec2 backend)
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from core.clock import now
from core.errors import AlreadyExistsError, JobError, NotFoundError, SkiffError
from core.names import JobName, check_name
from core.records.base import Records
from core.records.manifest import MANIFEST_FILE, ModelManifest


class Status(StrEnum):
    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    STOPPING = "Stopping"  # asked to stop, its runner stopping it
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPED = "Stopped"

    @property
    def terminal(self) -> bool:
        return self in (Status.COMPLETED, Status.FAILED, Status.STOPPED)


class Secondary(StrEnum):
    STARTING = "Starting"
    DOWNLOADING = "Downloading"
    TRAINING = "Training"
    UPLOADING = "Uploading"
    STOPPING = "Stopping"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPED = "Stopped"
    MAX_RUNTIME_EXCEEDED = "MaxRuntimeExceeded"
    TRANSFORMING = "Transforming"  # a transform job's (``core.records.transforms``)


class JobResources(BaseModel):
    """``resources`` in a job's spec: what its backend gave it, as the job's runner reads it.

    A backend fills the fields that concern it; the others stay unset and are not stored.
    The defaults here are the only statement of them (the dask backend's options take theirs
    from here). A backend given by dotted path may record fields of its own.
    """

    model_config = ConfigDict(extra="allow")

    threads: int = Field(0, ge=0, description="training threads of the runner (0: every core)")
    scheduler: str | None = Field(None, description="a Dask scheduler: train there")
    cluster: str | None = Field(None, description="what that cluster is, for people")
    workers: int | None = Field(None, ge=1, description="workers to wait for (still starting)")
    worker_start_timeout: float = Field(60, gt=0, description="seconds to wait for them")
    connect_timeout: float = Field(10, gt=0, description="seconds to reach the scheduler")
    collective_timeout: float = Field(
        300, gt=0, description="seconds an xgboost collective may wait on a peer"
    )
    partition_mb: int = Field(64, ge=1, description="a transform job's blocks on a cluster, MB")
    placement: Literal["cluster", "worker"] = Field(
        "cluster",
        description="on a Dask cluster: train across every worker (xgboost.dask, one job at "
        "a time), or the whole job on one worker thread (jobs side by side)",
    )
    # The ec2 backend's launch.
    job_id: str | None = Field(None, description="the launch's id: the instances' skiff:job-id")
    instance_type: str | None = None
    instance_count: int | None = None
    ami: str | None = None
    region: str | None = None
    spot: bool | None = None

    def under(self, defaults: dict[str, Any]) -> JobResources:
        """These resources, with ``defaults`` where they say nothing (the job's own win)."""
        return JobResources.model_validate(defaults | self.model_dump(exclude_unset=True))


class TrainingJob(BaseModel):
    """A job spec: what to train, on which data, where to put the result, on what compute.

    Channels are Skiff's own datasets (Parquet, named columns) unless ``content_types`` names
    their SageMaker format (``algorithms.channels``); then ``features`` may be empty, and the
    runner takes the label and features from the train channel. ``artifact_url`` is where a
    SageMaker ``model.tar.gz`` of the model goes too; ``request`` is the SageMaker request a
    job was created from, as given (what it asked that Skiff records but does not enforce).
    """

    name: JobName
    algorithm: str = "xgboost"
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    channels: dict[str, str]
    content_types: dict[str, str] = Field(default_factory=dict)
    label: str
    features: list[str]
    output_url: str
    artifact_url: str | None = None
    request: dict[str, Any] | None = None
    backend: str = "local"
    resources: JobResources = Field(default_factory=JobResources)
    max_runtime_seconds: float = Field(3600, gt=0)
    dataset_id: str | None = None
    feature_schema: dict[str, Any] | None = None
    tuning_job: str | None = None  # the tuning job this job is a trial of
    # Channels whose metrics are computed every round (None: every channel); the others are
    # evaluated once, on the final model (a tuning job's trials: the objective's channel).
    each_round: list[str] | None = None
    created_at: str = Field(default_factory=now)

    @field_serializer("resources")
    def _resources_as_given(self, resources: JobResources) -> dict[str, Any]:
        # Only what the backend set: unset fields keep their defaults when read back.
        return resources.model_dump(exclude_unset=True)

    @field_validator("channels")
    @classmethod
    def _has_train(cls, channels: dict[str, str]) -> dict[str, str]:
        if "train" not in channels:
            raise ValueError("a job needs a 'train' channel")
        return channels


class Transition(BaseModel):
    status: Status
    secondary_status: Secondary
    at: str
    message: str = ""


class JobStatus(BaseModel):
    """The status record; every change is appended to ``transitions`` with its time."""

    name: str
    status: Status = Status.PENDING
    secondary_status: Secondary = Secondary.STARTING
    transitions: list[Transition] = Field(default_factory=list)
    failure_reason: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    model_url: str | None = None
    info: dict[str, Any] = Field(default_factory=dict)

    def moved(
        self, status: Status, secondary: Secondary, message: str = "", **changes: Any
    ) -> JobStatus:
        """A copy with the new status recorded as a transition."""
        step = Transition(status=status, secondary_status=secondary, at=now(), message=message)
        return self.model_copy(
            update={
                "status": status,
                "secondary_status": secondary,
                "transitions": [*self.transitions, step],
                **changes,
            }
        )

    @property
    def started_at(self) -> str | None:
        return self.transitions[0].at if self.transitions else None

    @property
    def ended_at(self) -> str | None:
        return self.transitions[-1].at if self.status.terminal else None


HEARTBEAT_SECONDS = 5.0  # how often a job's runner says it is alive
LAUNCHER = "its launcher"  # who beats for a job whose runner has not started yet
LOST_AFTER_SECONDS = 30.0  # a job not terminal and silent this long is lost


class Heartbeat(BaseModel):
    """Who last said the job is alive, and when (a runner, or its launcher before it)."""

    at: str
    by: str
    host: str = ""
    pid: int | None = None

    def silence(self) -> float:
        """Seconds since this heartbeat."""
        return (datetime.now(UTC) - datetime.fromisoformat(self.at)).total_seconds()


def split_spec_url(spec_url: str) -> tuple[str, str]:
    """``<root>/jobs/<name>/job.json`` (what a training machine is given) → (root, name)."""
    head, sep, tail = spec_url.rpartition("/jobs/")
    name = tail.removesuffix("/job.json")
    if not sep or not tail.endswith("/job.json") or "/" in name:
        raise SkiffError(f"{spec_url!r} is not a job spec URL (<store>/jobs/<name>/job.json)")
    return head, name


class JobStore(Records):
    """Reads and writes job records in a store. A transform job's records follow the same
    rules in a folder of their own (``core.records.transforms.TransformStore``)."""

    FOLDER = "jobs"
    KIND = "training job"
    Spec: type[BaseModel] = TrainingJob
    StatusModel: type[JobStatus] = JobStatus

    @classmethod
    def key(cls, name: str, *parts: str) -> str:
        """The key of a job's object; a name no job can have is refused here, naming why."""
        return "/".join((cls.FOLDER, check_name(name, "job", JobError), *parts))

    @classmethod
    def output_key(cls, name: str, file: str = "") -> str:
        return cls.key(name, "output", file) if file else cls.key(name, "output")

    @classmethod
    def manifest_key(cls, name: str) -> str:
        """The key of the job's model manifest (written last, once its model is uploaded)."""
        return cls.output_key(name, MANIFEST_FILE)

    def manifest(self, name: str) -> ModelManifest:
        """The manifest of the model the job made.

        Raises:
            NotFoundError: the job made none (yet).
        """
        return self.read(self.manifest_key(name), ModelManifest)

    def spec_url(self, name: str) -> str:
        return self.store.url(self.key(name, "job.json"))

    def create(self, job: Any, message: str = "created") -> JobStatus:
        """Claim the job's name and record it Pending (``message``: where it will run).

        Raises:
            JobError: a job of that name exists already.
        """
        try:
            self.claim(self.key(job.name, "job.json"), job)
        except AlreadyExistsError:
            raise JobError(f"a {self.KIND} named {job.name!r} already exists") from None
        status = self.StatusModel(name=job.name).moved(Status.PENDING, Secondary.STARTING, message)
        self.write_status(status)
        self.beat(job.name, LAUNCHER)  # until its runner takes over
        return status

    def spec(self, name: str) -> Any:
        return self._read(name, "job.json", self.Spec)

    def status(self, name: str) -> Any:
        try:
            return self._read(name, "status.json", self.StatusModel)
        except JobError:
            # Claimed a moment ago, its first status not written yet (``create`` claims the
            # name first: that is the lock): Pending, Starting, as it is about to say.
            if self.store.exists(self.key(name, "job.json")):
                return self.StatusModel(name=name)
            raise

    def _read(self, name: str, file: str, model: type[Any]) -> Any:
        try:
            return self.read(self.key(name, file), model)
        except NotFoundError:
            raise JobError(f"no {self.KIND} named {name!r} in {self.store.root}") from None

    def write_status(self, status: JobStatus) -> None:
        self.publish(self.key(status.name, "status.json"), status)

    def names(self) -> list[str]:
        return self.names_under(self.FOLDER, "job.json")

    def log(self, name: str) -> str:
        key = self.key(name, "log.txt")
        return self.store.read_bytes(key).decode() if self.store.exists(key) else ""

    def write_log(self, name: str, text: str) -> None:
        self.store.write_bytes(self.key(name, "log.txt"), text.encode())

    def end(self, name: str, status: Status, secondary: Secondary, reason: str) -> JobStatus:
        """End a job that is not over yet (Failed or Stopped, ``reason`` its failure reason);
        a job already over is left as it is (its runner said why first). Returns its status."""
        current = self.status(name)
        if current.status.terminal:
            return current
        ended = current.moved(status, secondary, reason, failure_reason=reason)
        self.write_status(ended)
        return ended

    def request_stop(self, name: str) -> JobStatus:
        """Ask a running job to stop; the backend running it sees the marker and stops it."""
        status = self.status(name)
        if not status.status.terminal:
            self.store.write_bytes(self.key(name, "stop-requested"), now().encode())
        return status

    def stop_requested(self, name: str) -> bool:
        return self.store.exists(self.key(name, "stop-requested"))

    def beat(self, name: str, by: str) -> None:
        """Say that the job is alive: its runner does every few seconds, wherever it runs."""
        beat = Heartbeat(at=now(), by=by, host=socket.gethostname(), pid=os.getpid())
        self.publish(self.key(name, "heartbeat.json"), beat)

    def stand_in(self, name: str) -> None:
        """Beat for a job as its launcher while its runner has not beaten yet (a job still
        starting, instances still booting, is not lost); once the runner beats, the heartbeat
        is the runner's alone, so it says who is alive."""
        beat = self.heartbeat(name)
        if beat is None or beat.by == LAUNCHER:
            self.beat(name, LAUNCHER)

    def heartbeat(self, name: str) -> Heartbeat | None:
        return self.find(self.key(name, "heartbeat.json"), Heartbeat)

    def lost(self, status: JobStatus) -> str | None:
        """Why a job that is not over is lost (its heartbeat stopped), else None. A job whose
        runner died with its machine or was killed would otherwise show InProgress forever."""
        if status.status.terminal:
            return None
        beat = self.heartbeat(status.name)
        if beat is None or (silence := beat.silence()) < LOST_AFTER_SECONDS:
            return None  # a job recorded before heartbeats has none: nothing to judge
        return f"no heartbeat for {silence:.0f} s (the last from {beat.by} on {beat.host})"
