"""Algorithms and predictors by name, imported only when used.

Everywhere a name is accepted, a dotted path ``package.module:Name`` is accepted too, which is
what makes bring-your-own training code work without registering anything.
"""

from __future__ import annotations

from typing import Any

from core.errors import AlgorithmError
from core.plugins import PluginTable

ALGORITHMS = PluginTable(
    "algorithm", {"xgboost": "algorithms.xgboost:XGBoostAlgorithm"}, AlgorithmError
)
PREDICTORS = PluginTable(
    "predictor", {"xgboost": "algorithms.xgboost:XGBoostPredictor"}, AlgorithmError
)


def resolve_algorithm(name: str) -> Any:
    """An Algorithm instance for a registered name or dotted path (classes are instantiated)."""
    obj = ALGORITHMS.load(name)
    algorithm = obj() if isinstance(obj, type) else obj
    if not (hasattr(algorithm, "train") and hasattr(algorithm, "validate_hyperparameters")):
        raise AlgorithmError(
            f"{name!r} does not satisfy the Algorithm protocol (needs train() and "
            "validate_hyperparameters())"
        )
    return algorithm


def resolve_predictor(name: str) -> Any:
    """The predictor class for a name or dotted path; it must have ``load(path)``."""
    cls = PREDICTORS.load(name)
    if not callable(getattr(cls, "load", None)):
        raise AlgorithmError(f"predictor {name!r} has no load(path) classmethod")
    return cls
