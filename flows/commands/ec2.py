"""``skiff ec2 list|reap``: the ec2 backend's training instances (boto3 loads only here)."""

from __future__ import annotations

import argparse
from typing import Any

from core.store import Store
from flows.commands import Area, arg, table

EC2 = Area("ec2", "training instances on EC2 (the ec2 backend)")
REGION = arg("--region", help="AWS region (default: the AWS config's)")


def _client(args: argparse.Namespace) -> Any:
    from backends.ec2_fleet import ec2_client

    return ec2_client(args.region)


ALL = arg("--all", action="store_true", help="terminated ones too")


@EC2.command("list", "list Skiff's live training instances", REGION, ALL)
def ec2_list(store: Store, args: argparse.Namespace) -> None:
    from backends.ec2_fleet import ANY_JOB, aws_errors, find_instances

    with aws_errors("listing instances"):
        instances = find_instances(_client(args), ANY_JOB)
    rows = [vars(i) for i in instances if args.all or i.alive]
    print(table(rows, ["id", "role", "state", "deadline", "reason"]))


@EC2.command(
    "reap",
    "terminate leftovers: past their deadline, of one job, or all",
    REGION,
    arg("--job-id", help="every instance of this job (its info.job_id)"),
    arg("--all", action="store_true", help="every Skiff instance, even running jobs'"),
)
def ec2_reap(store: Store, args: argparse.Namespace) -> None:
    from backends.ec2_fleet import aws_errors, reap

    with aws_errors("reaping instances"):
        reaped = reap(_client(args), job_id=args.job_id, everything=args.all)
    print(
        f"terminated {len(reaped)} instance(s)"
        + "".join(f"\n  {i.id} ({i.role}, deadline {i.deadline or '?'})" for i in reaped)
    )
