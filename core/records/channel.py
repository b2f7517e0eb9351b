"""A running job's live channel: what it tells whoever follows it, from any machine, through
the store.

    jobs/<name>/heartbeat.json   its runner is alive (``JobStore.beat``, every few seconds)
    jobs/<name>/rounds.jsonl     one JSON object a round, ``{"round": 7, "train_auc": ...}``,
                                 rewritten whole at least every second while rounds come
    jobs/<name>/log.txt          its log (``JobStore.write_log``)

One writer of rounds (``RoundsWriter``: the runner's, or on Dask the rank-0 worker's) and one
reader for every consumer (``JobFeed``: ``skiff jobs logs --follow``, and whatever follows a
job next: tuning's early stopping, a notebook's streamed log).
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from core.errors import NotFoundError
from core.records.jobs import JobStatus, JobStore
from core.store import Store

ROUNDS_FILE = "rounds.jsonl"


class RoundsWriter:
    """Each round's metrics, written to the store at least every ``every`` seconds (and on
    ``flush``). It pickles to a store root and a job name, so it can run in a Dask worker."""

    def __init__(self, store_root: str, name: str, every: float = 1.0):
        self.store_root, self.name, self.every = store_root, name, every
        self._rounds: list[dict[str, Any]] = []
        self._written, self._saved_at = 0, 0.0
        self._jobs: JobStore | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {"store_root": self.store_root, "name": self.name, "every": self.every}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    def __call__(self, round: int, metrics: dict[str, float]) -> None:
        with self._lock:
            self._rounds.append({"round": round, **metrics})
        if time.monotonic() - self._saved_at >= self.every:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            if len(self._rounds) == self._written:
                return
            text = "".join(json.dumps(r) + "\n" for r in self._rounds)
            count = len(self._rounds)
        if self._jobs is None:
            self._jobs = JobStore(Store(self.store_root))
        self._jobs.store.write_bytes(JobStore.key(self.name, ROUNDS_FILE), text.encode())
        self._written, self._saved_at = count, time.monotonic()


LOG_EVERY = 10  # a job's log shows every tenth round (and the first and last)


def logged(round_: int, total: int | None) -> bool:
    """Whether a job's log shows round ``round_`` (counted from 0)."""
    return round_ == 0 or (round_ + 1) % LOG_EVERY == 0 or round_ + 1 == total


# A round in a job's log is in SageMaker's XGBoost format, ``[39] train-auc:0.81593
# validation-auc:0.80998`` (what SageMaker code and its metric regexes read, through the API's
# CloudWatch Logs); Skiff's own views show it to people as ``round 40/100: validation_auc
# 0.8100, train_auc 0.8159`` (``for_people``).
_TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:\d\d|Z)? "  # a log line's start
_SAGEMAKER_ROUND = re.compile(
    rf"^({_TIME})?\[(\d+)\]((?: [A-Za-z0-9_]+-[A-Za-z0-9_@.]+:[-+0-9.eEinfa]+)+)$"
)
_LEADING_TIME = re.compile(f"^{_TIME}")


def planned_rounds(spec: Any) -> int | None:
    """How many rounds a job trains, where its hyperparameters say (``num_round``)."""
    total = getattr(spec, "hyperparameters", {}).get("num_round")
    return total if isinstance(total, int) else None


def log_line(round_: int, metrics: dict[str, float]) -> str:
    """Round ``round_`` (from 0) as a job's log shows it: SageMaker's format."""
    parts = (f"{name.replace('_', '-', 1)}:{value:.5f}" for name, value in metrics.items())
    return f"[{round_}] " + " ".join(parts)


def round_line(round_: dict[str, Any], total: int | None = None) -> str:
    """A round for people: ``round 40/100: validation_auc 0.8012, train_auc 0.8190`` (rounds
    are numbered from 1 here, from 0 in the channel; validation metrics first)."""
    names = sorted((k for k in round_ if k != "round"), key=lambda k: not k.startswith("valid"))
    shown = ", ".join(f"{k} {round_[k]:.4f}" for k in names)
    return f"round {round_['round'] + 1}{f'/{total}' if total else ''}: {shown}"


def for_people(line: str, total: int | None = None) -> str:
    """A job's log line as Skiff shows it: a round in SageMaker's format as ``round_line``
    writes it (after the line's time, if it has one); any other line as it is."""
    found = _SAGEMAKER_ROUND.match(line)
    if not found:
        return line
    metrics = {}
    for part in found[3].split():
        name, _, value = part.partition(":")
        metrics[name.replace("-", "_", 1)] = float(value)
    return (found[1] or "") + round_line({"round": int(found[2]), **metrics}, total)


def is_round(line: str) -> bool:
    """Whether a job's log line is a round (in SageMaker's format, after its time or not)."""
    return _SAGEMAKER_ROUND.match(line) is not None


def untimed(line: str) -> str:
    """A log line without the time it starts with (a log that stamps it again needs one)."""
    return _LEADING_TIME.sub("", line, count=1)


def read_rounds(jobs: JobStore, name: str) -> list[dict[str, Any]]:
    """Every round the job has reported so far."""
    try:
        raw = jobs.store.read_bytes(JobStore.key(name, ROUNDS_FILE))
    except NotFoundError:
        return []
    return [json.loads(line) for line in raw.decode().splitlines() if line.strip()]


@dataclass
class Update:
    """What is new in a job since the last look."""

    log: str
    rounds: list[dict[str, Any]]
    status: JobStatus
    lost: str | None  # why it is lost, if it is

    @property
    def over(self) -> bool:
        return self.status.status.terminal or self.lost is not None


@dataclass
class JobFeed:
    """Follows one job: each ``poll`` says what is new in its log and rounds, its status, and
    whether it is lost.

    Raises:
        JobError: there is no job of that name.
    """

    jobs: JobStore
    name: str
    _log_shown: int = 0
    _rounds_shown: int = 0

    def poll(self) -> Update:
        status = self.jobs.status(self.name)
        log = self.jobs.log(self.name)
        new = Update(log[self._log_shown :], self.new_rounds(), status, self.jobs.lost(status))
        self._log_shown = len(log)
        return new

    def new_rounds(self) -> list[dict[str, Any]]:
        """The rounds reported since the last look (one read: what a tuner follows)."""
        rounds = read_rounds(self.jobs, self.name)
        fresh, self._rounds_shown = rounds[self._rounds_shown :], len(rounds)
        return fresh
