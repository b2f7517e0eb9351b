"""Tuning jobs' operations, as the pipeline, the ``tune`` flow, the CLI and ``skiff api``
all use them: check and record one, run one on its backend, stop one."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from algorithms.xgboost_params import eval_metrics, metric_base, validate_hyperparameters
from backends import get_backend
from core.errors import SkiffError, TuningError
from core.records.jobs import JobStatus, TrainingJob
from core.records.tuning import TuningRecord, TuningSpec, TuningStatus, TuningStore
from core.store import Store
from flows.tuning.ranges import check_ranges
from flows.tuning.strategies import pruner
from flows.tuning.tuner import Launch, Tuner

logger = logging.getLogger(__name__)


def check(spec: TuningSpec) -> None:
    """Everything about ``spec`` that can be known before a trial runs.

    Raises:
        TuningError: naming what is wrong (a range, the objective, the strategy).
    """
    definition = spec.definition
    check_ranges(definition.algorithm, definition.hyperparameters, spec.ranges)
    channel = spec.objective.channel
    if channel == "test" or channel not in definition.channels:
        raise TuningError(
            f"objective {spec.objective.metric!r}: the trials are given the channels "
            f"{', '.join(sorted(definition.channels))}, and a tuning job chooses on one of "
            "them (validation, never a test split)"
        )
    if definition.algorithm == "xgboost":
        _check_xgboost_metric(spec)
    pruner(spec)  # Hyperband with early stopping is refused here


def _check_xgboost_metric(spec: TuningSpec) -> None:
    """XGBoost's trials report the eval metrics of their hyperparameters: the objective
    must be one of them (``validation:auc`` needs ``eval_metric`` to include ``auc``, which
    binary objectives have by default)."""
    tuned = {r.name: (r.values[0] if r.values else r.low) for r in spec.ranges}
    metrics = eval_metrics(validate_hyperparameters(spec.definition.hyperparameters | tuned))
    name = spec.objective.metric.split(":", 1)[1]
    if metrics is not None and name not in metrics:
        raise TuningError(
            f"objective {spec.objective.metric!r}: the trials report "
            f"{', '.join(f'{spec.objective.channel}:{m}' for m in metrics)} "
            "(set eval_metric to report another)"
        )
    if metrics is None and metric_base(name) not in ("rmse", "logloss", "mlogloss"):
        logger.warning("objective %s: make sure eval_metric reports it", spec.objective.metric)


def create(store: Store, spec: TuningSpec) -> TuningRecord:
    """Check ``spec`` and record it InProgress (its tuner is started by the caller).

    Raises:
        TuningError: the spec is invalid, or a tuning job of that name exists.
    """
    check(spec)
    return TuningStore(store).create(spec)


def trial_backend_options(spec: TuningSpec, cores: int | None = None) -> dict[str, Any]:
    """The backend's options for the trials: on the local backend, each trial its share of
    the cores (3 trials on 2 cores: one thread each) unless ``threads`` is given; on the dask
    backend, each trial on one worker thread unless ``placement`` says otherwise (a trial
    spread over every worker would train one at a time, a collective each round)."""
    options = dict(spec.backend_options)
    if spec.backend == "dask" and not options.get("placement"):
        options["placement"] = "worker"
    if spec.backend == "local" and not options.get("threads"):
        parallel = min(spec.max_parallel, spec.max_trials)
        options["threads"] = max(1, (cores or os.cpu_count() or 1) // parallel)
    return options


def run(
    store: Store,
    name: str,
    wrap: Callable[[Launch], Launch] | None = None,
    log: Callable[[str], None] = logger.info,
) -> TuningRecord:
    """Run the recorded tuning job ``name`` to its end on its backend; returns its record.

    ``wrap`` wraps each trial's launch (the ``tune`` flow makes each a task run). A backend
    that cannot be made ends the tuning job Failed, saying why.
    """
    tunings = TuningStore(store)
    spec = tunings.spec(name)
    try:
        backend = get_backend(spec.backend, **trial_backend_options(spec))
    except SkiffError as exc:
        record = tunings.record(name)
        record.status, record.failure_reason = TuningStatus.FAILED, str(exc)
        tunings.write(record)
        raise
    with backend:
        backend.expect_many_jobs()

        def launch(job: TrainingJob) -> JobStatus:
            return backend.run(job, store)

        return Tuner(spec, store, wrap(launch) if wrap else launch, log).run()
