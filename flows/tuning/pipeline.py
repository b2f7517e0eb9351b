"""The pipeline's tune step (``--tune N``): a tuning job in place of the single training job,
over the pipeline's dataset, whose best trial's model the pipeline then registers, deploys
and evaluates. The trials see the train and validation splits only."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel

from algorithms.xgboost_params import MAXIMISED, metric_base
from core.errors import TrainingFailed, TuningError
from core.records.jobs import JobStatus, JobStore
from core.records.tuning import Objective, ParameterRange, TuningSpec
from core.store import Store
from flows.config import PipelineConfig
from flows.datasets import Dataset
from flows.training import TrainingRequest, make_job
from flows.tuning import jobs
from flows.tuning.flow import run_in_prefect
from flows.tuning.ranges import check_ranges, parse_range

# XGBoost's ranges when none are given: where the bank-marketing data's good models lie, on
# the scales that suit them (learning rate and leaf weight by orders of magnitude).
XGBOOST_RANGES = {
    "eta": "0.01:0.5:log",
    "max_depth": "2:10",
    "min_child_weight": "1:20:log",
    "subsample": "0.5:1",
    "colsample_bytree": "0.3:1",
    "gamma": "0:5",
    "alpha": "0:2",
}
STRATEGIES = {"bayesian": "Bayesian", "random": "Random", "hyperband": "Hyperband"}


class TuningRequest(BaseModel):
    """The options that decide a tuning job's outcome (the tune step's cache key, with the
    dataset): the training request every trial starts from, and how to search."""

    training: TrainingRequest
    trials: int
    parallel: int
    strategy: Literal["bayesian", "random", "hyperband"]
    ranges: dict[str, Any]
    early_stopping: bool
    seed: int
    objective: str
    name: str | None = None

    @classmethod
    def from_config(cls, config: PipelineConfig) -> TuningRequest:
        return cls(
            training=TrainingRequest.from_config(config),
            trials=config.tune,
            parallel=config.tune_parallel,
            strategy=config.tune_strategy,
            ranges=dict(config.tune_ranges),
            early_stopping=config.tune_early_stopping,
            seed=config.tune_seed,
            objective=config.tune_objective,
            name=config.tune_name,
        )


def static_and_ranges(
    algorithm: str, hyperparameters: dict[str, Any], given: dict[str, Any]
) -> tuple[dict[str, Any], list[ParameterRange]]:
    """The static hyperparameters and the ranges of a pipeline's tuning job: the defaults
    (XGBoost's) with the given ranges in their place (``NAME=`` drops a default), the tuned
    names taken out of the static ones, and every range checked against its bounds.

    Raises:
        TuningError: a range that is malformed or outside its hyperparameter's bounds.
    """
    texts = (XGBOOST_RANGES if algorithm == "xgboost" else {}) | given
    texts = {k: v for k, v in texts.items() if str(v).strip()}
    if not texts:
        raise TuningError("give the ranges to tune: --tune-range NAME=LOW:HIGH (or A,B,C)")
    ranges = [parse_range(name, text) for name, text in texts.items()]
    static = {k: v for k, v in hyperparameters.items() if k not in texts}
    check_ranges(algorithm, static, ranges)
    return static, ranges


def tuning_name(group: str) -> str:
    """``<group>-mmdd-HHMMSS-xxxx`` in SageMaker's 32 characters."""
    stamp = datetime.now(UTC).strftime("%m%d-%H%M%S")
    return f"{group[:15].rstrip('-')}-{stamp}-{secrets.token_hex(2)}"


def build_spec(request: TuningRequest, dataset: Dataset, store: Store) -> TuningSpec:
    training = request.training
    static, ranges = static_and_ranges(training.algorithm, training.hyperparameters, request.ranges)
    name = request.name or tuning_name(training.model_group)
    training = training.model_copy(update={"job_name": name, "hyperparameters": static})
    metric = request.objective
    maximize = metric_base(metric.split(":", 1)[-1]) in MAXIMISED
    return TuningSpec(
        name=name,
        definition=make_job(training, dataset, store),
        ranges=ranges,
        objective=Objective(metric=metric, maximize=maximize),
        strategy=STRATEGIES[request.strategy],  # type: ignore[arg-type]
        max_trials=request.trials,
        max_parallel=request.parallel,
        early_stopping="Auto" if request.early_stopping else "Off",
        seed=request.seed,
        backend=request.training.backend,
        backend_options=request.training.backend_options.model_dump(exclude_unset=True),
    )


def tune(request: TuningRequest, dataset: Dataset, store: Store) -> JobStatus:
    """Run the tuning job; return its best trial's job status.

    Raises:
        TuningError: the ranges or the objective are invalid (before any trial runs).
        TrainingFailed: no trial completed (the message says why each ended).
    """
    spec = build_spec(request, dataset, store)
    jobs.create(store, spec)
    record = run_in_prefect(store, spec.name)
    if record.best_trial is None:
        raise TrainingFailed(
            f"tuning job {spec.name} ended {record.status}: {record.failure_reason}",
            {"tuning_job": spec.name, "job_status": str(record.status)},
        )
    return JobStore(store).status(record.best_trial.job_name)
