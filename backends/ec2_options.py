"""Options of the ``ec2`` backend, from arguments, the environment or a config file.

Precedence: arguments, then ``SKIFF_EC2_*`` environment variables (``SKIFF_EC2_AMI``,
``SKIFF_EC2_SECURITY_GROUP_IDS='["sg-1"]'``, ...), then the TOML file named by
``SKIFF_EC2_CONFIG`` (default ``~/.config/skiff/ec2.toml``), then the defaults below.
This module is light: it imports neither boto3 nor distributed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, create_model, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from backends.base import BackendOptions
from core.errors import BackendError, describe_invalid

CONFIG_FILE = Path("~/.config/skiff/ec2.toml").expanduser()


def config_file() -> Path:
    return Path(os.environ.get("SKIFF_EC2_CONFIG", CONFIG_FILE)).expanduser()


class Ec2Settings(BaseSettings):
    """What the instances of a training job are, and what runs on them."""

    model_config = SettingsConfigDict(env_prefix="SKIFF_EC2_", extra="forbid")

    ami: str | None = Field(
        None, description="AMI of the training instances: Python with skiff[dask] installed"
    )
    instance_type: str = Field("m5.xlarge", description="EC2 instance type")
    instance_count: int = Field(
        1, ge=1, le=100, description="instances: one driver (scheduler + worker) and N-1 workers"
    )
    region: str | None = Field(None, description="AWS region (default: the AWS config's)")
    subnet_id: str | None = Field(None, description="subnet to launch in (default: the VPC's)")
    security_group_ids: list[str] = Field(
        default_factory=list,
        description="security groups: they must allow all TCP between the job's instances",
    )
    instance_profile: str | None = Field(
        None, description="IAM instance profile (name or ARN) giving the instances the store"
    )
    spot: bool = Field(False, description="launch spot instances (one-time, terminate)")
    key_name: str | None = Field(None, description="EC2 key pair, to log in while debugging")
    instance_tags: dict[str, str] = Field(
        default_factory=dict, description="extra tags on the instances and their volumes"
    )
    remote_python: str = Field(
        "/opt/skiff/venv/bin/python", description="the Python on the AMI that has skiff"
    )
    worker_start_timeout: float = Field(
        600, gt=0, description="seconds the instances may take to boot and join the scheduler"
    )
    worker_death_timeout: float = Field(
        60, gt=0, description="seconds a worker lives on without its scheduler"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls, config_file())


def resolve_settings(**given: Any) -> Ec2Settings:
    """Settings from ``given`` (``None`` values count as not given), the environment and the
    config file.

    Raises:
        BackendError: naming each invalid option and where it came from.
    """
    try:
        return Ec2Settings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        raise BackendError(
            f"invalid ec2 options (arguments, SKIFF_EC2_* or {config_file()}): "
            f"{describe_invalid(exc)}"
        ) from None


# The pipeline's view: every field optional, None meaning "not given here", so that a flow
# parameter left empty falls through to the environment and the config file on the machine
# that runs the flow (a Prefect worker's), not to a default frozen into the deployment.
def _described(field: Any) -> str:
    default = field.get_default(call_default_factory=True)
    return f"{field.description} (default: {default})" if default else str(field.description)


def _no_threads(cls: type, threads: int | None) -> None:
    if threads is not None:
        raise ValueError(
            "the ec2 backend uses every core of each instance; choose the instance type instead"
        )


Ec2Options = create_model(
    "Ec2Options",
    __base__=BackendOptions,
    __doc__="The ec2 backend's options; unset ones come from SKIFF_EC2_* or the config file.",
    __validators__={"_no_threads": field_validator("threads")(_no_threads)},
    **{
        name: (field.annotation | None, Field(None, description=_described(field)))
        for name, field in Ec2Settings.model_fields.items()
    },
)
