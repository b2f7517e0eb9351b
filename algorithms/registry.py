"""Algorithms and predictors by name, imported only when used.

Everywhere a name is accepted, a dotted path ``package.module:Name`` is accepted too, which is
what makes bring-your-own training code work without registering anything.
"""

from __future__ import annotations

import importlib
from typing import Any

from algorithms.errors import AlgorithmError

ALGORITHMS = {"xgboost": "algorithms.xgboost:XGBoostAlgorithm"}
PREDICTORS = {"xgboost": "algorithms.xgboost:XGBoostPredictor"}


def load_object(dotted: str) -> Any:
    """Import ``package.module:Name`` (``Name`` may be dotted, e.g. ``Outer.Inner``)."""
    module_name, sep, attr = dotted.partition(":")
    if not sep or not module_name or not attr:
        raise AlgorithmError(f"{dotted!r} is not a dotted path of the form 'package.module:Name'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise AlgorithmError(f"cannot import module {module_name!r} for {dotted!r}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AlgorithmError(f"module {module_name!r} has no attribute {attr!r}") from None
    return obj


def _resolve(name: str, table: dict[str, str], what: str) -> Any:
    if ":" in name:
        return load_object(name)
    if name not in table:
        raise AlgorithmError(
            f"unknown {what} {name!r}; choose one of {', '.join(sorted(table))} "
            "or give a dotted path 'package.module:Name'"
        )
    return load_object(table[name])


def resolve_algorithm(name: str) -> Any:
    """An Algorithm instance for a registered name or dotted path (classes are instantiated)."""
    obj = _resolve(name, ALGORITHMS, "algorithm")
    algorithm = obj() if isinstance(obj, type) else obj
    if not (hasattr(algorithm, "train") and hasattr(algorithm, "validate_hyperparameters")):
        raise AlgorithmError(
            f"{name!r} does not satisfy the Algorithm protocol (needs train() and "
            "validate_hyperparameters())"
        )
    return algorithm


def resolve_predictor(name: str) -> Any:
    """The predictor class for a name or dotted path; it must have ``load(path)``."""
    cls = _resolve(name, PREDICTORS, "predictor")
    if not callable(getattr(cls, "load", None)):
        raise AlgorithmError(f"predictor {name!r} has no load(path) classmethod")
    return cls
