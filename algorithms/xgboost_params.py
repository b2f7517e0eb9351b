"""The built-in XGBoost algorithm's hyperparameters: names, types, ranges and defaults.

Every name SageMaker's built-in XGBoost documents is accepted (values arrive as strings from
SageMaker code, and are checked for type and range like any other): the pipeline's common
ones in :class:`XGBoostHyperparameters` (its command-line flags and UI form), the others in
:class:`MoreXGBoostHyperparameters` (unset: XGBoost's own default), and the deprecated ones in
``IGNORED`` (accepted, and said in the job's log). Kept apart from ``algorithms.xgboost`` so
that configuration code can use them without importing xgboost itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.errors import HyperparameterError

Objective = Literal[
    "binary:logistic",
    "binary:logitraw",
    "binary:hinge",
    "reg:squarederror",
    "reg:squaredlogerror",
    "reg:logistic",
    "reg:pseudohubererror",
    "reg:absoluteerror",
    "reg:quantileerror",
    "reg:gamma",
    "reg:tweedie",
    "count:poisson",
    "survival:cox",
    "survival:aft",
    "multi:softmax",
    "multi:softprob",
    "rank:pairwise",
    "rank:ndcg",
    "rank:map",
]
RENAMED_OBJECTIVES = {"reg:linear": "reg:squarederror"}  # SageMaker's docs still use it
METRICS = {
    "rmse", "rmsle", "mae", "mape", "mphe", "logloss", "error", "merror", "mlogloss", "auc",
    "aucpr", "pre", "ndcg", "map", "poisson-nloglik", "gamma-nloglik", "cox-nloglik",
    "gamma-deviance", "tweedie-nloglik", "aft-nloglik", "interval-regression-accuracy",
}  # fmt: skip
MAXIMISED = {"auc", "aucpr", "pre", "ndcg", "map", "interval-regression-accuracy"}
_METRIC = re.compile(r"^(?P<name>[a-z-]+?)(@[0-9.]+)?(-)?$")  # error@0.7, ndcg@5-, map


def metric_base(metric: str) -> str:
    """``ndcg@5-`` → ``ndcg``: the metric's family (is it known, is it maximised)."""
    found = _METRIC.match(metric)
    return found["name"] if found else metric


class XGBoostHyperparameters(BaseModel):
    """Defaults are those of SageMaker's direct-marketing demo."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    num_round: int = Field(100, ge=1, le=10_000, description="boosting rounds")
    max_depth: int = Field(5, ge=0, le=30, description="maximum tree depth (0: no limit)")
    eta: float = Field(0.2, ge=0, le=1, description="learning rate")  # XGBoost's [0, 1]
    gamma: float = Field(4.0, ge=0, le=1_000, description="minimum loss reduction to split")
    min_child_weight: float = Field(6.0, ge=0, le=1_000, description="minimum hessian in a leaf")
    subsample: float = Field(0.8, gt=0, le=1, description="row fraction per tree")
    colsample_bytree: float = Field(1.0, gt=0, le=1, description="column fraction per tree")
    reg_lambda: float = Field(1.0, ge=0, le=1_000, alias="lambda", description="L2 regularisation")
    alpha: float = Field(0.0, ge=0, le=1_000, description="L1 regularisation")
    scale_pos_weight: float = Field(1.0, gt=0, le=1_000, description="weight of positive rows")
    max_bin: int = Field(256, ge=2, le=1024, description="histogram bins per feature")
    objective: Objective = Field("binary:logistic", description="objective")
    early_stopping_rounds: int | None = Field(
        None,
        ge=1,
        le=1_000,
        description="stop when the first eval metric on 'validation' has not improved for N rounds",
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, description="random seed")


class MoreXGBoostHyperparameters(BaseModel):
    """The rest of SageMaker's XGBoost names; unset, XGBoost's own default applies."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    num_class: int | None = Field(None, ge=2, le=10_000)
    eval_metric: list[str] | None = None
    booster: Literal["gbtree", "gblinear", "dart"] | None = None
    verbosity: int | None = Field(None, ge=0, le=3)
    max_delta_step: float | None = Field(None, ge=0)
    sampling_method: Literal["uniform", "gradient_based"] | None = None
    colsample_bylevel: float | None = Field(None, gt=0, le=1)
    colsample_bynode: float | None = Field(None, gt=0, le=1)
    tree_method: Literal["auto", "exact", "approx", "hist"] | None = None
    grow_policy: Literal["depthwise", "lossguide"] | None = None
    max_leaves: int | None = Field(None, ge=0)
    num_parallel_tree: int | None = Field(None, ge=1, le=1_000)
    refresh_leaf: int | None = Field(None, ge=0, le=1)
    process_type: Literal["default", "update"] | None = None
    updater: str | None = None
    sample_type: Literal["uniform", "weighted"] | None = None
    normalize_type: Literal["tree", "forest"] | None = None
    rate_drop: float | None = Field(None, ge=0, le=1)
    one_drop: int | None = Field(None, ge=0, le=1)
    skip_drop: float | None = Field(None, ge=0, le=1)
    feature_selector: Literal["cyclic", "shuffle", "random", "greedy", "thrifty"] | None = None
    top_k: int | None = Field(None, ge=0)
    tweedie_variance_power: float | None = Field(None, gt=1, lt=2)
    huber_slope: float | None = Field(None, gt=0)
    quantile_alpha: float | None = Field(None, gt=0, lt=1)
    aft_loss_distribution: Literal["normal", "logistic", "extreme"] | None = None
    aft_loss_distribution_scale: float | None = Field(None, gt=0)
    base_score: float | None = None
    max_cat_to_onehot: int | None = Field(None, ge=1)
    # Passed through: "cuda" trains on a GPU where XGBoost sees one, else on the CPU (XGBoost
    # falls back itself, and its warning goes to the job's log).
    device: str | None = Field(None, pattern=r"^(cpu|cuda|gpu)(:[0-9]+)?$")
    interaction_constraints: str | None = None
    monotone_constraints: str | None = None

    @field_validator("eval_metric", mode="before")
    @classmethod
    def _metrics(cls, value: Any) -> Any:
        names = value.split(",") if isinstance(value, str) else value
        if not isinstance(names, list):
            return names
        names = [str(n).strip() for n in names if str(n).strip()]
        unknown = [n for n in names if metric_base(n) not in METRICS]
        if unknown or not names:
            raise ValueError(
                f"unknown metric(s) {', '.join(unknown) or '(none given)'}; valid: "
                f"{', '.join(sorted(METRICS))} (with @N or @T where XGBoost allows it)"
            )
        return names


# Accepted for SageMaker code's sake, never passed to XGBoost: each with why.
IGNORED = {
    "silent": "deprecated by XGBoost: use verbosity",
    "lambda_bias": "removed from XGBoost",
    "sketch_eps": "removed from XGBoost (use max_bin)",
    "dsplit": "removed from XGBoost",
    "nthread": "Skiff gives a job its threads from its backend (--threads)",
    "deterministic_histogram": "always deterministic in XGBoost 3",
    "single_precision_histogram": "removed from XGBoost",
    "prob_buffer_row": "removed from XGBoost",
    "save_model_on_termination": "Skiff saves a model only when a job completes",
}
# Names SageMaker documents whose behaviour Skiff does not have: refused by name.
UNSUPPORTED = {
    "csv_weights": "weights from the CSV's second column are not supported",
    "use_dask_gpu_training": "Skiff trains on CPUs",
    "_kfold": "cross-validation jobs are not supported",
    "_num_cv_round": "cross-validation jobs are not supported",
    "_tuning_objective_metric": "set by tuning jobs, not supported here",
}


def describe_range(name: str, model: type[BaseModel] = XGBoostHyperparameters) -> str:
    """'an integer in [1, 30]' and the like, from the field's own constraints."""
    field = model.model_fields[name]
    annotation = field.annotation
    args = [a for a in getattr(annotation, "__args__", ()) if a is not type(None)]
    if len(args) == 1:  # X | None: describe X
        annotation = args[0]
    if getattr(annotation, "__origin__", None) is Literal:
        return f"one of {', '.join(map(repr, annotation.__args__))}"
    kind = {int: "an integer", float: "a number", str: "a string"}.get(annotation, "")  # type: ignore[arg-type]
    if name == "early_stopping_rounds":
        kind = "an integer (or null)"
    if not kind:
        return "a comma-separated list of metric names" if name == "eval_metric" else "valid"
    low = high = None
    low_open = high_open = False
    for meta in field.metadata:
        if getattr(meta, "ge", None) is not None:
            low = meta.ge
        if getattr(meta, "gt", None) is not None:
            low, low_open = meta.gt, True
        if getattr(meta, "le", None) is not None:
            high = meta.le
        if getattr(meta, "lt", None) is not None:
            high, high_open = meta.lt, True
    if low is None and high is None:
        return kind
    return f"{kind} in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"


def _names(model: type[BaseModel]) -> dict[str, str]:
    fields = model.model_fields
    return {f.alias or n: n for n, f in fields.items()} | {n: n for n in fields}


def validate_hyperparameters(values: Mapping[str, Any]) -> dict[str, Any]:
    """Validate user hyperparameters (unknown names, types, ranges, and how they combine),
    with messages naming them. Returns the complete set, XGBoost's names, unset ones left out;
    ``IGNORED`` names are dropped (``ignored_hyperparameters`` says which and why).

    Raises:
        HyperparameterError: naming the parameter, the value given and what is valid.
    """
    common, more = _names(XGBoostHyperparameters), _names(MoreXGBoostHyperparameters)
    given = {k: v for k, v in values.items() if k not in IGNORED}
    if refused := sorted(k for k in given if k in UNSUPPORTED):
        raise HyperparameterError(
            "unsupported hyperparameter(s): "
            + "; ".join(f"{k!r} ({UNSUPPORTED[k]})" for k in refused)
        )
    if unknown := sorted(k for k in given if k not in common and k not in more):
        valid = sorted({*common, *more, *IGNORED} - set(_python_only_names()))
        raise HyperparameterError(
            f"unknown hyperparameter(s) {', '.join(map(repr, unknown))}; valid names: "
            f"{', '.join(valid)}"
        )
    if given.get("objective") in RENAMED_OBJECTIVES:
        given["objective"] = RENAMED_OBJECTIVES[given["objective"]]
    result: dict[str, Any] = {}
    for model, names in ((XGBoostHyperparameters, common), (MoreXGBoostHyperparameters, more)):
        try:
            parsed = model.model_validate({k: v for k, v in given.items() if k in names})
        except ValidationError as exc:
            err = exc.errors()[0]
            name = names.get(str(err["loc"][0]), str(err["loc"][0]))
            shown = model.model_fields[name].alias or name
            why = str(err.get("ctx", {}).get("error", ""))  # a validator's own words
            detail = why or f"must be {describe_range(name, model)}"
            if err["type"] == "string_pattern_mismatch":  # device: cpu, cuda, cuda:1, ...
                detail = f"must match {err['ctx']['pattern']}"
            raise HyperparameterError(
                f"hyperparameter {shown!r} = {err.get('input')!r} is invalid: {detail}"
            ) from None
        result |= parsed.model_dump(by_alias=True, exclude_none=model is not XGBoostHyperparameters)
    _check_combination(result)
    return result


def _python_only_names() -> list[str]:
    """Field names that users spell otherwise (``reg_lambda`` is ``lambda``)."""
    return [n for m in (XGBoostHyperparameters, MoreXGBoostHyperparameters)
            for n, f in m.model_fields.items() if f.alias]  # fmt: skip


def _check_combination(hp: dict[str, Any]) -> None:
    multi = hp["objective"].startswith("multi:")
    if multi and not hp.get("num_class"):
        raise HyperparameterError(f"objective {hp['objective']!r} needs num_class (2 or more)")
    if hp.get("num_class") and not multi:
        raise HyperparameterError(
            f"num_class is only for the multi:softmax and multi:softprob objectives, not "
            f"{hp['objective']!r}"
        )


def ignored_hyperparameters(values: Mapping[str, Any]) -> list[str]:
    """A line for each given name that is accepted but not passed to XGBoost, saying why."""
    return [f"hyperparameter {k!r} ignored: {IGNORED[k]}" for k in values if k in IGNORED]


def eval_metrics(hp: Mapping[str, Any]) -> list[str] | None:
    """The metrics to evaluate each round: as given; for binary classification AUC and error
    (the demo's, and what SageMaker's console shows); else XGBoost's default (None)."""
    if hp.get("eval_metric"):
        return list(hp["eval_metric"])
    if hp["objective"] in ("binary:logistic", "binary:logitraw", "binary:hinge"):
        return ["auc", "error"]
    return None


def stopping_metric(hp: Mapping[str, Any]) -> tuple[str | None, bool]:
    """The metric early stopping follows (the first eval metric; None: XGBoost's default,
    the objective's) and whether it is maximised."""
    metrics = eval_metrics(hp)
    if not metrics:
        return None, False
    return metrics[0], metric_base(metrics[0]) in MAXIMISED
