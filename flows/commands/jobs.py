"""``skiff jobs list|describe|logs|stop``: training jobs in the store."""

from __future__ import annotations

import argparse
import sys
import time

from core.records.jobs import JobStore
from core.store import Store
from flows.commands import Area, arg, print_json, table

JOBS = Area("jobs", "training jobs")
NAME = arg("name", help="job name")


@JOBS.command("list", "list jobs")
def jobs_list(store: Store, args: argparse.Namespace) -> None:
    jobs = JobStore(store)
    rows = []
    for name in jobs.names():
        status = jobs.status(name)
        auc = status.metrics.get("validation_auc")
        rows.append(
            {
                "name": name,
                "status": status.status,
                "secondary": status.secondary_status,
                "started": status.started_at,
                "validation_auc": f"{auc:.4f}" if auc is not None else "",
            }
        )
    print(table(rows, ["name", "status", "secondary", "started", "validation_auc"]))


@JOBS.command("describe", "show a job's spec and status", NAME)
def jobs_describe(store: Store, args: argparse.Namespace) -> None:
    jobs = JobStore(store)
    status = jobs.status(args.name)
    print_json(
        {
            "spec": jobs.spec(args.name).model_dump(),
            **status.model_dump(mode="json"),
            "started_at": status.started_at,
            "ended_at": status.ended_at,
        }
    )


FOLLOW = arg("-f", "--follow", action="store_true", help="follow until it ends")


@JOBS.command("logs", "print a job's training log", NAME, FOLLOW)
def jobs_logs(store: Store, args: argparse.Namespace) -> None:
    jobs = JobStore(store)
    jobs.status(args.name)  # a job of that name: else say so, rather than print nothing
    shown = 0
    while True:
        text = jobs.log(args.name)
        sys.stdout.write(text[shown:])
        sys.stdout.flush()
        shown = len(text)
        if not args.follow or jobs.status(args.name).status.terminal:
            return
        time.sleep(1)


@JOBS.command("stop", "ask a running job to stop", NAME)
def jobs_stop(store: Store, args: argparse.Namespace) -> None:
    status = JobStore(store).request_stop(args.name)
    if status.status.terminal:
        print(f"job {args.name} already ended {status.status}")
    else:
        print(f"stop requested for job {args.name}; its backend stops it within seconds")
