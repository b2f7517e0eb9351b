"""Bring-your-own algorithms used by the tests (imported by dotted path in the job's process)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from algorithms.base import TrainedModel, TrainingContext, TrainingData


class _Base:
    def validate_hyperparameters(self, hyperparameters):
        return dict(hyperparameters)


class Failing(_Base):
    def train(self, data: TrainingData, hyperparameters, context: TrainingContext):
        context.log("looking at the data")
        raise RuntimeError("boom: the data is cursed")


class Slow(_Base):
    def train(self, data: TrainingData, hyperparameters, context: TrainingContext):
        context.log("sleeping")
        time.sleep(600)
        raise AssertionError("should have been stopped")


class ReportsForever(_Base):
    """Trains until it is stopped, reporting a round every 10 ms (as XGBoost reports each of
    its rounds): where a job is stopped between two rounds."""

    def train(self, data: TrainingData, hyperparameters, context: TrainingContext):
        round_ = 0
        while True:
            context.report(round_, {"validation_auc": 0.5})
            round_ += 1
            time.sleep(0.01)


class CrashHard(_Base):
    def train(self, data: TrainingData, hyperparameters, context: TrainingContext):
        os._exit(3)


class Logistic(_Base):
    """Logistic regression by gradient descent, saved as JSON weights (its own format)."""

    predictor = "tests.byo_algorithms:LogisticPredictor"

    def train(self, data: TrainingData, hyperparameters, context: TrainingContext):
        x = data.train[data.features].to_numpy(np.float64)
        y = data.train[data.label].to_numpy(np.float64)
        w, b = np.zeros(x.shape[1]), 0.0
        for _ in range(int(hyperparameters.get("steps", 200))):
            p = 1 / (1 + np.exp(-(x @ w + b)))
            w -= 0.5 * x.T @ (p - y) / len(y)
            b -= 0.5 * float((p - y).mean())
        (context.output_dir / "weights.json").write_text(json.dumps({"w": w.tolist(), "b": b}))
        return TrainedModel(model_file="weights.json", predictor=self.predictor)


class LogisticPredictor:
    def __init__(self, w: np.ndarray, b: float):
        self.w, self.b = w, b

    @classmethod
    def load(cls, path: str | Path) -> LogisticPredictor:
        data = json.loads(Path(path).read_text())
        return cls(np.asarray(data["w"]), data["b"])

    def predict(self, features: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-(features @ self.w + self.b)))


class Erratic(Logistic):
    """Trains like Logistic, but its model fails on real rows (it passes the zero warm-up)."""

    predictor = "tests.byo_algorithms:ErraticPredictor"


class ErraticPredictor(LogisticPredictor):
    def predict(self, rows: np.ndarray) -> np.ndarray:
        if np.any(rows):
            raise RuntimeError("erratic model: cannot score real rows")
        return super().predict(rows)


class Sleepy(Logistic):
    """Trains like Logistic; its model takes a second for any request of more than one row."""

    predictor = "tests.byo_algorithms:SleepyPredictor"


class SleepyPredictor(LogisticPredictor):
    def predict(self, rows: np.ndarray) -> np.ndarray:
        if len(rows) > 1:
            time.sleep(1.0)
        return super().predict(rows)


class HoldsTheCluster(_Base):
    """On Dask, holds the cluster's training lock (taken before ``train_distributed`` is
    called) until the file its ``release`` hyperparameter names exists: a busy cluster for as
    long as a test wants one. Then it saves a model that scores 0.5."""

    def train(self, data: TrainingData, hyperparameters, context: TrainingContext):
        raise AssertionError("HoldsTheCluster runs on Dask only")

    def train_distributed(self, client, data, hyperparameters, context, collective_timeout):
        release, deadline = Path(hyperparameters["release"]), time.monotonic() + 300
        while not release.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"never released: {release}")
            time.sleep(0.05)
        weights = {"w": [0.0] * len(data.features), "b": 0.0}
        (context.output_dir / "weights.json").write_text(json.dumps(weights))
        return TrainedModel(model_file="weights.json", predictor=Logistic.predictor)


class Waits(_Base):
    """Logs a line (printed to its launcher's pipe, while there is one) and reports a round
    every 50 ms, until the file its ``release`` hyperparameter names exists; then saves a
    model that scores 0.5."""

    def train(self, data: TrainingData, hyperparameters, context: TrainingContext):
        release, deadline = Path(hyperparameters["release"]), time.monotonic() + 300
        n = 0
        while not release.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"never released: {release}")
            context.log(f"waiting, round {n}")
            context.report(n, {"train_auc": 0.5 + n / 1e6})
            n += 1
            time.sleep(0.05)
        weights = {"w": [0.0] * len(data.features), "b": 0.0}
        (context.output_dir / "weights.json").write_text(json.dumps(weights))
        return TrainedModel(model_file="weights.json", predictor=Logistic.predictor)


class Curve(_Base):
    """A trial of a known learning curve, for tuning's tests: reports ``validation_auc`` =
    ``quality × (1 - 1/(round + 2))`` for ``rounds`` rounds, a round every ``pace`` seconds
    (``slow_pace`` when ``quality`` is below 0.5: a bad trial that is slow, so that early
    stopping has the time to stop it however fast the machine), then saves a model that
    scores 0.5. ``quality`` "fail" fails the job."""

    def train(self, data: TrainingData, hyperparameters, context: TrainingContext):
        quality = hyperparameters["quality"]
        if quality == "fail":
            raise RuntimeError("a trial made to fail")
        quality = float(quality)
        slow = quality < 0.5
        pace = float(hyperparameters.get("slow_pace" if slow else "pace", 0.01))
        auc = 0.0
        for r in range(int(hyperparameters.get("rounds", 10))):
            auc = quality * (1 - 1 / (r + 2))
            context.report(r, {"validation_auc": auc})
            time.sleep(pace)
        weights = {"w": [0.0] * len(data.features), "b": 0.0}
        (context.output_dir / "weights.json").write_text(json.dumps(weights))
        return TrainedModel(
            model_file="weights.json",
            predictor=Logistic.predictor,
            metrics={"validation_auc": auc},
        )
