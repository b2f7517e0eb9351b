"""XGBoost on a Dask cluster through ``xgboost.dask``: the built-in algorithm's distributed variant.

Imported only when a job runs on Dask (``distributed`` is heavy).
"""

from __future__ import annotations

from typing import Any

import xgboost as xgb
from xgboost import dask as dxgb

from algorithms.base import TrainedModel, TrainingContext, TrainingData
from algorithms.xgboost import (
    MODEL_FILE,
    ReportRounds,
    booster_params,
    early_stopping,
    final_metrics,
)
from core.errors import AlgorithmError


def _callbacks(hp: dict[str, Any], context: TrainingContext) -> list[Any]:
    """Each round to the job's live channel (from the first worker); and early stopping as
    the local path does."""
    rounds = [ReportRounds(context.report)]
    if not hp["early_stopping_rounds"]:
        return rounds
    return [*rounds, early_stopping(hp, save_best=False)]


def train_on_dask(
    client: Any,
    data: TrainingData,
    hp: dict[str, Any],
    context: TrainingContext,
    collective_timeout: float,
) -> TrainedModel:
    """Train with ``xgboost.dask`` on ``data`` (Dask DataFrames on the client's workers) and
    save the model in ``context.output_dir``."""
    train = data.train
    dtrain = dxgb.DaskQuantileDMatrix(
        client, train[data.features], train[data.label], max_bin=hp["max_bin"]
    )
    evals = [(dtrain, "train")]
    if data.validation is not None:
        valid = data.validation
        # ref= reuses the training matrix's quantile cuts: same bins, less memory.
        dvalid = dxgb.DaskQuantileDMatrix(
            client, valid[data.features], valid[data.label], ref=dtrain, max_bin=hp["max_bin"]
        )
        evals.append((dvalid, "validation"))
    elif hp["early_stopping_rounds"]:
        raise AlgorithmError("early_stopping_rounds needs a 'validation' channel")
    if data.test is not None:
        test = data.test
        dtest = dxgb.DaskQuantileDMatrix(
            client, test[data.features], test[data.label], ref=dtrain, max_bin=hp["max_bin"]
        )
        evals.append((dtest, "test"))
    params = booster_params(hp, nthread=0)
    params.pop("nthread")  # xgboost.dask gives each worker its own thread count
    output = dxgb.train(
        client,
        params,
        dtrain,
        num_boost_round=hp["num_round"],
        evals=evals,
        callbacks=_callbacks(hp, context),
        coll_cfg=xgb.collective.Config(timeout=int(collective_timeout)),
        verbose_eval=False,
    )
    booster, history = output["booster"], output["history"]
    if hp["early_stopping_rounds"]:
        # xgboost.dask returns every round it ran; keep those up to the best one.
        booster = booster[: booster.best_iteration + 1]
    rounds = booster.num_boosted_rounds()
    # Its rounds are in the job's log already: the runner logs them from the live channel as
    # they come (``algorithms.on_dask.rounds_to_log``).
    flat = {f"{d}_{m}": list(v) for d, ms in history.items() for m, v in ms.items()}
    metrics = final_metrics(flat, rounds, hp)
    booster.save_model(context.output_dir / MODEL_FILE)
    context.log(
        f"trained {rounds} rounds on Dask; " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items())
    )
    return TrainedModel(
        model_file=MODEL_FILE,
        predictor="xgboost",
        metrics=metrics,
        history=flat,
        info={"rounds": rounds, "xgboost_version": xgb.__version__},
    )
