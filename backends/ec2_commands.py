"""``skiff ec2 list|reap``: the ec2 backend's training instances, seen and cleaned up from
the command line. boto3 is imported when a command runs, not when the ``skiff`` command
starts."""

from __future__ import annotations

import argparse
from typing import Any

from backends.base import BackendCommand

REGION = (("--region",), {"help": "AWS region (default: the AWS config's)"})


def list_instances(args: argparse.Namespace) -> list[dict[str, Any]]:
    from backends.ec2_fleet import ANY_JOB, aws_errors, ec2_client, find_instances

    with aws_errors("listing instances"):
        instances = find_instances(ec2_client(args.region), ANY_JOB)
    return [vars(i) for i in instances if args.all or i.alive]


def reap_instances(args: argparse.Namespace) -> str:
    from backends.ec2_fleet import aws_errors, ec2_client, reap

    with aws_errors("reaping instances"):
        reaped = reap(ec2_client(args.region), job_id=args.job_id, everything=args.all)
    lines = [f"  {i.id} ({i.role}, deadline {i.deadline or '?'})" for i in reaped]
    return "\n".join([f"terminated {len(reaped)} instance(s)", *lines])


COMMANDS = (
    BackendCommand(
        "list",
        "list Skiff's live training instances",
        list_instances,
        (REGION, (("--all",), {"action": "store_true", "help": "terminated ones too"})),
        columns=("id", "role", "state", "deadline", "reason"),
    ),
    BackendCommand(
        "reap",
        "terminate leftovers: past their deadline, of one job, or all",
        reap_instances,
        (
            REGION,
            (("--job-id",), {"help": "every instance of this job (its info.job_id)"}),
            (
                ("--all",),
                {"action": "store_true", "help": "every Skiff instance, even running jobs'"},
            ),
        ),
    ),
)
