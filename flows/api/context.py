"""What every operation of ``skiff api`` works with: the store, the names in ARNs, where jobs
run, and the environment their processes get."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.store import Store
from flows.api.errors import invalid
from flows.api.launch import Placement

DEFAULT_ACCOUNT = "000000000000"  # a documented default, never a real account
DEFAULT_REGION = "us-east-1"


@dataclass
class ApiContext:
    store: Store
    account: str = DEFAULT_ACCOUNT
    region: str = DEFAULT_REGION
    placement: Placement = field(default_factory=Placement)
    child_env: dict[str, str] = field(default_factory=dict)  # PREFECT_API_URL for job runs

    def arn(self, kind: str, name: str) -> str:
        """``arn:aws:sagemaker:<region>:<account>:<kind>/<name>``."""
        return f"arn:aws:sagemaker:{self.region}:{self.account}:{kind}/{name}"

    def parse_arn(self, arn: str) -> tuple[str, str]:
        """(kind, name) of one of this server's ARNs.

        Raises:
            ApiError: not an ARN of this account and region.
        """
        prefix = f"arn:aws:sagemaker:{self.region}:{self.account}:"
        kind, sep, name = arn.removeprefix(prefix).partition("/")
        if not arn.startswith(prefix) or not sep or not name:
            raise invalid(f"{arn!r} is not an ARN of this server ({prefix}<kind>/<name>)")
        return kind, name
