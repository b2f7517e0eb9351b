"""``skiff tuning list|describe|stop``: hyperparameter tuning jobs in the store."""

from __future__ import annotations

import argparse

from core.records.tuning import TuningRecord, TuningSpec, TuningStore
from core.store import Store
from flows.commands import AS_JSON, Area, arg, described, print_json, table

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


@TUNING.command("describe", "show a tuning job: its spec, every trial, the best", NAME, AS_JSON)
def tuning_describe(store: Store, args: argparse.Namespace) -> None:
    tunings = TuningStore(store)
    spec, record = tunings.spec(args.name), tunings.record(args.name)
    best = record.best_trial
    if not args.json:
        print(tuning_summary(spec, record, tunings.lost(record)))
        print("(--json: the whole record)")
        return
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


def tuning_summary(spec: TuningSpec, record: TuningRecord, lost: str | None) -> str:
    best = record.best_trial
    objective = spec.objective
    fields = {
        "failure": record.failure_reason,
        "lost": lost,
        "objective": f"{'maximize' if objective.maximize else 'minimize'} {objective.metric}",
        "strategy": f"{spec.strategy}"
        + (f", early stopping {spec.early_stopping}" if spec.early_stopping != "Off" else ""),
        "trials": f"{len(record.trials)} of {spec.max_trials}, {spec.max_parallel} at a time "
        f"(seed {spec.seed}); "
        + ", ".join(f"{n} {status}" for status, n in record.counts().items() if n),
        "best": f"trial {best.number}, {best.job_name}: {best.objective:.4f}"
        if best and best.objective is not None
        else None,
        "backend": spec.backend,
        "created": record.created_at,
        "ended": record.ended_at,
    }
    trials = [
        f"{t.number:>3}  {t.status:<10} "
        + (f"{t.objective:.4f}" if t.objective is not None else "-".ljust(6))
        + ("  stopped early" if t.early_stopped else "")
        + "  "
        + ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in t.hyperparameters.items()
        )
        for t in record.trials
    ]
    sections = {
        "ranges": [r.describe() for r in spec.ranges],
        "trials": trials,
    }
    return described(f"tuning job {spec.name}: {record.status}", fields, sections)


@TUNING.command("stop", "stop a tuning job: its running trials stop, ended ones are kept", NAME)
def tuning_stop(store: Store, args: argparse.Namespace) -> None:
    record = TuningStore(store).request_stop(args.name)
    if record.status.terminal:
        print(f"tuning job {args.name} already ended {record.status}")
    else:
        print(f"stop requested for tuning job {args.name}; its running trials stop within seconds")
