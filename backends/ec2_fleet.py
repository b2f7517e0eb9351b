"""A training job's instances on EC2: launch them tagged, watch them, terminate them by tag.

Every instance carries ``skiff:job-id`` (one job's launch), ``skiff:role`` and
``skiff:deadline`` (when it should be gone at the latest), set at creation through
``TagSpecifications``, so an instance whose RunInstances answer never arrived is still found
and terminated by its tag. ``reap`` uses the same tags for leftovers.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from backends.ec2_options import Ec2Settings
from core.errors import BackendError

logger = logging.getLogger(__name__)

JOB_ID_TAG = "skiff:job-id"
ROLE_TAG = "skiff:role"
DEADLINE_TAG = "skiff:deadline"
JOB_TAG = "skiff:job"
ALIVE = ["pending", "running", "stopping", "stopped"]  # billed, or may be again
ANY_JOB = [{"Name": "tag-key", "Values": [JOB_ID_TAG]}]  # every Skiff training instance


def job_filter(job_id: str) -> list[dict[str, Any]]:
    """The DescribeInstances filter for one job's instances."""
    return [{"Name": f"tag:{JOB_ID_TAG}", "Values": [job_id]}]


def ec2_client(region: str | None = None) -> Any:
    """An EC2 client from the standard AWS configuration (``AWS_ENDPOINT_URL`` included), with
    short timeouts: teardown must finish well inside a cancelled flow run's 30 s."""
    config = Config(
        connect_timeout=5, read_timeout=15, retries={"max_attempts": 4, "mode": "standard"}
    )
    return boto3.client("ec2", region_name=region, config=config)


def describe_error(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'Error')}: {error.get('Message', exc)}"
    return f"{type(exc).__name__}: {exc}"


@contextlib.contextmanager
def aws_errors(what: str) -> Iterator[None]:
    """AWS's errors (no credentials, access denied, throttling) as a BackendError naming them."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise BackendError(f"{what}: {describe_error(exc)}") from None


@dataclass(frozen=True)
class Instance:
    id: str
    role: str
    state: str
    reason: str = ""
    deadline: str = ""

    @property
    def alive(self) -> bool:
        return self.state in ALIVE


def _instances(reservations: list[dict[str, Any]]) -> list[Instance]:
    found = []
    for reservation in reservations:
        for item in reservation["Instances"]:
            tags = {t["Key"]: t["Value"] for t in item.get("Tags", [])}
            found.append(
                Instance(
                    id=item["InstanceId"],
                    role=tags.get(ROLE_TAG, "?"),
                    state=item["State"]["Name"],
                    reason=item.get("StateReason", {}).get("Message", ""),
                    deadline=tags.get(DEADLINE_TAG, ""),
                )
            )
    return found


def find_instances(client: Any, filters: list[dict[str, Any]]) -> list[Instance]:
    paginator = client.get_paginator("describe_instances")
    pages = paginator.paginate(Filters=filters)
    return [i for page in pages for i in _instances(page["Reservations"])]


class Fleet:
    """The instances of one job launch, known by their ``skiff:job-id`` tag."""

    def __init__(
        self, client: Any, job_id: str, job_name: str, settings: Ec2Settings, deadline: datetime
    ):
        self.client, self.job_id, self.job_name = client, job_id, job_name
        self.settings, self.deadline = settings, deadline

    def tags(self, role: str) -> list[dict[str, str]]:
        tags = self.settings.instance_tags | {
            "Name": f"skiff-{self.job_name}-{role}",
            JOB_ID_TAG: self.job_id,
            JOB_TAG: self.job_name,
            ROLE_TAG: role,
            DEADLINE_TAG: self.deadline.isoformat(timespec="seconds"),
        }
        return [{"Key": k, "Value": v} for k, v in tags.items()]

    def launch(self, role: str, count: int, user_data: str) -> list[str]:
        """Launch ``count`` instances of ``role``, all or none (MinCount = MaxCount).

        Raises:
            BackendError: naming the AWS error (a capacity error, a bad AMI, ...).
        """
        s = self.settings
        params: dict[str, Any] = {
            "ImageId": s.ami,
            "InstanceType": s.instance_type,
            "MinCount": count,
            "MaxCount": count,
            "UserData": user_data,
            "InstanceInitiatedShutdownBehavior": "terminate",
            "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
            "TagSpecifications": [
                {"ResourceType": kind, "Tags": self.tags(role)} for kind in ("instance", "volume")
            ],
            # A retried call launches nothing twice (AWS allows 64 characters here).
            "ClientToken": hashlib.sha256(f"{self.job_id}/{role}".encode()).hexdigest()[:64],
        }
        if s.subnet_id:
            params["SubnetId"] = s.subnet_id
        if s.security_group_ids:
            params["SecurityGroupIds"] = s.security_group_ids
        if s.instance_profile:
            key = "Arn" if s.instance_profile.startswith("arn:") else "Name"
            params["IamInstanceProfile"] = {key: s.instance_profile}
        if s.key_name:
            params["KeyName"] = s.key_name
        if s.spot:
            spot = {"SpotInstanceType": "one-time", "InstanceInterruptionBehavior": "terminate"}
            params["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": spot}
        try:
            reply = self.client.run_instances(**params)
        except (ClientError, BotoCoreError) as exc:
            raise BackendError(
                f"launching {count} {role} instance(s) of {s.instance_type} failed: "
                f"{describe_error(exc)}"
            ) from None
        ids = [i["InstanceId"] for i in reply["Instances"]]
        logger.info("launched %s %s: %s", count, role, ", ".join(ids))
        return ids

    def instances(self) -> list[Instance]:
        return find_instances(self.client, job_filter(self.job_id))

    def terminate(self, timeout: float = 20) -> list[Instance]:
        """Terminate every instance tagged with this job's id, and check that none is left
        alive; retries until ``timeout``. Returns them as last described (see
        :func:`terminate_where`)."""
        return terminate_where(self.client, job_filter(self.job_id), timeout)


def terminate_where(
    client: Any, filters: list[dict[str, Any]], timeout: float = 20, keep: Any = None
) -> list[Instance]:
    """Terminate the live instances matching ``filters`` (except those ``keep`` returns true
    for), until none is left or ``timeout`` passes. Returns the instances as last described:
    any still alive in it were left alive.

    Raises:
        BackendError: they could not be described once, so what is left is unknown.
    """
    deadline = time.monotonic() + timeout
    seen: list[Instance] | None = None
    error = ""
    while True:
        try:
            seen = find_instances(client, filters)
            alive = [i for i in seen if i.alive and not (keep and keep(i))]
            if not alive:
                return seen
            client.terminate_instances(InstanceIds=[i.id for i in alive])
            logger.info("terminating %s", ", ".join(i.id for i in alive))
        except (ClientError, BotoCoreError) as exc:
            error = describe_error(exc)
            logger.warning("terminating instances: %s (retrying)", error)
        if time.monotonic() > deadline:
            if seen is None:
                raise BackendError(f"could not list the instances to terminate: {error}")
            return seen
        time.sleep(0.5)


def reap(
    client: Any, job_id: str | None = None, everything: bool = False, now: datetime | None = None
) -> list[Instance]:
    """Terminate Skiff's leftover instances: those of ``job_id``; else every Skiff instance
    (``everything``); else those past their ``skiff:deadline``. Returns what it terminated.

    Raises:
        BackendError: some could not be terminated.
    """
    now = now or datetime.now(UTC)
    filters = job_filter(job_id) if job_id else ANY_JOB

    def within_deadline(instance: Instance) -> bool:
        if job_id or everything:
            return False
        try:
            return datetime.fromisoformat(instance.deadline) > now
        except ValueError:  # no readable deadline: a leftover by definition
            return False

    leftovers = [i for i in find_instances(client, filters) if i.alive and not within_deadline(i)]
    seen = terminate_where(client, filters, keep=within_deadline)
    left = [i for i in seen if i.alive and not within_deadline(i)]
    if left:
        raise BackendError(f"could not terminate {', '.join(i.id for i in left)}")
    return leftovers
