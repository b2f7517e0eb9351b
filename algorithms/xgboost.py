"""The built-in XGBoost algorithm and its predictor (models saved as UBJSON, never pickled)."""

from __future__ import annotations

import ctypes
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb
from xgboost.core import _LIB, _check_call, c_bst_ulong, make_jcargs

from algorithms.base import Log, Report, TrainedModel, TrainingContext, TrainingData
from algorithms.xgboost_params import (
    eval_metrics,
    ignored_hyperparameters,
    stopping_metric,
    validate_hyperparameters,
)
from core.errors import AlgorithmError, SchemaError
from core.records.channel import log_line, logged

MODEL_FILE = "model.ubj"


def booster_params(hp: dict[str, Any], nthread: int) -> dict[str, Any]:
    """XGBoost's parameters, with the settings pinned so results reproduce across backends."""
    params = {
        k: v
        for k, v in hp.items()
        if k not in ("num_round", "early_stopping_rounds", "eval_metric") and v is not None
    }
    if params.get("tree_method", "auto") == "auto":
        params["tree_method"] = "hist"  # XGBoost's auto is hist; pinned, so backends agree
    if metrics := eval_metrics(hp):
        params["eval_metric"] = metrics
    return params | {"nthread": nthread, "validate_parameters": True}


def early_stopping(hp: dict[str, Any], save_best: bool) -> xgb.callback.EarlyStopping:
    """Stop when the first eval metric on 'validation' has not improved for
    ``early_stopping_rounds`` (XGBoost alone would follow the last one)."""
    metric, maximize = stopping_metric(hp)
    return xgb.callback.EarlyStopping(
        rounds=hp["early_stopping_rounds"],
        metric_name=metric,
        data_name="validation",
        maximize=maximize,
        save_best=save_best,
    )


def final_metrics(history: dict[str, list[float]], rounds: int, hp: dict[str, Any]) -> dict:
    """Each channel's eval metrics at the model's last round (``validation_auc``...), and for
    binary:logistic the error rate at cutoff 0.5 (``validation_error_rate``, as the
    pipeline's evaluation reports it)."""
    metrics = {name: values[rounds - 1] for name, values in history.items()}
    if hp["objective"] == "binary:logistic":
        for channel in ("train", "validation", "test"):
            if f"{channel}_error" in history:
                metrics[f"{channel}_error_rate"] = history[f"{channel}_error"][rounds - 1]
    return metrics


def final_evaluation(booster: Any, evals: list[tuple[Any, str]], hp: dict[str, Any]) -> dict:
    """The eval metrics of ``evals`` on the final model, named as ``final_metrics`` names
    them (XGBoost's own evaluation: ``[99]\ttrain-auc:0.86\ttrain-error:0.09``)."""
    if not evals:
        return {}
    last = {}  # a one-round history, named as each round's are
    for field in booster.eval_set(evals).split("\t")[1:]:
        name, _, value = field.rpartition(":")
        last[name.replace("-", "_", 1)] = [float(value)]
    return final_metrics(last, 1, hp)


class _LogRounds(xgb.callback.TrainingCallback):
    """Logs the rounds a job's log shows (``core.records.channel.logged``), as it trains."""

    def __init__(self, log: Log, num_round: int):
        self.log, self.num_round = log, num_round

    def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
        if logged(epoch, self.num_round):
            flat = {f"{d}_{m}": float(v[-1]) for d, ms in evals_log.items() for m, v in ms.items()}
            self.log(log_line(epoch, flat))
        return False


class ReportRounds(xgb.callback.TrainingCallback):
    """Each round's metrics to the job's live channel (``TrainingContext.report``). On Dask
    every worker runs it and sees the same evaluation: only the first one reports."""

    def __init__(self, report: Report):
        self.report = report

    def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
        if xgb.collective.get_rank() == 0:
            flat = {f"{d}_{m}": float(v[-1]) for d, ms in evals_log.items() for m, v in ms.items()}
            self.report(epoch, flat)
        return False

    def after_training(self, model: Any) -> Any:
        if xgb.collective.get_rank() == 0 and hasattr(self.report, "flush"):
            self.report.flush()  # in a worker, the last rounds must not wait for the next
        return model


class XGBoostAlgorithm:
    """Gradient-boosted trees (any of XGBoost's objectives): SageMaker's built-in ``xgboost``."""

    def validate_hyperparameters(self, hyperparameters: Mapping[str, Any]) -> dict[str, Any]:
        return validate_hyperparameters(hyperparameters)

    def hyperparameter_notes(self, hyperparameters: Mapping[str, Any]) -> list[str]:
        """A line for the job's log for each name accepted but not used (``silent``)."""
        return ignored_hyperparameters(hyperparameters)

    def train(
        self, data: TrainingData, hyperparameters: dict[str, Any], context: TrainingContext
    ) -> TrainedModel:
        hp = self.validate_hyperparameters(hyperparameters)
        log = context.log
        nthread = context.threads or os.cpu_count() or 1
        dtrain = _matrix(data.train, data, "train")
        evals = [(dtrain, "train")]
        dvalid = None
        if data.validation is not None:
            dvalid = _matrix(data.validation, data, "validation")
            evals.append((dvalid, "validation"))
        if data.test is not None:
            evals.append((_matrix(data.test, data, "test"), "test"))
        callbacks: list[xgb.callback.TrainingCallback] = [
            _LogRounds(log, hp["num_round"]),
            ReportRounds(context.report),
        ]
        if hp["early_stopping_rounds"]:
            if dvalid is None:
                raise AlgorithmError("early_stopping_rounds needs a 'validation' channel")
            # save_best keeps only the rounds up to the best iteration in the returned model.
            callbacks.append(early_stopping(hp, save_best=True))
        at_end = []
        if context.each_round is not None:  # the others once, on the final model
            at_end = [(m, n) for m, n in evals if n not in context.each_round]
            evals = [(m, n) for m, n in evals if n in context.each_round]
        history: dict = {}
        # XGBoost's warnings go to the job's log: device=cuda on a machine without a visible
        # GPU trains on the CPU, and XGBoost says so ("No visible GPU is found").
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            booster = xgb.train(
                booster_params(hp, nthread),
                dtrain,
                num_boost_round=hp["num_round"],
                evals=evals,
                evals_result=history,
                callbacks=callbacks,
                verbose_eval=False,
            )
        for line in dict.fromkeys(str(w.message).strip() for w in said):
            log(f"xgboost: {line}")
        booster.save_model(context.output_dir / MODEL_FILE)
        rounds = booster.num_boosted_rounds()
        flat = {f"{d}_{m}": v for d, ms in history.items() for m, v in ms.items()}
        metrics = final_metrics(flat, rounds, hp) | final_evaluation(booster, at_end, hp)
        log(f"trained {rounds} rounds; " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
        return TrainedModel(
            model_file=MODEL_FILE,
            predictor="xgboost",
            metrics=metrics,
            history=flat,
            info={"rounds": rounds, "xgboost_version": xgb.__version__},
        )

    def train_distributed(
        self,
        client: Any,
        data: TrainingData,
        hyperparameters: dict[str, Any],
        context: TrainingContext,
        collective_timeout: float,
    ) -> TrainedModel:
        from algorithms.xgboost_dask import train_on_dask  # distributed loads only here

        hp = self.validate_hyperparameters(hyperparameters)
        return train_on_dask(client, data, hp, context, collective_timeout)


def _matrix(frame, data: TrainingData, channel: str) -> xgb.DMatrix:
    missing = [c for c in [*data.features, data.label] if c not in frame.columns]
    if missing:
        raise SchemaError(f"channel {channel!r} lacks column(s) {', '.join(missing)}")
    if frame.empty:
        raise SchemaError(f"channel {channel!r} has no rows")
    return xgb.DMatrix(
        frame[data.features].to_numpy(dtype=np.float32),
        label=frame[data.label].to_numpy(dtype=np.float32),
        feature_names=data.features,
    )


class XGBoostPredictor:
    """A loaded booster that predicts probabilities for encoded feature rows."""

    def __init__(self, booster: xgb.Booster):
        self.booster = booster
        self.num_features = booster.num_features()
        # inplace_predict's own arguments to XGBoost's C API, encoded once (see predict).
        self._config = make_jcargs(
            type=0,
            training=False,
            iteration_begin=0,
            iteration_end=0,
            missing=float("nan"),
            strict_shape=False,
            cache_id=0,
        )

    @classmethod
    def load(cls, path: str | Path) -> XGBoostPredictor:
        booster = xgb.Booster()
        try:
            booster.load_model(str(path))
        except xgb.core.XGBoostError as exc:
            raise AlgorithmError(f"{path} is not a valid XGBoost model: {exc}") from exc
        # One thread per predict: a server runs many requests at once; threads would fight.
        booster.set_param({"nthread": 1})
        return cls(booster)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Scores for rows of ``num_features`` features.

        XGBoost checks the width itself (so a server, whose parser has already checked each
        row, pays for no second check here); its refusal is turned into a clear error.

        Raises:
            SchemaError: the rows are not ``num_features`` wide.
        """
        try:
            if features.ndim == 2 and features.dtype == np.float32 and features.flags.c_contiguous:
                return self._predict_dense(features)
            return self.booster.inplace_predict(features, validate_features=False)
        except xgb.core.XGBoostError:
            if features.ndim == 2 and features.shape[1] == self.num_features:
                raise  # not about the width: XGBoost's own message says what
            raise SchemaError(
                f"expected rows of {self.num_features} features, got shape {features.shape}"
            ) from None

    def _predict_dense(self, rows: np.ndarray) -> np.ndarray:
        """What ``inplace_predict`` does for a C-ordered float32 array, in one C call: for the
        few rows of a serving micro-batch its Python side (input type dispatch, JSON, two
        copies) took as long as the prediction itself (measured at 64 connections)."""
        n, width = rows.shape
        interface = (
            f'{{"data": [{rows.ctypes.data}, true], "shape": [{n}, {width}], '
            '"strides": null, "typestr": "<f4", "version": 3}'
        )
        shape, dims = ctypes.POINTER(c_bst_ulong)(), c_bst_ulong()
        scores = ctypes.POINTER(ctypes.c_float)()
        _check_call(
            _LIB.XGBoosterPredictFromDense(
                self.booster.handle,
                interface.encode(),
                self._config,
                None,
                ctypes.byref(shape),
                ctypes.byref(dims),
                ctypes.byref(scores),
            )
        )
        # The scores live in the booster's buffer until its next predict: copy them out.
        return np.ctypeslib.as_array(scores, shape=tuple(shape[: dims.value])).copy()
