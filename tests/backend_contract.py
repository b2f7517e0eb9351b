"""The contract every training backend passes. A backend's tests subclass BackendContract and
provide the ``backend`` fixture (tests/backends/: local, dask)."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from algorithms.catalog import resolve_predictor
from backends import TrainingBackend
from core.errors import AlgorithmError, HyperparameterError, JobError
from core.records.channel import read_rounds
from core.records.jobs import JobStore, Secondary, Status
from tests.helpers import FEATURES, job_pid, make_job, wait_for


class BackendContract:
    """What any backend must do. Subclasses provide a ``backend`` fixture."""

    @pytest.fixture
    def backend(self) -> Iterator[TrainingBackend]:
        raise NotImplementedError

    def test_completes_and_records_everything(self, backend, store, tiny_channels):
        job = make_job(store, tiny_channels)
        status = backend.run(job, store)
        assert status.status == Status.COMPLETED, status.failure_reason
        steps = [t.secondary_status for t in status.transitions]
        assert steps == [
            Secondary.STARTING,
            Secondary.STARTING,
            Secondary.DOWNLOADING,
            Secondary.TRAINING,
            Secondary.UPLOADING,
            Secondary.COMPLETED,
        ]
        assert [t.status for t in status.transitions][:2] == [Status.PENDING, Status.IN_PROGRESS]
        assert status.metrics["validation_auc"] > 0.9
        jobs = JobStore(store)
        assert jobs.status(job.name) == status  # the stored record is the returned one
        meta = store.read_json(jobs.output_key(job.name, "model.json"))
        model = store.read_bytes(jobs.output_key(job.name, "model.ubj"))
        assert meta["sha256"] == hashlib.sha256(model).hexdigest()
        assert meta["features"] == FEATURES and meta["provenance"]["packages"]["xgboost"]
        log = jobs.log(job.name)  # every tenth round, in SageMaker's format, on every backend
        assert "[9] train-auc" in log and "[19] train-auc" in log
        rounds = read_rounds(jobs, job.name)  # the live channel: every round, in order
        assert [r["round"] for r in rounds] == list(range(20))
        assert rounds[-1]["validation_auc"] == pytest.approx(status.metrics["validation_auc"])
        predictor = resolve_predictor(meta["predictor"]).load(meta["model_url"])
        valid = pd.read_parquet(tiny_channels["validation"])
        scores = predictor.predict(valid[FEATURES].to_numpy(np.float32))
        assert ((scores > 0.5) == valid["y"].astype(bool)).mean() > 0.85

    def test_same_inputs_give_the_same_model(self, backend, store, tiny_channels):
        digests = {
            store.read_json(JobStore.output_key(s.name, "model.json"))["sha256"]
            for s in (backend.run(make_job(store, tiny_channels), store) for _ in range(2))
        }
        assert len(digests) == 1

    def test_early_stopping_keeps_only_the_best_rounds(self, backend, store, tiny_channels):
        job = make_job(
            store,
            tiny_channels,
            hyperparameters={"num_round": 300, "eta": 0.5, "early_stopping_rounds": 5},
        )
        status = backend.run(job, store)
        assert status.status == Status.COMPLETED, status.failure_reason
        meta = store.read_json(JobStore.output_key(job.name, "model.json"))
        history = meta["history"]["validation_auc"]
        best = int(np.argmax(history))
        assert len(history) < 300  # it did stop early
        assert meta["info"]["rounds"] == best + 1
        assert status.metrics["validation_auc"] == pytest.approx(history[best], abs=1e-6)

    def test_bad_hyperparameter_fails_before_anything_is_recorded(
        self, backend, store, tiny_channels
    ):
        job = make_job(store, tiny_channels, hyperparameters={"max_depth": 99})
        with pytest.raises(HyperparameterError, match="'max_depth' = 99"):
            backend.run(job, store)
        assert JobStore(store).names() == []

    def test_unknown_algorithm_is_named(self, backend, store, tiny_channels):
        with pytest.raises(
            AlgorithmError, match="unknown algorithm 'catboost'; choose one of xgboost"
        ):
            backend.run(make_job(store, tiny_channels, algorithm="catboost"), store)

    def test_duplicate_name_is_refused(self, backend, store, tiny_channels):
        backend.run(make_job(store, tiny_channels, name="twice"), store)
        with pytest.raises(JobError, match="a training job named 'twice' already exists"):
            backend.run(make_job(store, tiny_channels, name="twice"), store)

    def test_algorithm_error_fails_the_job_with_its_reason(self, backend, store, tiny_channels):
        job = make_job(store, tiny_channels, algorithm="tests.byo_algorithms:Failing")
        status = backend.run(job, store)
        assert status.status == Status.FAILED
        assert status.failure_reason == "RuntimeError: boom: the data is cursed"
        assert not store.exists(JobStore.output_key(job.name, "model.json"))

    def test_dying_runner_fails_the_job(self, backend, store, tiny_channels):
        job = make_job(store, tiny_channels, algorithm="tests.byo_algorithms:CrashHard")
        status = backend.run(job, store)
        assert status.status == Status.FAILED
        assert "exited with code 3" in status.failure_reason

    def test_missing_channel_column_is_named(self, backend, store, tiny_channels):
        job = make_job(store, tiny_channels)
        job.features = [*FEATURES, "f99"]
        status = backend.run(job, store)
        assert status.status == Status.FAILED
        assert status.failure_reason == "channel 'train' lacks column(s) f99"

    @pytest.mark.slow
    def test_max_runtime_stops_the_job(self, backend, store, tiny_channels):
        # Long enough for the runner to start (and record its pid), short enough for CI.
        job = make_job(
            store, tiny_channels, algorithm="tests.byo_algorithms:Slow", max_runtime_seconds=6
        )
        started = time.monotonic()
        status = backend.run(job, store)
        assert time.monotonic() - started < 30
        assert (status.status, status.secondary_status) == (
            Status.STOPPED,
            Secondary.MAX_RUNTIME_EXCEEDED,
        )
        assert "MaxRuntimeExceeded" in status.failure_reason
        with pytest.raises(ProcessLookupError):  # nothing started for the job still runs
            os.kill(job_pid(JobStore(store), job.name), 0)

    def test_stop_request_stops_the_job(self, backend, store, tiny_channels):
        job = make_job(store, tiny_channels, algorithm="tests.byo_algorithms:Slow")
        jobs, result = JobStore(store), {}
        runner = threading.Thread(
            target=lambda: result.update(s=backend.run(job, store)), daemon=True
        )
        runner.start()
        try:
            wait_for(
                lambda: (
                    job.name in jobs.names()
                    and jobs.status(job.name).secondary_status == Secondary.TRAINING
                ),
                60,
                "the job to be training",
            )
        finally:  # a failed wait must not leave the job sleeping for ten minutes
            if job.name in jobs.names():
                jobs.request_stop(job.name)
        runner.join(timeout=60)
        assert not runner.is_alive()
        assert (result["s"].status, result["s"].secondary_status) == (
            Status.STOPPED,
            Secondary.STOPPED,
        )

    def test_bring_your_own_algorithm_and_predictor(self, backend, store, tiny_channels):
        job = make_job(
            store,
            tiny_channels,
            algorithm="tests.byo_algorithms:Logistic",
            hyperparameters={"steps": 300},
        )
        status = backend.run(job, store)
        assert status.status == Status.COMPLETED, status.failure_reason
        meta = store.read_json(JobStore.output_key(job.name, "model.json"))
        assert meta["predictor"] == "tests.byo_algorithms:LogisticPredictor"
        predictor = resolve_predictor(meta["predictor"]).load(meta["model_url"])
        valid = pd.read_parquet(tiny_channels["validation"])
        scores = predictor.predict(valid[FEATURES].to_numpy())
        assert ((scores > 0.5) == valid["y"].astype(bool)).mean() > 0.85
