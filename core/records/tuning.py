"""Hyperparameter tuning jobs as stored records: the spec, and its record of every trial.

Layout under the store root::

    tuning/<name>/tuning.json      the spec, claimed (so names are unique)
    tuning/<name>/status.json      its status and every trial (job, hyperparameters, objective)
    tuning/<name>/stop-requested   present once someone asked the tuning job to stop

Each trial is a training job of its own (``jobs/<job>/``), whose spec names its tuning job
(``TrainingJob.tuning_job``): ``skiff jobs list`` shows it like any job.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, model_validator

from core.clock import now
from core.errors import AlreadyExistsError, NotFoundError, TuningError
from core.records.base import Records
from core.records.jobs import LOST_AFTER_SECONDS, Status, TrainingJob

TUNER_BEAT_SECONDS = 5.0  # a running tuner saves its record at least this often

TUNING_NAME_RULE = "1-32 letters, digits or hyphens, starting and ending with a letter or digit"
_TUNING_NAME = re.compile(r"^[A-Za-z0-9](-*[A-Za-z0-9]){0,31}$")  # SageMaker's


def check_tuning_name(name: str, error: type[Exception] = TuningError) -> str:
    """``name`` if a tuning job may have it (SageMaker's rule: its trials' names append
    ``-NNN-xxxxxxxx`` and stay within a job name's 63 characters)."""
    if not _TUNING_NAME.match(name):
        raise error(f"tuning job name {name!r} must be {TUNING_NAME_RULE}")
    return name


TuningName = Annotated[str, AfterValidator(lambda n: check_tuning_name(n, ValueError))]


class TuningStatus(StrEnum):
    IN_PROGRESS = "InProgress"
    STOPPING = "Stopping"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPED = "Stopped"

    @property
    def terminal(self) -> bool:
        return self in (TuningStatus.COMPLETED, TuningStatus.FAILED, TuningStatus.STOPPED)


Scaling = Literal["Auto", "Linear", "Logarithmic", "ReverseLogarithmic"]


class ParameterRange(BaseModel):
    """One hyperparameter's range: ``low``..``high`` (continuous or integer, with a scaling)
    or a list of ``values`` (categorical). ``Auto`` scaling is linear."""

    name: str
    kind: Literal["continuous", "integer", "categorical"]
    low: float | None = None
    high: float | None = None
    values: list[str] = Field(default_factory=list)
    scaling: Scaling = "Auto"

    @model_validator(mode="after")
    def _well_formed(self) -> ParameterRange:
        where = f"the range of {self.name!r}"
        if self.kind == "categorical":
            if not self.values:
                raise ValueError(f"{where} lists no values")
            if len(set(self.values)) != len(self.values):
                raise ValueError(f"{where} lists a value twice: {self.values}")
            return self
        if self.low is None or self.high is None:
            raise ValueError(f"{where} needs a low and a high value")
        if self.low > self.high:
            raise ValueError(f"{where} is empty: low {self.low:g} is above high {self.high:g}")
        if self.kind == "integer" and not (self.low.is_integer() and self.high.is_integer()):
            raise ValueError(f"{where} is an integer range: {self.low:g} and {self.high:g}")
        if self.scaling == "Logarithmic" and self.low <= 0:
            raise ValueError(f"{where} is Logarithmic, so its low value must be above 0")
        if self.scaling == "ReverseLogarithmic" and not (self.low >= 0 and self.high < 1):
            raise ValueError(f"{where} is ReverseLogarithmic, so it must lie within [0, 1)")
        if self.scaling == "ReverseLogarithmic" and self.kind == "integer":
            raise ValueError(f"{where}: ReverseLogarithmic scaling is for continuous ranges")
        return self

    def describe(self) -> str:
        """``eta [0, 1]``, ``max_depth 3..10``, ``booster {gbtree, dart}``."""
        if self.kind == "categorical":
            return f"{self.name} {{{', '.join(self.values)}}}"
        scale = "" if self.scaling in ("Auto", "Linear") else f" {self.scaling}"
        if self.kind == "integer":
            return f"{self.name} {int(self.low or 0)}..{int(self.high or 0)}{scale}"
        return f"{self.name} [{self.low:g}, {self.high:g}]{scale}"


class Objective(BaseModel):
    """The metric a tuning job optimises, as SageMaker names it (``validation:auc``): a
    channel and one of the metrics the trials report on it each round."""

    metric: str = Field(pattern=r"^[A-Za-z0-9_-]+:[A-Za-z0-9_@.-]+$")
    maximize: bool = True

    @property
    def channel(self) -> str:
        return self.metric.split(":", 1)[0]

    @property
    def key(self) -> str:
        """The name in a job's metrics and rounds: ``validation_auc``."""
        return self.metric.replace(":", "_", 1)

    def better(self, a: float, b: float) -> bool:
        return a > b if self.maximize else a < b


Strategy = Literal["Bayesian", "Random", "Hyperband"]


class TuningSpec(BaseModel):
    """What a tuning job was asked: the training job every trial starts from (its name is the
    tuning job's; its hyperparameters the static ones), the ranges, the objective, the
    strategy and its limits, the backend the trials run on."""

    name: TuningName
    definition: TrainingJob
    ranges: list[ParameterRange]
    objective: Objective
    strategy: Strategy = "Bayesian"
    max_trials: int = Field(ge=1, le=750)
    max_parallel: int = Field(1, ge=1, le=100)
    early_stopping: Literal["Off", "Auto"] = "Off"
    seed: int = Field(0, ge=0, le=2**31 - 1)
    backend: str = "local"
    backend_options: dict[str, Any] = Field(default_factory=dict)
    request: dict[str, Any] | None = None  # CreateHyperParameterTuningJob's, as given
    created_at: str = Field(default_factory=now)


class Trial(BaseModel):
    """One trial: its training job, the hyperparameters it was given by the tuner, how it
    ended, and its objective (its job's final metric; for one stopped early, its last)."""

    number: int = Field(ge=1)
    job_name: str
    hyperparameters: dict[str, Any]
    status: Status = Status.PENDING
    objective: float | None = None
    failure_reason: str | None = None
    early_stopped: bool = False
    started_at: str = Field(default_factory=now)
    ended_at: str | None = None


class TuningRecord(BaseModel):
    """``status.json``: the tuning job's status and its trials, best first in ``best``."""

    name: str
    status: TuningStatus = TuningStatus.IN_PROGRESS
    failure_reason: str | None = None
    trials: list[Trial] = Field(default_factory=list)
    best: int | None = None  # the number of the best completed trial
    created_at: str = Field(default_factory=now)
    modified_at: str = Field(default_factory=now)
    ended_at: str | None = None

    def trial(self, number: int) -> Trial:
        return next(t for t in self.trials if t.number == number)

    @property
    def best_trial(self) -> Trial | None:
        return self.trial(self.best) if self.best is not None else None

    def counts(self) -> dict[str, int]:
        """Trials by their job's status: Completed, InProgress, Failed, Stopped."""
        counts = {"Completed": 0, "InProgress": 0, "Failed": 0, "Stopped": 0}
        for t in self.trials:
            key = str(t.status) if t.status.terminal else "InProgress"
            counts[key] += 1
        return counts


class TuningStore(Records):
    """Reads and writes tuning job records in a store."""

    @staticmethod
    def key(name: str, *parts: str) -> str:
        return "/".join(("tuning", check_tuning_name(name), *parts))

    def create(self, spec: TuningSpec) -> TuningRecord:
        """Claim the tuning job's name and record it InProgress.

        Raises:
            TuningError: a tuning job of that name exists already.
        """
        try:
            self.claim(self.key(spec.name, "tuning.json"), spec)
        except AlreadyExistsError:
            raise TuningError(f"a tuning job named {spec.name!r} already exists") from None
        record = TuningRecord(name=spec.name, created_at=spec.created_at)
        self.write(record)
        return record

    def spec(self, name: str) -> TuningSpec:
        return self._read(name, "tuning.json", TuningSpec)

    def record(self, name: str) -> TuningRecord:
        try:
            return self._read(name, "status.json", TuningRecord)
        except TuningError:
            if self.store.exists(self.key(name, "tuning.json")):  # claimed a moment ago
                return TuningRecord(name=name)
            raise

    def _read(self, name: str, file: str, model: type[Any]) -> Any:
        try:
            return self.read(self.key(name, file), model)
        except NotFoundError:
            raise TuningError(f"no tuning job named {name!r} in {self.store.root}") from None

    def write(self, record: TuningRecord) -> None:
        record.modified_at = now()
        self.publish(self.key(record.name, "status.json"), record)

    def names(self) -> list[str]:
        return self.names_under("tuning", "tuning.json")

    def request_stop(self, name: str) -> TuningRecord:
        """Ask a tuning job to stop: its tuner stops its running trials and asks no more."""
        record = self.record(name)
        if not record.status.terminal:
            self.store.write_bytes(self.key(name, "stop-requested"), now().encode())
        return record

    def stop_requested(self, name: str) -> bool:
        return self.store.exists(self.key(name, "stop-requested"))

    @staticmethod
    def lost(record: TuningRecord) -> str | None:
        """Why a tuning job that is not over is lost (its tuner stopped saving its record:
        killed, its machine gone), else None. Its trials end on their own, as every job."""
        if record.status.terminal:
            return None
        silence = (datetime.now(UTC) - datetime.fromisoformat(record.modified_at)).total_seconds()
        if silence < LOST_AFTER_SECONDS:
            return None
        return f"its tuner has not said a word for {silence:.0f} s"
