"""The pipeline's options: one pydantic model that yields both the command-line flags and the
flow's signature (so ``--max-depth 3`` and ``prefect deployment run ... --param`` agree).

Top-level fields are the common options. Options of one algorithm or one backend sit in a
nested model named after it (``xgboost``, ``dask``, ``ec2``). The backends' fields are built
from the backends' catalog, each backend's own options model (``backends/catalog.py``): a new
backend only registers itself. A backend given by dotted path brings its options model too;
its values travel in ``backend_options``. On the command line nested fields are flattened
(``--threads``, ``--max-depth``, ``--scheduler``).
"""

from __future__ import annotations

import inspect
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, create_model, model_validator

from algorithms.xgboost_params import XGBoostHyperparameters
from backends.base import BackendOptions
from backends.catalog import BACKENDS, options_model
from core.errors import SkiffError
from core.names import EndpointName, JobName, ModelGroupName
from core.plugins import is_dotted
from core.records.tuning import TuningName
from core.store import DEFAULT_STORE
from flows.data import MAX_ARCHIVE_BYTES, UCI_URL
from serving.control.rollouts import UpdatePolicy
from serving.options import ServerOptions

Step = Literal["download", "clean", "split", "upload", "train", "register", "deploy", "evaluate"]
STEPS: tuple[str, ...] = get_args(Step)
COMMON = set(BackendOptions.model_fields)  # what every backend is offered: the top level's


def backend_fields() -> dict[str, type[BackendOptions]]:
    """Registered backend name → its options model, for the backends with options of their
    own (beyond the common ones): each becomes a nested field of the pipeline's config."""
    models = {name: options_model(name) for name in BACKENDS.table}
    return {n: m for n, m in models.items() if set(m.model_fields) - COMMON}


BACKEND_FIELDS = backend_fields()


class _BeforeBackends(BaseModel):
    """The pipeline's options up to the backends' own (a template: see PipelineConfig)."""

    source: str = Field(UCI_URL, description="URL of the archive: https://, s3://, or a local path")
    sha256: str | None = Field(
        None, pattern=r"^[0-9a-fA-F]{64}$", description="expected SHA-256 of the archive"
    )
    max_archive_bytes: int = Field(
        MAX_ARCHIVE_BYTES, ge=1, description="refuse an archive, or a member of it, this large"
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
    backend_options: dict[str, Any] = Field(
        default_factory=dict,
        description="options of a backend given by dotted path (its Options model checks them)",
    )


class _AfterBackends(BaseModel):
    """The pipeline's options after the backends' own (a template: see PipelineConfig)."""

    max_runtime: float = Field(3600, gt=0, description="seconds before a training job is stopped")
    job_name: JobName | None = Field(None, description="training job name (default: generated)")
    tune: int = Field(
        0, ge=0, le=750, description="tune: this many trials (a tuning job) instead of one job"
    )
    tune_parallel: int = Field(3, ge=1, le=100, description="trials at once (tuning)")
    tune_strategy: Literal["bayesian", "random", "hyperband"] = Field(
        "bayesian", description="how trials are chosen (tuning)"
    )
    tune_ranges: dict[str, Any] = Field(
        default_factory=dict,
        description="ranges in place of the defaults: NAME=LOW:HIGH[:log|reverselog] or "
        "NAME=A,B,C; NAME= drops a default (tuning)",
    )
    tune_early_stopping: bool = Field(
        False, description="stop trials behind the median of earlier ones (tuning)"
    )
    tune_seed: int = Field(0, ge=0, description="seed of the trials' choice (tuning)")
    tune_objective: str = Field(
        "validation:auc",
        pattern=r"^[A-Za-z0-9_-]+:[A-Za-z0-9_@.-]+$",
        description="metric the tuning maximises (AUC, ...) or minimises (error, ...)",
    )
    tune_name: TuningName | None = Field(None, description="tuning job name (default: generated)")
    model_group: ModelGroupName = Field("bank-marketing", description="model group in the registry")
    approval_threshold: float | None = Field(
        0.75,
        ge=0,
        le=1,
        description="approve a version automatically when its validation AUC reaches this "
        "(none: always wait for 'skiff models approve')",
    )
    deploy_anyway: bool = Field(
        False,
        description="deploy the approved version even if the live model scores better on its "
        "validation split",
    )
    endpoint_name: EndpointName = Field("bank-marketing", description="endpoint to deploy to")
    update: UpdatePolicy = Field(
        default_factory=UpdatePolicy,
        description="how a new version replaces a live one: strategy, baking, alarms",
    )
    server: ServerOptions = Field(
        default_factory=ServerOptions,
        description="a new endpoint server's processes, security and limits",
    )
    capture_to: str | None = Field(
        None, description="data capture: record the endpoint's requests and answers at this URL"
    )
    capture_percent: float = Field(
        100.0, ge=0, le=100, description="data capture: the share of requests recorded"
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


class _PipelineRules(BaseModel):
    """What every PipelineConfig checks and offers; its fields are assembled below."""

    model_config = ConfigDict(extra="forbid")
    _backend: BackendOptions = PrivateAttr()

    @model_validator(mode="before")
    @classmethod
    def _common_options_to_backend(cls, data: Any) -> Any:
        """Hand ``threads`` to the chosen backend's nested options, so they are validated
        (and checked against that backend's other options) once, as a whole."""
        if not isinstance(data, dict) or data.get("threads") is None:
            return data
        backend = data.get("backend", "local")
        if backend not in BACKEND_FIELDS:
            return data  # a backend without a field of its own: see _backend_options_once
        nested = data.get(backend) or {}
        if isinstance(nested, BaseModel):
            nested = nested.model_dump(exclude_unset=True)
        return data | {backend: nested | {"threads": data["threads"]}}

    @model_validator(mode="after")
    def _training_can_start(self) -> Any:
        """The algorithm loads and takes these hyperparameters: checked now, before the data
        steps, rather than minutes later on the training machine."""
        from algorithms.catalog import resolve_algorithm  # the algorithm's module: when asked

        try:
            resolve_algorithm(self.algorithm).validate_hyperparameters(
                self.training_hyperparameters()
            )
        except SkiffError as exc:
            raise ValueError(str(exc)) from None
        return self

    @model_validator(mode="after")
    def _tuning_can_start(self) -> Any:
        """A tuning job's ranges and objective are checked before the data steps too."""
        if not self.tune:
            return self
        from flows.tuning.pipeline import static_and_ranges  # optuna: only when tuning

        try:
            static_and_ranges(self.algorithm, self.training_hyperparameters(), self.tune_ranges)
        except SkiffError as exc:
            raise ValueError(str(exc)) from None
        return self

    @model_validator(mode="after")
    def _backend_options_once(self) -> Any:
        name = self.backend
        if name in BACKEND_FIELDS:
            if self.backend_options:
                raise ValueError(
                    f"backend_options is for a backend given by dotted path; the {name} "
                    f"backend's options are its own parameter, {name!r}"
                )
            self._backend = getattr(self, name)
            return self
        if self.backend_options and not is_dotted(name):
            raise ValueError(f"the {name} backend takes no backend_options")
        common = {"threads": self.threads} if self.threads is not None else {}
        try:
            self._backend = options_model(name).model_validate(self.backend_options | common)
        except SkiffError as exc:  # an unknown name, a path that does not load
            raise ValueError(str(exc)) from None
        return self

    def stops_after(self, step: Step) -> bool:
        """Whether the run ends at or before ``step`` (``until``)."""
        return STEPS.index(step) >= STEPS.index(self.until)

    def training_hyperparameters(self) -> dict[str, Any]:
        if self.algorithm == "xgboost":
            return self.xgboost.model_dump(by_alias=True) | self.hyperparameters
        return dict(self.hyperparameters)

    def chosen_backend_options(self) -> BackendOptions:
        """The chosen backend's options, validated (the common ones included)."""
        return self._backend


def _fields(model: type[BaseModel]) -> dict[str, Any]:
    return {name: (field.annotation, field) for name, field in model.model_fields.items()}


def _backend_field(name: str, model: type[BackendOptions]) -> tuple[Any, Any]:
    summary = (model.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    return model, Field(
        default_factory=model, description=summary or f"the {name} backend's options"
    )


PipelineConfig: type[_PipelineRules] = create_model(
    "PipelineConfig",
    __base__=_PipelineRules,
    __doc__="Every option of the bank-marketing pipeline.",
    **_fields(_BeforeBackends),
    **{name: _backend_field(name, model) for name, model in BACKEND_FIELDS.items()},
    **_fields(_AfterBackends),
)


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
