"""The dask backend: the backend contract on a LocalCluster and on a real scheduler with two
worker processes, then what only a cluster can do wrong."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from algorithms.catalog import resolve_predictor
from backends import TrainingBackend
from backends.dask import DaskBackend
from backends.local import LocalBackend
from core.errors import BackendError
from core.records.jobs import JobStore, Secondary, Status
from core.store import Store
from tests.backend_contract import BackendContract
from tests.helpers import (
    FEATURES,
    ROOT,
    free_port,
    make_job,
    start_logged,
    wait_for,
    write_channels,
)

pytestmark = pytest.mark.dask


@pytest.fixture(scope="module")
def scheduler_with_two_workers(tmp_path_factory, aws) -> Iterator[str]:
    """``dask scheduler`` and two ``dask worker`` processes on loopback; yields the address.

    They start inside the AWS stand-in's environment, so they can read ``s3://`` channels too.
    """
    from distributed import Client

    logs = tmp_path_factory.mktemp("dask-cli")
    address = f"tcp://127.0.0.1:{free_port()}"
    env = os.environ | {"PYTHONPATH": str(ROOT)}  # workers must import the project's code
    python = [sys.executable, "-m"]
    scheduler = [*python, "distributed.cli.dask_scheduler", "--port", address.rsplit(":", 1)[1]]
    worker = [*python, "distributed.cli.dask_worker", address, "--nthreads", "1"]
    loopback = ["--host", "127.0.0.1", "--no-dashboard"]
    commands = [[*scheduler, *loopback], [*worker, *loopback], [*worker, *loopback]]
    procs = []
    try:
        for i, command in enumerate(commands):
            procs.append(start_logged(command, logs / f"{i}.log", env))
        deadline = time.monotonic() + 60
        while True:
            try:
                with Client(address, timeout=5) as client:
                    client.wait_for_workers(2, timeout=max(deadline - time.monotonic(), 1))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
        yield address
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


class TestDaskLocalCluster(BackendContract):
    @pytest.fixture(scope="class")
    def backend(self) -> Iterator[TrainingBackend]:
        with DaskBackend(workers=2, threads=1, poll_interval=0.05) as backend:
            yield backend


class TestDaskSchedulerAddress:
    """On a scheduler someone else runs: what differs from a cluster Skiff creates (reaching
    it, its workers importing the job's code, the job's record). The rest of the contract is
    the same code once the address is known, and runs once, on the LocalCluster above."""

    @pytest.fixture(scope="class")
    def backend(self, scheduler_with_two_workers) -> Iterator[TrainingBackend]:
        with DaskBackend(scheduler=scheduler_with_two_workers, poll_interval=0.05) as backend:
            yield backend

    test_completes_and_records_everything = BackendContract.test_completes_and_records_everything
    test_bring_your_own_algorithm_and_predictor = (
        BackendContract.test_bring_your_own_algorithm_and_predictor
    )

    def test_job_record_shows_cluster_and_split(self, backend, store, tiny_channels):
        status = backend.run(make_job(store, tiny_channels), store)
        spec = JobStore(store).spec(status.name)
        assert spec.resources.cluster == "existing scheduler"
        assert status.info["cluster"]["workers"] == 2
        split = status.info["rows_per_worker"]["train"]
        assert len(split) == 2 and sum(split.values()) == 2000


class TestDaskOnOneWorker:
    """``placement="worker"``: the whole job is one task on one worker thread (a tuning job's
    trials), on the same scheduler: what the contract asks of a job's record, and what only
    this placement can get wrong (a stopped job must give its worker back)."""

    @pytest.fixture(scope="class")
    def backend(self, scheduler_with_two_workers) -> Iterator[TrainingBackend]:
        options = {"scheduler": scheduler_with_two_workers, "placement": "worker"}
        with DaskBackend(**options, poll_interval=0.05) as backend:
            yield backend

    test_completes_and_records_everything = BackendContract.test_completes_and_records_everything
    test_missing_channel_column_is_named = BackendContract.test_missing_channel_column_is_named

    def test_a_failing_algorithm_fails_the_job_after_what_it_said(
        self, backend, store, tiny_channels
    ):
        """Its reason, as on every backend; and what the worker said before it failed, in
        the job's record before the failure (the runner waits for the worker's last words)."""
        job = make_job(store, tiny_channels, algorithm="tests.byo_algorithms:Failing")
        status = backend.run(job, store)
        assert (status.status, status.failure_reason) == (
            Status.FAILED,
            "RuntimeError: boom: the data is cursed",
        )
        assert not store.exists(JobStore.output_key(job.name, "model.json"))
        steps = [t.secondary_status for t in status.transitions]
        assert steps[-2:] == [Secondary.TRAINING, Secondary.FAILED], steps
        log = JobStore(store).log(job.name)
        assert log.index("looking at the data") < log.index("Failed/Failed"), log

    def test_it_trains_on_one_worker_without_the_clusters_lock(
        self, backend, store, tiny_channels, scheduler_with_two_workers
    ):
        from distributed import Client

        status = backend.run(make_job(store, tiny_channels), store)
        assert status.status == Status.COMPLETED, status.failure_reason
        jobs = JobStore(store)
        assert jobs.spec(status.name).resources.placement == "worker"
        log = jobs.log(status.name)
        with Client(scheduler_with_two_workers, timeout=10) as client:
            workers = set(client.scheduler_info()["workers"])
        (training,) = [t for t in status.transitions if t.secondary_status == Secondary.TRAINING]
        assert any(f"on the worker {w} " in training.message for w in workers), training.message
        assert "train: 2000 rows" in training.message
        assert "lock after" not in log  # the cluster's training lock is xgboost.dask's

    def test_a_stopped_job_gives_its_worker_back(
        self, backend, store, tiny_channels, scheduler_with_two_workers
    ):
        """A trial the tuner stops must not keep training on the worker (its thread is the
        next trial's): the task ends at its next round once the job's record says Stopped."""
        from distributed import Client

        job = make_job(store, tiny_channels, algorithm="tests.byo_algorithms:ReportsForever")
        jobs = JobStore(store)
        thread, result = _run_in_thread(backend, job, store)
        try:
            wait_for(lambda: read_rounds_of(jobs, job.name), 60, "the job's first rounds")
        finally:
            if job.name in jobs.names():
                jobs.request_stop(job.name)
            thread.join(timeout=60)
        assert result["s"].status == Status.STOPPED, result["s"].failure_reason
        with Client(scheduler_with_two_workers, timeout=10) as client:
            wait_for(
                lambda: not any(client.processing().values()),
                30,
                "the workers to have nothing running",
            )


def read_rounds_of(jobs: JobStore, name: str) -> list:
    from core.records.channel import read_rounds

    return read_rounds(jobs, name) if name in jobs.names() else []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"scheduler": "tcp://h:1", "cluster_class": "a.b:C"}, "either scheduler or cluster_class"),
        (
            {"scheduler": "tcp://h:1", "workers": 3},
            "with scheduler='tcp://h:1' the cluster is already sized",
        ),
        ({"cluster_class": "a.b:C", "threads": 2}, "pass the size of 'a.b:C' in cluster_kwargs"),
        ({"cluster_kwargs": {"n": 1}}, "cluster_kwargs needs cluster_class"),
        ({"scheduler": "h:1"}, "must be an address like tcp://host:8786"),
    ],
)
def test_conflicting_options_are_named(options, message):
    with pytest.raises(BackendError, match=message):
        DaskBackend(**options)


def test_unreachable_scheduler_is_a_clear_error_within_the_timeout(store, tiny_channels):
    address = f"tcp://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with (
        pytest.raises(
            BackendError, match=rf"cannot reach the Dask scheduler at {address} within 2 s"
        ),
        DaskBackend(scheduler=address, connect_timeout=2) as backend,
    ):
        backend.run(make_job(store, tiny_channels), store)
    assert time.monotonic() - started < 15
    assert JobStore(store).names() == []


def _predict(store, status, frame: pd.DataFrame) -> np.ndarray:
    meta = store.read_json(JobStore.output_key(status.name, "model.json"))
    return (
        resolve_predictor("xgboost")
        .load(meta["model_url"])
        .predict(frame[FEATURES].to_numpy(np.float32))
    )


def test_workers_that_never_start_are_a_clear_error_within_the_timeout():
    from distributed import Client, LocalCluster

    from algorithms.dask_client import wait_for_workers
    from core.errors import JobError

    with (
        LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        started = time.monotonic()
        with pytest.raises(JobError, match=r"only 0 of 2 Dask workers started within 0.5 s"):
            wait_for_workers(client, 2, timeout=0.5)
        assert time.monotonic() - started < 10


@pytest.mark.slow
def test_one_worker_matches_local_and_two_workers_come_close(store, tiny_channels):
    valid = pd.read_parquet(tiny_channels["validation"])
    hp = {"num_round": 30}
    local = LocalBackend(threads=2).run(make_job(store, tiny_channels, hyperparameters=hp), store)
    with DaskBackend(workers=1, threads=2) as one:
        single = one.run(make_job(store, tiny_channels, hyperparameters=hp), store)
    with DaskBackend(workers=2, threads=1) as two:
        double = two.run(make_job(store, tiny_channels, hyperparameters=hp), store)
    assert np.array_equal(_predict(store, local, valid), _predict(store, single, valid))
    assert abs(double.metrics["validation_auc"] - local.metrics["validation_auc"]) < 0.01


@pytest.fixture
def big_channels(store) -> dict[str, str]:
    """Enough data that training runs for many seconds with one thread per worker."""
    return write_channels(store, "big", 200_000, seed=3)


LONG = {"num_round": 5000, "max_depth": 8, "eta": 0.01}


def _run_in_thread(backend, job, store) -> tuple[threading.Thread, dict]:
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(s=backend.run(job, store)))
    thread.start()
    return thread, result


def _training(store, name: str) -> bool:
    jobs = JobStore(store)
    return name in jobs.names() and jobs.status(name).secondary_status == Secondary.TRAINING


@pytest.mark.slow
@pytest.mark.parametrize("how", ["killed", "frozen"])
def test_lost_worker_fails_the_job_within_the_timeouts(store, big_channels, how):
    from distributed import Client

    with DaskBackend(workers=2, threads=1, collective_timeout=5) as backend:
        with Client(backend.scheduler_address()) as client:
            client.wait_for_workers(2, timeout=60)  # the backend does not wait for them
            pid = sorted(client.run(os.getpid).values())[0]
        job = make_job(store, big_channels, hyperparameters=LONG, max_runtime_seconds=300)
        thread, result = _run_in_thread(backend, job, store)
        try:
            wait_for(lambda: _training(store, job.name), 120, "training to start")
            os.kill(pid, signal.SIGKILL if how == "killed" else signal.SIGSTOP)
            hit = time.monotonic()
            thread.join(timeout=90)
            assert not thread.is_alive(), "the job hung"
            took = time.monotonic() - hit
        finally:
            if how == "frozen":
                for sig in (signal.SIGCONT, signal.SIGKILL):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, sig)
            thread.join(timeout=60)
    status = result["s"]
    assert status.status == Status.FAILED, (status.status, status.failure_reason)
    assert status.failure_reason
    assert took < (20 if how == "killed" else 5 + 40), took


@pytest.mark.slow
def test_second_job_on_a_busy_cluster_fails_cluster_busy(
    store, tiny_channels, scheduler_with_two_workers, tmp_path
):
    """The first job holds the cluster's training lock until the test lets it go, so the
    second asks for a lock that is taken however fast or slow the machine is."""
    release = tmp_path / "release"
    with (
        DaskBackend(scheduler=scheduler_with_two_workers) as first_backend,
        DaskBackend(scheduler=scheduler_with_two_workers) as second_backend,
    ):
        first = make_job(
            store,
            tiny_channels,
            algorithm="tests.byo_algorithms:HoldsTheCluster",
            hyperparameters={"release": str(release)},
        )
        thread, result = _run_in_thread(first_backend, first, store)
        try:
            wait_for(lambda: _training(store, first.name), 120, "the first job to hold the lock")
            # 20 s: time for the runner to start and ask for the lock even on a loaded machine.
            second = make_job(store, tiny_channels, max_runtime_seconds=20)
            second_status = second_backend.run(second, store)
        finally:
            release.touch()
            thread.join(timeout=120)
    assert second_status.status == Status.FAILED
    assert second_status.failure_reason.startswith("cluster busy"), second_status.failure_reason
    assert result["s"].status == Status.COMPLETED, result["s"].failure_reason


def test_flow_trains_on_dask(prefect_server, archive, tmp_path):
    from flows.bank_marketing import bank_marketing

    summary = bank_marketing(
        source=str(archive),
        store=str(tmp_path / "s"),
        backend="dask",
        threads=1,
        dask={"workers": 2},
        until="train",
    )
    assert summary["job_status"] == "Completed" and summary["metrics"]["validation_auc"] > 0.78
    from core.store import Store

    jobs = JobStore(Store(str(tmp_path / "s")))
    assert jobs.spec(summary["job_name"]).resources.cluster == "LocalCluster 2×1"
    split = jobs.status(summary["job_name"]).info["rows_per_worker"]["train"]
    assert len(split) == 2 and sum(split.values()) == 28831


def test_conflicting_flags_are_refused_on_the_command_line(capsys):
    from flows.bank_marketing import main

    with pytest.raises(SystemExit):
        main(["--backend", "dask", "--scheduler", "tcp://h:1", "--workers", "2"])
    assert "the cluster is already sized" in capsys.readouterr().err


@pytest.mark.slow
def test_remote_side_runs_a_job_from_s3_on_a_scheduler_given_on_its_command_line(
    bucket, scheduler_with_two_workers
):
    """What a training instance runs: ``python -m algorithms.run <spec-url> --scheduler A``,
    with the spec, the channels, the status and the model on S3 (the stand-in)."""
    store = Store(f"{bucket}/skiff")
    store.ensure_layout()
    channels = write_channels(store, "s3", 4000, seed=1)
    job = make_job(store, channels)
    jobs = JobStore(store)
    jobs.create(job)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "algorithms.run",
            jobs.spec_url(job.name),
            "--scheduler",
            scheduler_with_two_workers,
        ],
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    status = jobs.status(job.name)
    assert proc.returncode == 0 and status.status == Status.COMPLETED, (
        status.failure_reason,
        proc.stderr[-2000:],
    )
    assert status.metrics["validation_auc"] > 0.9
    assert status.model_url.startswith(f"{bucket}/skiff/jobs/{job.name}/output/")
    assert store.exists(JobStore.output_key(job.name, "model.json"))
    assert "2 workers at " + scheduler_with_two_workers in jobs.log(job.name)


@pytest.mark.slow
def test_a_tuning_job_runs_its_trials_on_the_cluster(scheduler_with_two_workers, store):
    from core.records.tuning import Objective, ParameterRange, TuningSpec
    from flows.tuning import jobs as tuning

    channels = write_channels(store, "tuned", 2000, seed=4)
    spec = TuningSpec(
        name="on-dask",
        definition=make_job(store, channels, name="on-dask"),
        ranges=[ParameterRange(name="max_depth", kind="integer", low=2, high=6)],
        objective=Objective(metric="validation:auc"),
        strategy="Random",
        max_trials=3,
        max_parallel=2,
        backend="dask",
        backend_options={"scheduler": scheduler_with_two_workers},
    )
    tuning.create(store, spec)
    record = tuning.run(store, "on-dask")
    assert record.counts()["Completed"] == 3, record
    jobs = JobStore(store)
    for trial in record.trials:  # each trained on one worker (side by side, no lock)
        resources = jobs.spec(trial.job_name).resources
        assert (resources.scheduler, resources.placement) == (scheduler_with_two_workers, "worker")
        assert "on the worker tcp://" in jobs.log(trial.job_name)
    # The trials' runners were forked from a warm process, which ends with the tuning job.
    wait_for(lambda: not _warm_runners(), 30, "the warm runner process to end")


def _warm_runners() -> list:
    import psutil

    found = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):  # one that has just ended
            if "algorithms.warm" in " ".join(child.cmdline()):
                found.append(child)
    return found


@pytest.mark.slow
def test_a_transform_job_scores_its_blocks_on_the_workers(
    scheduler_with_two_workers, tmp_path, csv_bytes
):
    """Blocks of 1 MB of one object with a header, scored by two workers: the output is the
    local backend's, byte for byte, in input order; a bad row in a later block is named by
    its line in the object."""
    from core.records.transforms import TransformJob, TransformStore
    from flows.transforms.jobs import run
    from tests.serving_fixtures import bank_store

    store, features, rows = bank_store(tmp_path, csv_bytes, {"m": {"max_depth": 3}})
    frame = pd.concat([rows] * 30, ignore_index=True)[features]  # ~3 MB: three blocks
    frame.to_csv(tmp_path / "rows.csv", index=False)
    spec = TransformJob(
        name="on-one-machine",
        model_group="bank-marketing",
        model_version=1,
        input_url=str(tmp_path / "rows.csv"),
        output_url=str(tmp_path / "local"),
        header=True,
    )
    local = run(store, spec)
    on_cluster = {"scheduler": scheduler_with_two_workers, "partition_mb": 1}
    spread = spec.model_copy(
        update={"name": "on-the-cluster", "output_url": str(tmp_path / "dask"), "backend": "dask"}
    )
    status = run(store, spread, on_cluster)
    assert status.status == Status.COMPLETED, status.failure_reason
    assert status.rows == local.rows == len(frame)
    expected = (tmp_path / "local" / "rows.csv.out").read_bytes()
    assert (tmp_path / "dask" / "rows.csv.out").read_bytes() == expected
    assert status.histogram == local.histogram
    log = TransformStore(store).log("on-the-cluster")
    assert "scoring on existing scheduler: 2 worker thread(s)" in log

    lines = (tmp_path / "rows.csv").read_text().splitlines()
    lines[15_000] = lines[15_000].replace(",", ",x", 1)  # in the second or third block
    (tmp_path / "bad.csv").write_text("\n".join(lines) + "\n")
    bad = spread.model_copy(update={"name": "bad-row", "input_url": str(tmp_path / "bad.csv")})
    status = run(store, bad, on_cluster)
    assert status.status == Status.FAILED
    assert "bad.csv, line 15001: column 2: 'x" in status.failure_reason
    assert not (tmp_path / "dask" / "bad.csv.out").exists()
