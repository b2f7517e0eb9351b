"""The local backend passes the backend contract (its runners started fresh, or forked from a
warm process); backends are found by name or dotted path."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from algorithms.catalog import resolve_predictor
from backends import TrainingBackend, get_backend
from backends.local import LocalBackend
from core.errors import AlgorithmError, BackendError
from tests.backend_contract import BackendContract


class TestLocalBackend(BackendContract):
    @pytest.fixture
    def backend(self) -> Iterator[TrainingBackend]:
        with LocalBackend(poll_interval=0.05) as backend:
            yield backend


class TestWarmLocalBackend(BackendContract):
    """The same contract with each runner forked from a warm process (a tuning job's
    trials): crashes, stops, max runtimes and failures read exactly as from a fresh one."""

    @pytest.fixture
    def backend(self) -> Iterator[TrainingBackend]:
        with LocalBackend(poll_interval=0.05) as backend:
            backend.expect_many_jobs()
            yield backend


def test_backend_registry_names_the_choices():
    assert isinstance(get_backend("local"), LocalBackend)
    assert isinstance(get_backend("backends.local:LocalBackend"), LocalBackend)
    with pytest.raises(
        BackendError, match="unknown backend 'slurm'; choose one of dask, ec2, local"
    ):
        get_backend("slurm")
    with pytest.raises(BackendError, match="is not a TrainingBackend subclass"):
        get_backend("tests.byo_algorithms:Failing")


def test_corrupt_model_file_is_a_clear_error(tmp_path):
    path = tmp_path / "model.ubj"
    path.write_bytes(b"{not a model")
    with pytest.raises(AlgorithmError, match=r"model.ubj is not a valid XGBoost model"):
        resolve_predictor("xgboost").load(path)
