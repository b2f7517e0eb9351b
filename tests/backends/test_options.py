"""Backends own their options: the pipeline's config, flags, flow parameters and --help come
from each backend's options model, a backend named by dotted path brings its own, and every
option is validated once, where it is given."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from backends.catalog import BACKENDS, get_backend, options_model
from backends.dask import DaskBackend
from backends.dask_options import DaskOptions
from core.errors import BackendError
from core.records.jobs import JobResources, JobStore, Status
from flows.bank_marketing import build_parser, main
from flows.config import PipelineConfig, flow_signature
from flows.training import TrainingRequest, train
from tests.byo_backends import NiceOptions

NICE = "tests.byo_backends:NiceBackend"


def test_each_registered_backend_brings_its_options_to_the_config_and_the_flow():
    assert set(BACKENDS.table) == {"local", "dask", "ec2"}
    parameters = flow_signature().parameters
    for name in ("dask", "ec2"):  # the backends with options beyond the common threads
        model = options_model(name)
        assert PipelineConfig.model_fields[name].annotation is model
        assert name in parameters
        assert "threads" not in model.model_json_schema()["properties"]  # the top level's
    assert "local" not in PipelineConfig.model_fields  # only threads: nothing of its own
    assert {"threads", "backend_options"} <= set(parameters)


def test_common_threads_reach_the_chosen_backend_and_are_checked_with_its_options():
    config = PipelineConfig(backend="dask", threads=2, dask={"workers": 3})
    options = config.chosen_backend_options()
    assert isinstance(options, DaskOptions) and (options.threads, options.workers) == (2, 3)
    assert PipelineConfig(threads=4).chosen_backend_options().threads == 4  # local
    with pytest.raises(ValidationError, match="with scheduler='tcp://h:1' the cluster is"):
        PipelineConfig(backend="dask", threads=2, dask={"scheduler": "tcp://h:1"})
    with pytest.raises(ValidationError, match="the ec2 backend uses every core"):
        PipelineConfig(backend="ec2", threads=2)
    with pytest.raises(ValidationError, match="unknown backend 'slurm'; choose one of dask, ec2"):
        PipelineConfig(backend="slurm")


def test_the_runners_defaults_are_stated_once():
    defaults = JobResources()
    assert DaskOptions().collective_timeout == defaults.collective_timeout
    assert DaskOptions().connect_timeout == defaults.connect_timeout
    assert DaskBackend().worker_start_timeout == defaults.worker_start_timeout


def test_a_backend_by_dotted_path_brings_its_options_everywhere(capsys, store, tiny_channels):
    with pytest.raises(SystemExit) as done:
        build_parser(["--backend", NICE]).parse_args(["--backend", NICE, "--help"])
    assert done.value.code == 0
    shown = capsys.readouterr().out
    assert f"{NICE} options" in shown and "--niceness NICENESS" in shown and "--queue" in shown

    with pytest.raises(SystemExit) as refused:
        main(["--backend", NICE, "--niceness", "99", "--store", "unused"])
    assert refused.value.code == 2 and "niceness" in capsys.readouterr().err

    config = PipelineConfig(backend=NICE, threads=1, backend_options={"niceness": 7})
    options = config.chosen_backend_options()
    assert isinstance(options, NiceOptions) and (options.niceness, options.threads) == (7, 1)
    with pytest.raises(ValidationError, match="niceness"):
        PipelineConfig(backend=NICE, backend_options={"niceness": 99})
    with pytest.raises(ValidationError, match="backend_options is for a backend given by dotted"):
        PipelineConfig(backend="dask", backend_options={"niceness": 1})

    # Through the training step: the job runs on it, with its options in the job's record.
    request = TrainingRequest(
        algorithm="xgboost",
        hyperparameters={"num_round": 5},
        backend=NICE,
        backend_options=options,
        max_runtime=120,
        model_group="nice",
    )
    status = train(request, _dataset(store, tiny_channels), store)
    assert status.status == Status.COMPLETED
    spec = JobStore(store).spec(status.name)
    assert spec.backend == NICE
    assert (spec.resources.niceness, spec.resources.queue, spec.resources.threads) == (
        7,
        "default",
        1,
    )


def test_keywords_are_validated_by_the_same_model():
    with pytest.raises(BackendError, match="invalid nice backend options: niceness"):
        get_backend(NICE, niceness=-1)
    with pytest.raises(BackendError, match="options or keywords, not both"):
        get_backend(NICE, NiceOptions(), niceness=1)


def _dataset(store, channels):
    from flows.datasets import Dataset, SplitInfo
    from tests.helpers import FEATURES

    splits = {
        n: SplitInfo(url=u, rows=1, positive_rate=0.5, sha256="0" * 64) for n, u in channels.items()
    }
    return Dataset(
        dataset_id="tiny",
        created_at="",
        source="",
        archive_sha256="",
        options={},
        label="y",
        features=FEATURES,
        feature_schema={"columns": []},
        splits=splits,
    )
