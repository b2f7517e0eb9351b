"""The built-in XGBoost algorithm's hyperparameters: names, types, ranges and defaults.

Kept apart from ``algorithms.xgboost`` so that configuration code (the command line, the
Prefect UI form) can use them without importing xgboost itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import HyperparameterError


class XGBoostHyperparameters(BaseModel):
    """Defaults are those of SageMaker's direct-marketing demo."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    num_round: int = Field(100, ge=1, le=10_000, description="boosting rounds")
    max_depth: int = Field(5, ge=1, le=30, description="maximum tree depth")
    eta: float = Field(0.2, gt=0, le=1, description="learning rate")
    gamma: float = Field(4.0, ge=0, le=1_000, description="minimum loss reduction to split")
    min_child_weight: float = Field(6.0, ge=0, le=1_000, description="minimum hessian in a leaf")
    subsample: float = Field(0.8, gt=0, le=1, description="row fraction per tree")
    colsample_bytree: float = Field(1.0, gt=0, le=1, description="column fraction per tree")
    reg_lambda: float = Field(1.0, ge=0, le=1_000, alias="lambda", description="L2 regularisation")
    alpha: float = Field(0.0, ge=0, le=1_000, description="L1 regularisation")
    scale_pos_weight: float = Field(1.0, gt=0, le=1_000, description="weight of positive rows")
    max_bin: int = Field(256, ge=2, le=1024, description="histogram bins per feature")
    objective: Literal["binary:logistic"] = Field("binary:logistic", description="objective")
    early_stopping_rounds: int | None = Field(
        None, ge=1, le=1_000, description="stop when validation AUC has not improved for N rounds"
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, description="random seed")


def describe_range(name: str) -> str:
    """'integer in [1, 30]' and the like, from the field's own constraints."""
    field = XGBoostHyperparameters.model_fields[name]
    annotation = field.annotation
    kind = {int: "an integer", float: "a number"}.get(annotation, "")  # type: ignore[arg-type]
    if not kind:
        if annotation is not None and getattr(annotation, "__origin__", None) is Literal:
            return f"one of {', '.join(map(repr, annotation.__args__))}"
        kind = "an integer (or null)"
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
    return f"{kind} in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"


def validate_hyperparameters(values: Mapping[str, Any]) -> XGBoostHyperparameters:
    """Validate user hyperparameters (unknown names, types and ranges) with messages naming them.

    Raises:
        HyperparameterError: naming the parameter, the value given and what is valid.
    """
    fields = XGBoostHyperparameters.model_fields
    known = {f.alias or n: n for n, f in fields.items()} | {n: n for n in fields}
    unknown = sorted(k for k in values if k not in known)
    if unknown:
        raise HyperparameterError(
            f"unknown hyperparameter(s) {', '.join(map(repr, unknown))}; valid names: "
            f"{', '.join(sorted(f.alias or n for n, f in fields.items()))}"
        )
    try:
        return XGBoostHyperparameters.model_validate(dict(values))
    except ValidationError as exc:
        err = exc.errors()[0]
        name = known.get(str(err["loc"][0]), str(err["loc"][0]))
        shown = fields[name].alias or name
        raise HyperparameterError(
            f"hyperparameter {shown!r} = {err.get('input')!r} is invalid: must be "
            f"{describe_range(name)}"
        ) from None
