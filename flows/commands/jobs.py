"""``skiff jobs list|describe|logs|stop|reap``: training jobs in the store."""

from __future__ import annotations

import argparse
import socket
import sys
import time

from core.processes import alive, end_process
from core.records.channel import JobFeed
from core.records.jobs import JobStore, Secondary, Status
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
        lost = jobs.lost(status)
        spec = jobs.spec(name)
        rows.append(
            {
                "name": name,
                "status": "Lost" if lost else status.status,  # never InProgress forever
                "secondary": status.secondary_status,
                "started": status.started_at,
                "validation_auc": f"{auc:.4f}" if auc is not None else "",
                "tuning_job": spec.tuning_job or "",
            }
        )
    columns = ["name", "status", "secondary", "started", "validation_auc", "tuning_job"]
    print(table(rows, columns))


@JOBS.command("describe", "show a job's spec and status", NAME)
def jobs_describe(store: Store, args: argparse.Namespace) -> None:
    jobs = JobStore(store)
    status = jobs.status(args.name)
    beat = jobs.heartbeat(args.name)
    print_json(
        {
            "spec": jobs.spec(args.name).model_dump(),
            **status.model_dump(mode="json"),
            "started_at": status.started_at,
            "ended_at": status.ended_at,
            "heartbeat": beat.model_dump() if beat else None,
            "lost": jobs.lost(status),
        }
    )


FOLLOW = arg("-f", "--follow", action="store_true", help="follow until it ends")


@JOBS.command("logs", "print a job's log, and each round as it trains", NAME, FOLLOW)
def jobs_logs(store: Store, args: argparse.Namespace) -> None:
    feed = JobFeed(JobStore(store), args.name)
    while True:
        update = feed.poll()
        sys.stdout.write(update.log)
        if args.follow:  # the log has every tenth round; following, each one as it comes
            for r in update.rounds:
                shown = " ".join(f"{k}={v:.5f}" for k, v in r.items() if k != "round")
                sys.stdout.write(f"round {r['round']}: {shown}\n")
        sys.stdout.flush()
        if not args.follow or update.over:
            if update.lost:
                print(f"job {args.name} is lost: {update.lost}", file=sys.stderr)
            return
        time.sleep(1)


@JOBS.command("stop", "ask a running job to stop", NAME)
def jobs_stop(store: Store, args: argparse.Namespace) -> None:
    status = JobStore(store).request_stop(args.name)
    if status.status.terminal:
        print(f"job {args.name} already ended {status.status}")
    else:
        print(f"stop requested for job {args.name}; its runner stops it within seconds")


@JOBS.command("reap", "end the lost jobs: not over, and their heartbeat stopped")
def jobs_reap(store: Store, args: argparse.Namespace) -> None:
    jobs = JobStore(store)
    ended = []
    for name in jobs.names():
        status = jobs.status(name)
        if (lost := jobs.lost(status)) is None:
            continue
        beat = jobs.heartbeat(name)
        if beat and beat.pid and beat.host == socket.gethostname() and alive(beat.pid):
            end_process(beat.pid)  # a hung runner on this machine: no one else will
        reason = f"lost: {lost}"
        jobs.write_status(
            status.moved(Status.FAILED, Secondary.FAILED, reason, failure_reason=reason)
        )
        ended.append(f"  {name}: {reason}")
    print("\n".join([f"ended {len(ended)} lost job(s)", *ended]))
