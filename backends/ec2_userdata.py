"""The user data of a training job's instances: a short shell script that runs one role of
``python -m backends.ec2_node`` and then powers the instance off, whatever happened.

Launched with ``InstanceInitiatedShutdownBehavior=terminate``, powering off terminates the
instance: an instance whose launcher vanished still ends itself. ``timeout`` bounds the role
by the job's max runtime plus a grace period, so even a hung role cannot keep it alive.

Two environment variables change what the script does, for the tests that play the
instances on one machine: ``SKIFF_SHUTDOWN_COMMAND`` (default ``shutdown -h now``) and
``SKIFF_NODE_HOST`` (default: the instance's private address, from its metadata service).
"""

from __future__ import annotations

import shlex
from typing import Literal

Role = Literal["driver", "worker"]

# Seconds a role may run past the job's max runtime before ``timeout`` ends it: time for the
# driver to record why it stopped.
GRACE_SECONDS = 120

TEMPLATE = """#!/bin/bash
# Skiff training job {job_id}: {role}.
# Whatever happens below, the instance ends: the EXIT trap powers it off, and it was
# launched with InstanceInitiatedShutdownBehavior=terminate.
trap 'eval "${{SKIFF_SHUTDOWN_COMMAND:-shutdown -h now}}"' EXIT
export AWS_DEFAULT_REGION="${{AWS_DEFAULT_REGION:-{region}}}"
timeout --kill-after=30 {limit} {python} -m backends.ec2_node {arguments}
echo "skiff {role} exited with status $?"
"""


def user_data(
    role: Role,
    *,
    job_id: str,
    spec_url: str,
    region: str,
    python: str,
    max_runtime: float,
    instance_count: int,
    worker_start_timeout: float,
    worker_death_timeout: float,
) -> str:
    """The script an instance of ``role`` runs at boot."""
    arguments = [
        role,
        spec_url,
        "--start-timeout",
        f"{worker_start_timeout:g}",
        "--death-timeout",
        f"{worker_death_timeout:g}",
    ]
    if role == "driver":
        arguments += ["--instances", str(instance_count)]
    return TEMPLATE.format(
        job_id=job_id,
        role=role,
        region=region,
        limit=int(max_runtime + worker_start_timeout + GRACE_SECONDS),
        python=shlex.quote(python),
        arguments=shlex.join(arguments),
    )
