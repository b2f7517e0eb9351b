"""``skiff jobs list|describe|logs|stop|reap``: training jobs in the store."""

from __future__ import annotations

import argparse
import socket
import sys
import time

from core.processes import alive, end_process
from core.records.channel import JobFeed, for_people, is_round, planned_rounds, round_line
from core.records.jobs import JobStore, Secondary, Status
from core.store import Store
from flows.commands import (
    AS_JSON,
    Area,
    aligned,
    arg,
    described,
    job_record,
    print_json,
    table,
    transitions,
)

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


@JOBS.command("describe", "show a job's spec and status", NAME, AS_JSON)
def jobs_describe(store: Store, args: argparse.Namespace) -> None:
    jobs = JobStore(store)
    if args.json:  # the whole record, read once by job_record
        print_json(job_record(jobs, args.name))
        return
    status, spec = jobs.status(args.name), jobs.spec(args.name)
    lost = jobs.lost(status)
    fields = {
        "failure": status.failure_reason,
        "lost": lost,
        "algorithm": spec.algorithm,
        "backend": spec.backend,
        "tuning job": spec.tuning_job,
        "dataset": spec.dataset_id,
        "channels": ", ".join(f"{n} {u}" for n, u in spec.channels.items()),
        "model": status.model_url,
        "created": spec.created_at,
        "ended": status.ended_at,
    }
    sections = {
        "metrics": aligned(status.metrics),
        "hyperparameters": aligned(dict(sorted(spec.hyperparameters.items())), "{:g}"),
        "transitions": transitions(status.transitions),
    }
    title = f"training job {spec.name}: {status.status}"
    if status.secondary_status != status.status:
        title += f" ({status.secondary_status})"
    print(described(title, fields, sections))
    print("(--json: the whole record)")


FOLLOW = arg("-f", "--follow", action="store_true", help="follow until it ends")


@JOBS.command("logs", "print a job's log, and each round as it trains", NAME, FOLLOW)
def jobs_logs(store: Store, args: argparse.Namespace) -> None:
    jobs = JobStore(store)
    feed = JobFeed(jobs, args.name)
    total = planned_rounds(jobs.spec(args.name))
    while True:
        update = feed.poll()
        for line in update.log.splitlines():
            # Following, each round comes from the live channel (every one, as it comes):
            # the log's own round lines (every tenth) would repeat some.
            if not (args.follow and is_round(line)):
                sys.stdout.write(for_people(line, total) + "\n")
        if args.follow:
            for r in update.rounds:
                sys.stdout.write(round_line(r, total) + "\n")
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
