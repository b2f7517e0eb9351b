"""What an algorithm and a predictor must provide.

Bring your own by naming a class (or instance) that satisfies :class:`Algorithm` as
``package.module:Name``; the job runner imports it on the training machine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

Log = Callable[[str], None]
Report = Callable[[int, dict[str, float]], None]  # (round, its metrics)


def _ignore(round: int, metrics: dict[str, float]) -> None:
    """Where rounds go when nobody follows them."""


@dataclass
class TrainingData:
    """The channels of a job, read into memory (pandas), or onto a Dask cluster (dask
    DataFrames, for ``train_distributed``), with the label and feature columns named.
    ``test``, when given, is evaluated each round too (never used to choose the model)."""

    train: pd.DataFrame | Any
    validation: pd.DataFrame | Any | None
    label: str
    features: list[str]
    test: pd.DataFrame | Any | None = None


@dataclass
class TrainingContext:
    """Where and how to train: the output folder, the log, the threads granted, and where
    each round's metrics go as it trains (``report(round, metrics)``: the job's live channel,
    which followers read while it runs; it may be pickled to a Dask worker)."""

    output_dir: Path
    log: Log
    threads: int = 0  # 0: every core of the machine
    report: Report = _ignore
    # The channels to evaluate every round (None: all); the others once, on the final model.
    # A tuning job's trials need only the objective's channel each round.
    each_round: tuple[str, ...] | None = None


@dataclass
class TrainedModel:
    """What :meth:`Algorithm.train` leaves in its output folder.

    Attributes:
        model_file: file name of the model inside the output folder (never a pickle).
        predictor: the predictor that loads it: ``"xgboost"`` or ``package.module:Class``.
        metrics: final metrics, e.g. ``{"validation_auc": 0.80}``.
        history: per-round metrics, for training curves.
    """

    model_file: str
    predictor: str = "xgboost"
    metrics: dict[str, float] = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Algorithm(Protocol):
    """Training code. Implementations must be importable on the training machine."""

    def validate_hyperparameters(self, hyperparameters: Mapping[str, Any]) -> dict[str, Any]:
        """Return the complete, normalised hyperparameters, or raise ``HyperparameterError``."""
        ...

    def train(
        self, data: TrainingData, hyperparameters: dict[str, Any], context: TrainingContext
    ) -> TrainedModel:
        """Train on ``data``, write the model into ``context.output_dir`` and describe it."""
        ...


# Optional too: ``hyperparameter_notes(given) -> list[str]``, lines for the job's log about
# names that were accepted but are not used (the built-in XGBoost's deprecated ones).


@runtime_checkable
class DistributedAlgorithm(Algorithm, Protocol):
    """An algorithm that can also train on a Dask cluster (optional).

    Algorithms without this method still run on the ``dask`` backend: in the driver process.
    """

    def train_distributed(
        self,
        client: Any,
        data: TrainingData,
        hyperparameters: dict[str, Any],
        context: TrainingContext,
        collective_timeout: float,
    ) -> TrainedModel:
        """Train with ``client`` (a ``distributed.Client``) on ``data``, whose frames are Dask
        DataFrames already on the workers; write the model like ``train``. Pass
        ``collective_timeout`` to every collective operation, so a frozen worker fails the job
        instead of hanging it."""
        ...


@runtime_checkable
class Predictor(Protocol):
    """A loaded model: encoded features (rows × schema features) in, probabilities out."""

    def predict(self, features: np.ndarray) -> np.ndarray: ...
