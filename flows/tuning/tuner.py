"""The tuner: runs a tuning job's trials as training jobs, at most ``max_parallel`` at once,
and drives an Optuna study by ask and tell from what the jobs report.

It follows each running trial through its job's live channel (``rounds.jsonl``: the
objective each round), reports every round to the study, and asks the study's pruner whether
to stop the trial there; a trial it stops ends Stopped, as SageMaker's early-stopped jobs do.
The objective is the trial's own final metric on the channel the objective names (a tuning
job's trials are given no test channel: it is never seen while tuning).

Reproducible: with a strategy that learns from results (Bayesian, Hyperband), trial ``k`` is
asked only once trials ``0..k-max_parallel`` have been told, and exactly those (results that
come in earlier wait their turn), so the same seed proposes the same hyperparameters whatever
order the trials end in; Random's proposals depend on the seed alone, so it never waits.
(Which trials a pruner stops depends on what has ended when it looks, so early stopping is
reproducible only one trial at a time.)
"""

from __future__ import annotations

import contextvars
import logging
import secrets
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.pruners import NopPruner
from optuna.trial import TrialState

from core.clock import now
from core.errors import JobError
from core.records.channel import JobFeed
from core.records.jobs import JobStatus, JobStore, Status, TrainingJob
from core.records.tuning import (
    TUNER_BEAT_SECONDS,
    Trial,
    TuningRecord,
    TuningSpec,
    TuningStatus,
    TuningStore,
)
from core.store import Store
from flows.tuning import ranges as parameter_ranges
from flows.tuning.strategies import make_study

logger = logging.getLogger(__name__)
Launch = Callable[[TrainingJob], JobStatus]  # runs a recorded-to-be job to its end


def trial_job_name(tuning: str, number: int) -> str:
    """``<tuning>-<NNN>-<8 hex>``, as SageMaker names a tuning job's training jobs."""
    return f"{tuning}-{number:03d}-{secrets.token_hex(4)}"


@dataclass
class _Running:
    trial: Trial
    asked: optuna.Trial
    future: Future[JobStatus]
    feed: JobFeed  # its job's live channel: the rounds not yet reported to the study
    last: float | None = None  # the objective at the last round reported
    stop_sent: bool = False


@dataclass
class _Told:
    """What the study will be told of a trial once its turn comes."""

    value: float | None
    state: TrialState


class Tuner:
    """Runs one recorded tuning job to its end.

    Args:
        spec: the tuning job (recorded in ``store``'s ``TuningStore``).
        store: where its record and its trials' jobs live.
        launch: runs one trial's job to its end (a backend's ``run``); called in a thread
            of the tuner's pool, in a copy of the caller's context (a Prefect run's).
        log: where progress lines go.
        poll: seconds between looks at the running trials.
    """

    def __init__(
        self,
        spec: TuningSpec,
        store: Store,
        launch: Launch,
        log: Callable[[str], None] = logger.info,
        poll: float = 0.5,
    ):
        self.spec, self.launch, self.log, self.poll = spec, launch, log, poll
        self.jobs, self.tunings = JobStore(store), TuningStore(store)
        self.record = self.tunings.record(spec.name)
        self.study = make_study(spec)
        self.prunes = not isinstance(self.study.pruner, NopPruner)
        self.distributions = {r.name: parameter_ranges.distribution(r) for r in spec.ranges}
        self._running: dict[int, _Running] = {}
        self._held: dict[int, tuple[optuna.Trial, _Told]] = {}  # ended, not yet told
        self._told = 0  # trials 1.._told have been told
        self._stopping = False
        self._saved_at = 0.0

    def run(self) -> TuningRecord:
        """Run the trials; return the final record (Completed, Failed or Stopped).

        On an interruption (Ctrl-C, a cancelled flow run) the running trials are asked to
        stop and waited for, and the record ends Stopped before it is raised on.
        """
        spec = self.spec
        self.log(
            f"tuning {spec.name}: {spec.max_trials} trials, {spec.max_parallel} at a time, "
            f"{spec.strategy}, {'maximise' if spec.objective.maximize else 'minimise'} "
            f"{spec.objective.metric} over " + ", ".join(r.describe() for r in spec.ranges)
        )
        with ThreadPoolExecutor(spec.max_parallel, thread_name_prefix="skiff-trial") as pool:
            try:
                self._loop(pool)
            except BaseException:
                self._stop_running()
                wait([r.future for r in self._running.values()])
                self._collect()
                self._end(TuningStatus.STOPPED, "interrupted")
                raise
        return self._finish()

    # -- the loop -------------------------------------------------------------------------
    def _loop(self, pool: ThreadPoolExecutor) -> None:
        asked = 0
        while True:
            if not self._stopping and self.tunings.stop_requested(self.spec.name):
                self._stopping = True
                self.record.status = TuningStatus.STOPPING
                self._save()
                self.log("stop requested: stopping the running trials, starting no more")
            if self._stopping:
                self._stop_running()
            self._follow()
            self._collect()
            while not self._stopping and asked < self.spec.max_trials and self._may_ask(asked + 1):
                asked += 1
                self._start(pool, asked)
            if not self._running and (self._stopping or asked >= self.spec.max_trials):
                return
            if time.monotonic() - self._saved_at > TUNER_BEAT_SECONDS:
                self._save()  # the record's time is the tuner's heartbeat
            wait([r.future for r in self._running.values()], self.poll, FIRST_COMPLETED)

    def _may_ask(self, number: int) -> bool:
        """Whether trial ``number`` may start: a free slot, and its turn (see the module's
        docstring). Tells every held result up to ``number - max_parallel``."""
        if len(self._running) >= self.spec.max_parallel:
            return False
        if self.spec.strategy == "Random":  # its proposals do not depend on what it was told
            for held in sorted(self._held):
                self._tell(held)
            return True
        due = number - self.spec.max_parallel
        while self._told < due:
            if self._told + 1 not in self._held:
                return False  # an earlier trial is still running: wait for it
            self._tell(self._told + 1)
        return True

    def _tell(self, number: int) -> None:
        asked, told = self._held.pop(number)
        if told.state == TrialState.COMPLETE:
            self.study.tell(asked, told.value)
        else:
            self.study.tell(asked, state=told.state)
        self._told = max(self._told, number)

    def _start(self, pool: ThreadPoolExecutor, number: int) -> None:
        asked = self.study.ask(self.distributions)
        tuned = {r.name: parameter_ranges.value(r, asked.params[r.name]) for r in self.spec.ranges}
        definition = self.spec.definition
        job = definition.model_copy(
            update={
                "name": trial_job_name(self.spec.name, number),
                "hyperparameters": {**definition.hyperparameters, **tuned},
                "tuning_job": self.spec.name,
                "each_round": [self.spec.objective.channel],  # the rest once, at the end
                "created_at": now(),
            }
        )
        trial = Trial(number=number, job_name=job.name, hyperparameters=tuned)
        self.record.trials.append(trial)
        self._save()
        self.log(f"trial {number} ({job.name}): {describe(tuned)}")
        future = pool.submit(contextvars.copy_context().run, self.launch, job)
        self._running[number] = _Running(trial, asked, future, JobFeed(self.jobs, job.name))

    def _follow(self) -> None:
        """Report each running trial's new rounds; stop one the pruner gives up on."""
        key = self.spec.objective.key
        for running in self._running.values():
            fresh = running.feed.new_rounds()
            if running.trial.status == Status.PENDING and fresh:
                running.trial.status = Status.IN_PROGRESS  # it trains: say so
                self._save()
            for row in fresh:
                if (value := row.get(key)) is not None:
                    running.last = float(value)
                    running.asked.report(running.last, step=int(row["round"]))
            if fresh and self.prunes and not running.stop_sent and running.asked.should_prune():
                self._request_stop(running)
                running.trial.early_stopped = True
                self.log(
                    f"trial {running.trial.number}: stopped early at round "
                    f"{fresh[-1]['round'] + 1} ({key} {fresh[-1].get(key, float('nan')):.4f})"
                )

    def _stop_running(self) -> None:
        for running in self._running.values():
            if not running.stop_sent:
                self._request_stop(running)

    def _request_stop(self, running: _Running) -> None:
        try:
            self.jobs.request_stop(running.trial.job_name)
        except JobError:
            return  # not recorded yet: asked again at the next look
        running.stop_sent = True

    def _collect(self) -> None:
        """Record every trial whose job has ended, and hold what the study will be told."""
        for number, running in list(self._running.items()):
            if not running.future.done():
                continue
            del self._running[number]
            trial, told = self._outcome(running)
            self._held[number] = (running.asked, told)
            self._rank(trial)
            self._save()
            if trial.objective is not None and trial.status == Status.COMPLETED:
                ended = f"{self.spec.objective.metric} {trial.objective:.4f}"
            else:
                why = trial.failure_reason
                ended = f"{trial.status}" + (f": {why}" if why else "")
            self.log(f"trial {number} ({trial.job_name}) ended: {ended}")

    def _outcome(self, running: _Running) -> tuple[Trial, _Told]:
        trial, key = running.trial, self.spec.objective.key
        trial.ended_at = now()
        try:
            status = running.future.result()
        except Exception as exc:  # it could not start (its record says why, if it has one)
            trial.status, trial.failure_reason = Status.FAILED, f"{type(exc).__name__}: {exc}"
            return trial, _Told(None, TrialState.FAIL)
        trial.status, trial.failure_reason = status.status, status.failure_reason
        if status.status == Status.COMPLETED:
            trial.early_stopped = False  # it ended before the stop reached it
            if key not in status.metrics:
                trial.status = Status.FAILED
                trial.failure_reason = (
                    f"the job reported no {self.spec.objective.metric} (its metrics: "
                    f"{', '.join(sorted(status.metrics)) or 'none'})"
                )
                return trial, _Told(None, TrialState.FAIL)
            trial.objective = status.metrics[key]
            return trial, _Told(trial.objective, TrialState.COMPLETE)
        if trial.early_stopped and status.status == Status.STOPPED:
            trial.failure_reason = "stopped early by the tuning job (behind earlier trials)"
            trial.objective = running.last
            return trial, _Told(None, TrialState.PRUNED)
        return trial, _Told(None, TrialState.FAIL)

    def _rank(self, trial: Trial) -> None:
        if trial.status != Status.COMPLETED or trial.objective is None:
            return
        best = self.record.best_trial
        if best is None or self.spec.objective.better(trial.objective, best.objective or 0.0):
            self.record.best = trial.number

    def _finish(self) -> TuningRecord:
        while self._held:
            self._tell(min(self._held))
        counts = self.record.counts()
        if self._stopping:
            return self._end(TuningStatus.STOPPED, "stop requested")
        if self.record.best is None:
            reasons = sorted({t.failure_reason or str(t.status) for t in self.record.trials})
            return self._end(
                TuningStatus.FAILED,
                f"no trial completed ({counts['Failed']} failed, {counts['Stopped']} stopped): "
                + "; ".join(reasons),
            )
        return self._end(TuningStatus.COMPLETED, None)

    def _end(self, status: TuningStatus, reason: str | None) -> TuningRecord:
        self.record.status, self.record.failure_reason = status, reason
        self.record.ended_at = now()
        self._save()
        best = self.record.best_trial
        summary = f"tuning {self.spec.name} ended {status}" + (f": {reason}" if reason else "")
        if best is not None:
            summary += (
                f"; best: trial {best.number} ({best.job_name}), {self.spec.objective.metric} "
                f"{best.objective:.4f}, {describe(best.hyperparameters)}"
            )
        self.log(summary)
        return self.record

    def _save(self) -> None:
        self.tunings.write(self.record)
        self._saved_at = time.monotonic()


def describe(hyperparameters: dict[str, Any]) -> str:
    """``eta=0.123 max_depth=7``: a trial's hyperparameters in a line (a task run's name)."""
    return " ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in hyperparameters.items()
    )
