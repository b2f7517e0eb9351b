"""A tuning job's ranges: checked against the hyperparameters' own bounds (by the algorithm's
own validation, so a range can never produce a value a job would refuse), read from the
command line (``max_depth=3:10``), and sampled as Optuna's distributions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from pydantic import ValidationError

from algorithms.catalog import resolve_algorithm
from algorithms.xgboost_params import MoreXGBoostHyperparameters, XGBoostHyperparameters
from core.errors import HyperparameterError, TuningError, describe_invalid
from core.records.tuning import ParameterRange

SCALINGS = {"linear": "Linear", "log": "Logarithmic", "reverselog": "ReverseLogarithmic"}


def check_ranges(algorithm: str, static: Mapping[str, Any], ranges: list[ParameterRange]) -> None:
    """Every range lies within its hyperparameter's bounds, with the static ones.

    Each range's ends (and for an integer-valued one, its type) and each categorical value
    go through the algorithm's own validation beside the static hyperparameters.

    Raises:
        TuningError: naming the range and what is wrong (an unknown name, a bound outside
            the hyperparameter's, a name both static and tuned, a name tuned twice).
    """
    names = [r.name for r in ranges]
    if not ranges:
        raise TuningError("a tuning job needs at least one parameter range")
    if twice := sorted({n for n in names if names.count(n) > 1}):
        raise TuningError(f"hyperparameter(s) {', '.join(twice)} given more than one range")
    if both := sorted(set(names) & set(static)):
        raise TuningError(
            f"hyperparameter(s) {', '.join(both)} both static and tuned: give each one or the other"
        )
    validate = resolve_algorithm(algorithm).validate_hyperparameters
    for r in ranges:
        for value in _probes(r):
            try:
                validate({**static, r.name: value})
            except HyperparameterError as exc:
                raise TuningError(f"range {r.describe()}: {exc}") from None


def _probes(r: ParameterRange) -> list[Any]:
    if r.kind == "categorical":
        return list(r.values)
    low, high = float(r.low or 0), float(r.high or 0)
    if r.kind == "integer":
        return [int(low), int(high)]
    # A value between the ends that is no integer: a continuous range on an integer-valued
    # hyperparameter is refused (it would give trials values like 3.7).
    inside = low + (high - low) * 0.371 if high > low else low + 0.5
    return [low, high] + ([inside] if not inside.is_integer() else [])


def distribution(r: ParameterRange) -> BaseDistribution:
    """The range as Optuna samples it. A ReverseLogarithmic range is sampled as ``1 - x``
    on a log scale (dense near 1, as SageMaker's), and mapped back by ``value``."""
    if r.kind == "categorical":
        return CategoricalDistribution(r.values)
    low, high = float(r.low or 0), float(r.high or 0)
    if r.kind == "integer":
        return IntDistribution(int(low), int(high), log=r.scaling == "Logarithmic")
    if r.scaling == "ReverseLogarithmic":
        return FloatDistribution(1 - high, 1 - low, log=True)
    return FloatDistribution(low, high, log=r.scaling == "Logarithmic")


def value(r: ParameterRange, sampled: Any) -> Any:
    """The hyperparameter's value for what Optuna sampled in ``distribution(r)``."""
    return 1 - sampled if r.scaling == "ReverseLogarithmic" else sampled


def _is_integer(name: str) -> bool | None:
    """Whether XGBoost's ``name`` takes integers (None: not one of XGBoost's)."""
    for model in (XGBoostHyperparameters, MoreXGBoostHyperparameters):
        for field_name, field in model.model_fields.items():
            if name in (field_name, field.alias):
                return "int" in str(field.annotation)
    return None


def parse_range(name: str, text: str | float) -> ParameterRange:
    """``LOW:HIGH[:linear|log|reverselog]`` or ``A,B,C`` (categorical) as a range of ``name``.

    An XGBoost hyperparameter's range is integer or continuous as the hyperparameter is;
    any other's is integer when both ends are written as integers.

    Raises:
        TuningError: the text is neither form.
    """
    text = str(text).strip()
    if ":" not in text:
        values = [v.strip() for v in text.split(",") if v.strip()]
        if len(values) < 2:
            raise TuningError(
                f"range of {name!r} is {text!r}: give LOW:HIGH[:linear|log|reverselog] or "
                "at least two values A,B"
            )
        return ParameterRange(name=name, kind="categorical", values=values)
    low, high, *rest = (p.strip() for p in text.split(":"))
    scaling = SCALINGS.get(rest[0].lower()) if rest else "Auto"
    if len(rest) > 1 or scaling is None:
        raise TuningError(f"range of {name!r}: scaling {':'.join(rest)!r} is not one of {SCALINGS}")
    try:
        ends = float(low), float(high)
    except ValueError:
        raise TuningError(f"range of {name!r}: {low!r} and {high!r} must be numbers") from None
    integer = _is_integer(name)
    if integer is None:
        integer = all(p.lstrip("-").isdigit() for p in (low, high))
    try:
        return ParameterRange(
            name=name,
            kind="integer" if integer else "continuous",
            low=ends[0],
            high=ends[1],
            scaling=scaling,  # type: ignore[arg-type]
        )
    except ValidationError as exc:
        raise TuningError(describe_invalid(exc)) from None
