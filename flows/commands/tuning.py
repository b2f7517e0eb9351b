"""``skiff tuning list|describe|stop``: hyperparameter tuning jobs in the store."""

from __future__ import annotations

import argparse

from core.records.tuning import TuningStore
from core.store import Store
from flows.commands import Area, arg, print_json, table

TUNING = Area("tuning", "hyperparameter tuning jobs")
NAME = arg("name", help="tuning job name")


@TUNING.command("list", "list tuning jobs, newest first")
def tuning_list(store: Store, args: argparse.Namespace) -> None:
    tunings = TuningStore(store)
    rows = []
    for name in tunings.names():
        spec, record = tunings.spec(name), tunings.record(name)
        best = record.best_trial
        counts = record.counts()
        rows.append(
            {
                "name": name,
                "status": "Lost" if tunings.lost(record) else record.status,
                "trials": f"{len(record.trials)}/{spec.max_trials}",
                "completed": counts["Completed"],
                "failed": counts["Failed"],
                "stopped": counts["Stopped"],
                "objective": spec.objective.metric,
                "best": f"{best.objective:.4f}" if best and best.objective is not None else "",
                "created": record.created_at,
            }
        )
    rows.sort(key=lambda r: r["created"], reverse=True)
    columns = ["name", "status", "trials", "completed", "failed", "stopped", "objective", "best"]
    print(table(rows, [*columns, "created"]))


@TUNING.command("describe", "show a tuning job: its spec, every trial, the best", NAME)
def tuning_describe(store: Store, args: argparse.Namespace) -> None:
    tunings = TuningStore(store)
    spec, record = tunings.spec(args.name), tunings.record(args.name)
    best = record.best_trial
    print_json(
        {
            "name": spec.name,
            "status": record.status,
            "lost": tunings.lost(record),
            "failure_reason": record.failure_reason,
            "counts": record.counts(),
            "best_training_job": best.model_dump(mode="json") if best else None,
            "objective": spec.objective.model_dump(),
            "strategy": spec.strategy,
            "early_stopping": spec.early_stopping,
            "max_trials": spec.max_trials,
            "max_parallel": spec.max_parallel,
            "seed": spec.seed,
            "ranges": [r.describe() for r in spec.ranges],
            "static_hyperparameters": spec.definition.hyperparameters,
            "backend": spec.backend,
            "created_at": record.created_at,
            "ended_at": record.ended_at,
            "trials": [t.model_dump(mode="json") for t in record.trials],
        }
    )


@TUNING.command("stop", "stop a tuning job: its running trials stop, ended ones are kept", NAME)
def tuning_stop(store: Store, args: argparse.Namespace) -> None:
    record = TuningStore(store).request_stop(args.name)
    if record.status.terminal:
        print(f"tuning job {args.name} already ended {record.status}")
    else:
        print(f"stop requested for tuning job {args.name}; its running trials stop within seconds")
