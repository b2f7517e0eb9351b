"""Tuning jobs in Prefect: each trial a task run named by its hyperparameters, and the
trials' table and picture as artifacts. ``run_in_prefect`` serves both the pipeline's tune
step and the ``tune`` flow, which runs a tuning job recorded by ``skiff api`` or the CLI::

    python -m flows.tuning.flow STORE NAME
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from prefect import flow, get_run_logger, tags, task
from prefect.cache_policies import NO_CACHE

from core.records.jobs import JobStatus, TrainingJob
from core.records.tuning import TuningRecord, TuningStore
from core.store import Store
from flows.states import fails_with_reason
from flows.tuning import jobs, report
from flows.tuning.tuner import Launch, describe


@task(name="trial", cache_policy=NO_CACHE)
def _trial(launch: Launch, job: TrainingJob) -> JobStatus:
    return launch(job)


def _as_task_runs(static: set[str]) -> Callable[[Launch], Launch]:
    """Wraps a launch so that each trial is a task run named by its number and the
    hyperparameters the tuner gave it (``trial 3: eta=0.12 max_depth=7``)."""

    def wrap(launch: Launch) -> Launch:
        def run(job: TrainingJob) -> JobStatus:
            tuned = {k: v for k, v in job.hyperparameters.items() if k not in static}
            number = int(job.name.rsplit("-", 2)[-2])
            named = _trial.with_options(task_run_name=f"trial {number}: {describe(tuned)}")
            return named(launch, job)

        return run

    return wrap


def run_in_prefect(store: Store, name: str) -> TuningRecord:
    """Run the recorded tuning job ``name``, its trials as task runs; publish its report."""
    spec = TuningStore(store).spec(name)
    wrap = _as_task_runs(set(spec.definition.hyperparameters))
    record = jobs.run(store, name, wrap, get_run_logger().info)
    report.publish(spec, record)
    return record


@flow(name="tune", log_prints=True)
@fails_with_reason
def tune(store: str, name: str) -> dict:
    """Run the recorded tuning job ``name`` to its end: its trials as task runs, its best
    training job and the trials' table and picture as artifacts."""
    record = run_in_prefect(Store(store), name)
    best = record.best_trial
    return {
        "tuning_job": name,
        "status": str(record.status),
        "counts": record.counts(),
        "best_training_job": best.job_name if best else None,
        "best_objective": best.objective if best else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.tuning.flow", description=__doc__)
    parser.add_argument("store")
    parser.add_argument("name")
    args = parser.parse_args(argv)
    with tags(args.name, "tuning"):
        state = tune.with_options(flow_run_name=args.name)(args.store, args.name, return_state=True)
    return 0 if state.is_completed() else 1


if __name__ == "__main__":
    sys.exit(main())
