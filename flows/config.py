"""The pipeline's options: one pydantic model that yields both the command-line flags and the
flow's signature (so ``--max-depth 3`` and ``prefect deployment run ... --param`` agree).

Top-level fields are the common options. Options of one algorithm or one backend sit in a
nested model named after it (``xgboost``, ``local``); a new backend only adds its own field.
On the command line the nested fields are flattened (``--threads``, ``--max-depth``).
"""

from __future__ import annotations

import inspect
from typing import Annotated, Any, Literal, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from algorithms.xgboost_params import XGBoostHyperparameters
from backends.ec2_options import Ec2Options
from core.errors import SkiffError
from core.store import DEFAULT_STORE
from flows.data import UCI_URL
from serving.control.rollouts import UpdatePolicy
from serving.options import ServerOptions

M = TypeVar("M", bound=BaseModel)
Step = Literal["download", "clean", "split", "upload", "train", "register", "deploy", "evaluate"]
STEPS: tuple[str, ...] = get_args(Step)


class DaskOptions(BaseModel):
    """Options of the ``dask`` backend (``threads`` is the common option: per worker)."""

    scheduler: str | None = Field(
        None, description="address of an existing Dask scheduler (tcp://host:8786)"
    )
    workers: int | None = Field(
        None, ge=1, le=1024, description="workers of the LocalCluster Skiff creates (default 2)"
    )
    cluster_class: str | None = Field(
        None, description="a cluster class to create, as 'package.module:Class'"
    )
    cluster_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="keyword arguments of cluster_class"
    )
    collective_timeout: float = Field(
        300, gt=0, description="seconds a collective may wait before the job fails"
    )
    connect_timeout: float = Field(10, gt=0, description="seconds to reach the scheduler")


class PipelineConfig(BaseModel):
    """Every option of the bank-marketing pipeline."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(UCI_URL, description="URL of the archive: https://, s3://, or a local path")
    sha256: str | None = Field(
        None, pattern=r"^[0-9a-fA-F]{64}$", description="expected SHA-256 of the archive"
    )
    store: str = Field(
        DEFAULT_STORE, description="root of the store: a folder or s3://bucket/prefix"
    )
    drop_duration: bool = Field(
        True, description="drop 'duration', known only after the call (it leaks the label)"
    )
    drop_economic: bool = Field(
        False, description="drop the five economic indicators, as SageMaker's demo did"
    )
    split: Literal["random", "time"] = Field(
        "random", description="random (seeded, the demo's 70/20/10) or time (by date order)"
    )
    split_seed: int = Field(1729, ge=0, description="seed of the random split")
    algorithm: str = Field(
        "xgboost", description="'xgboost' or your own training code as 'package.module:Name'"
    )
    xgboost: XGBoostHyperparameters = Field(
        default_factory=XGBoostHyperparameters, description="hyperparameters of 'xgboost'"
    )
    hyperparameters: dict[str, Any] = Field(
        default_factory=dict,
        description="hyperparameters as given (bring-your-own code), or overriding 'xgboost'",
    )
    backend: str = Field(
        "local",
        description="compute backend: 'local', 'dask', 'ec2' or 'package.module:Class'",
    )
    threads: int | None = Field(
        None,
        ge=0,
        le=1024,
        description="training threads (local: 0 = every core; dask: per worker, default 1)",
    )
    dask: DaskOptions = Field(default_factory=DaskOptions, description="'dask' backend options")
    ec2: Ec2Options = Field(  # type: ignore[valid-type]
        default_factory=Ec2Options,
        description="'ec2' backend options (unset ones: SKIFF_EC2_* or the config file)",
    )
    max_runtime: float = Field(3600, gt=0, description="seconds before a training job is stopped")
    job_name: str | None = Field(None, description="training job name (default: generated)")
    model_group: str = Field("bank-marketing", description="model group in the registry")
    approval_threshold: float | None = Field(
        0.75,
        ge=0,
        le=1,
        description="approve a version automatically when its validation AUC reaches this "
        "(none: always wait for 'skiff models approve')",
    )
    endpoint_name: str = Field("bank-marketing", description="endpoint to deploy to")
    update: UpdatePolicy = Field(
        default_factory=UpdatePolicy,
        description="how a new version replaces a live one: strategy, baking, alarms",
    )
    server: ServerOptions = Field(
        default_factory=ServerOptions,
        description="a new endpoint server's processes, security and limits",
    )
    host: str = Field("127.0.0.1", description="address the endpoint listens on")
    port: int = Field(
        0, ge=0, le=65535, description="endpoint port (0: a free one; kept while it runs)"
    )
    delete_endpoint: bool = Field(False, description="stop and delete the endpoint at the end")
    eval_batch_size: int = Field(
        1000, ge=1, le=100_000, description="rows per evaluation request (1: record by record)"
    )
    until: Step = Field("evaluate", description="stop after this step")
    refresh: bool = Field(
        False, description="rerun every step, ignoring results cached by earlier runs"
    )

    @model_validator(mode="after")
    def _one_cluster(self) -> PipelineConfig:
        if self.backend == "dask":
            from backends.dask import check_cluster_options  # light: imports no distributed

            d = self.dask
            try:
                check_cluster_options(
                    d.scheduler, d.cluster_class, d.workers, self.threads, d.cluster_kwargs
                )
            except SkiffError as exc:
                raise ValueError(str(exc)) from None
        return self

    def stops_after(self, step: Step) -> bool:
        """Whether the run ends at or before ``step`` (``until``)."""
        return STEPS.index(step) >= STEPS.index(self.until)

    def training_hyperparameters(self) -> dict[str, Any]:
        if self.algorithm == "xgboost":
            return self.xgboost.model_dump(by_alias=True) | self.hyperparameters
        return dict(self.hyperparameters)

    def backend_options(self) -> dict[str, Any]:
        """Keyword arguments of the chosen backend: ``threads`` and its own nested options."""
        options = getattr(self, self.backend, None)
        nested = options.model_dump() if isinstance(options, BaseModel) else {}
        threads = {"threads": self.threads} if self.threads is not None else {}
        return threads | nested


# -- the flow's signature ----------------------------------------------------------------------
def flow_signature(model: type[BaseModel] = PipelineConfig) -> inspect.Signature:
    """Keyword-only parameters, one per top-level field, with the field's type and default.

    Each type is ``Annotated`` with the field's bounds, pattern and description, so the
    parameter schema that Prefect derives from the signature (the UI's form, and the check a
    server makes when a run is created) enforces what the config model enforces.
    """
    return inspect.Signature(
        [
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=field.get_default(call_default_factory=True),
                annotation=Annotated[
                    (field.annotation, *field.metadata, Field(description=field.description))
                ],
            )
            for name, field in model.model_fields.items()
        ],
        return_annotation=dict,
    )


def flow_docstring(summary: str, model: type[BaseModel] = PipelineConfig) -> str:
    """``summary`` plus an ``Args:`` section from the fields' descriptions (Prefect shows each
    parameter's description in the UI's run form)."""
    args = [f"    {name}: {field.description or ''}" for name, field in model.model_fields.items()]
    return "\n".join([summary.strip(), "", "Args:", *args])
