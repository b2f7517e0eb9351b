"""The ec2 backend against moto in server mode (the AWS stand-in), with the instances played on
this machine by ``tests.ec2_player``: their real user data starts the real driver and workers
on loopback, and the job runs for real with the store on S3. Every case ends with no live
instance for the job's tag."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from backends import get_backend
from backends.ec2 import Ec2Backend
from backends.ec2_fleet import JOB_ID_TAG, Fleet, find_instances, job_filter
from backends.ec2_options import resolve_settings
from backends.ec2_userdata import user_data
from core.errors import BackendError
from core.records.jobs import JobStore, Secondary, Status
from core.store import Store
from flows.cli import main as skiff
from tests.ec2_player import InstancePlayer
from tests.helpers import make_job, pipeline_process, wait_for, write_channels

PROFILE = "skiff-training"
AMI = "ami-0123456789abcdef0"


@pytest.fixture(scope="module")
def ec2(aws: str):
    iam = boto3.client("iam")
    with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
        iam.create_instance_profile(InstanceProfileName=PROFILE)
    return boto3.client("ec2")


@pytest.fixture
def player(ec2, tmp_path) -> Iterator[InstancePlayer]:
    with InstancePlayer(ec2, tmp_path / "instances") as player:
        yield player
    assert not player.errors, player.errors


@pytest.fixture
def s3_store(bucket: str) -> Store:
    store = Store(f"{bucket}/skiff")
    store.ensure_layout()
    return store


@pytest.fixture
def channels(s3_store: Store) -> dict[str, str]:
    return write_channels(s3_store, "tiny", 2000, seed=1)


def backend(**options) -> Ec2Backend:
    options = {
        "ami": AMI,
        "instance_type": "m5.large",
        "instance_profile": PROFILE,
        "remote_python": sys.executable,
        "worker_start_timeout": 60,
        "worker_death_timeout": 10,
        "poll_interval": 0.2,
    } | options
    return Ec2Backend(**options)


def live(ec2, job_id: str) -> list:
    return [i for i in find_instances(ec2, job_filter(job_id)) if i.alive]


@pytest.mark.slow
def test_a_job_on_two_instances_trains_across_both_and_leaves_none_running(
    ec2, player, s3_store, channels
):
    with backend(instance_count=2, instance_tags={"team": "growth"}) as ec2_backend:
        status = ec2_backend.run(make_job(s3_store, channels), s3_store)
    assert status.status == Status.COMPLETED, (status.failure_reason, player.console("driver"))
    assert status.metrics["validation_auc"] > 0.9
    assert status.model_url.startswith(f"{s3_store.root}/jobs/{status.name}/output/")
    assert sorted(status.info["instances"].values()) == ["driver", "worker"]
    assert len(status.info["rows_per_worker"]["train"]) == 2  # one Dask worker per instance
    assert live(ec2, status.info["job_id"]) == [] and status.info["instances_left_alive"] == []

    instance = ec2.describe_instances(InstanceIds=list(status.info["instances"]))
    for item in (i for r in instance["Reservations"] for i in r["Instances"]):
        tags = {t["Key"]: t["Value"] for t in item["Tags"]}
        assert tags["team"] == "growth" and tags[JOB_ID_TAG] == status.info["job_id"]
        assert tags["Name"] == f"skiff-{status.name}-{tags['skiff:role']}"
        assert item["MetadataOptions"]["HttpTokens"] == "required"
        behaviour = ec2.describe_instance_attribute(
            InstanceId=item["InstanceId"], Attribute="instanceInitiatedShutdownBehavior"
        )
        assert behaviour["InstanceInitiatedShutdownBehavior"]["Value"] == "terminate"
    # The workers found the scheduler through the store, at the driver's private address.
    published = s3_store.read_json(f"jobs/{status.name}/cluster/scheduler.json")
    assert published["address"].startswith("tcp://127.0.0.1:")


@pytest.mark.slow
def test_a_remote_failure_ends_failed_with_its_reason(ec2, player, s3_store, channels):
    job = make_job(s3_store, channels, algorithm="tests.byo_algorithms:Failing")
    with backend() as ec2_backend:
        status = ec2_backend.run(job, s3_store)
    assert status.status == Status.FAILED
    assert "boom: the data is cursed" in status.failure_reason
    assert live(ec2, status.info["job_id"]) == []


@pytest.mark.slow
def test_a_driver_that_cannot_start_its_cluster_fails_the_job_with_why(
    ec2, player, s3_store, channels
):
    player.host = "192.0.2.1"  # TEST-NET: not this machine's, so the scheduler cannot bind
    with backend() as ec2_backend:
        status = ec2_backend.run(make_job(s3_store, channels), s3_store)
    assert status.status == Status.FAILED
    assert status.failure_reason.startswith(
        "on the driver instance: the Dask scheduler did not start on 192.0.2.1"
    ), status.failure_reason
    assert live(ec2, status.info["job_id"]) == []


@pytest.mark.slow
def test_max_runtime_stops_the_job_and_terminates_its_instances(ec2, player, s3_store, channels):
    job = make_job(
        s3_store, channels, algorithm="tests.byo_algorithms:Slow", max_runtime_seconds=20
    )
    with backend() as ec2_backend:
        status = ec2_backend.run(job, s3_store)
    assert (status.status, status.secondary_status) == (
        Status.STOPPED,
        Secondary.MAX_RUNTIME_EXCEEDED,
    )
    assert "InProgress/Training" in JobStore(s3_store).log(job.name)  # it did start remotely
    assert live(ec2, status.info["job_id"]) == []
    wait_for(lambda: not player.running_processes(), 10, "the played instances to die")


@pytest.mark.slow
def test_an_instance_terminated_from_outside_fails_the_job(ec2, player, s3_store, channels):
    job = make_job(s3_store, channels, algorithm="tests.byo_algorithms:Slow")

    def terminate_the_worker() -> None:
        worker = next(i for i, p in player.played.items() if p.role == "worker")
        ec2.terminate_instances(InstanceIds=[worker])

    with (
        when_training(JobStore(s3_store), job.name, terminate_the_worker),
        backend(instance_count=2) as ec2_backend,
    ):
        status = ec2_backend.run(job, s3_store)
    assert status.status == Status.FAILED
    assert "worker instance i-" in status.failure_reason
    assert "is terminated" in status.failure_reason or "is shutting-down" in status.failure_reason
    assert live(ec2, status.info["job_id"]) == []


@pytest.mark.slow
def test_a_stop_request_stops_the_job(ec2, player, s3_store, channels):
    job = make_job(s3_store, channels, algorithm="tests.byo_algorithms:Slow")
    jobs = JobStore(s3_store)
    with (
        when_training(jobs, job.name, lambda: jobs.request_stop(job.name)),
        backend() as ec2_backend,
    ):
        status = ec2_backend.run(job, s3_store)
    assert (status.status, status.failure_reason) == (Status.STOPPED, "stop requested"), (
        player.console("driver")
    )
    assert live(ec2, status.info["job_id"]) == []


@pytest.mark.slow
def test_a_capacity_error_on_the_workers_terminates_the_driver(
    ec2, player, s3_store, channels, monkeypatch
):
    """The driver launches, then AWS has no capacity for the workers (moto cannot run out,
    so the stand-in's own RunInstances answers the second call with AWS's error)."""
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models.instances import InstanceBackend

    launches = []
    real = InstanceBackend.run_instances

    def out_of_capacity(self, *args, **kwargs):
        launches.append(1)
        if len(launches) > 1:
            raise EC2ClientError(
                "InsufficientInstanceCapacity",
                "We currently do not have sufficient m5.large capacity.",
            )
        return real(self, *args, **kwargs)

    monkeypatch.setattr(InstanceBackend, "run_instances", out_of_capacity)
    with backend(instance_count=3) as ec2_backend:
        status = ec2_backend.run(make_job(s3_store, channels), s3_store)
    assert status.status == Status.FAILED
    assert "launching 2 worker instance(s) of m5.large failed: InsufficientInstanceCapacity" in (
        status.failure_reason
    )
    assert list(status.info["instances"].values()) == ["driver"]
    assert live(ec2, status.info["job_id"]) == []


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_the_command_line_interrupted_terminates_the_instances_within_30_s(
    ec2, player, prefect_server, archive, bucket, tmp_path, sig
):
    """``python -m flows.bank_marketing --backend ec2`` gets Ctrl-C, or SIGTERM to its process
    group as a cancelled Prefect run does (SIGKILL would follow 30 s later)."""
    store_url = f"{bucket}/skiff"
    on_ec2 = f"--backend ec2 --ami {AMI} --instance-count 2 --instance-profile {PROFILE}"
    proc = pipeline_process(
        prefect_server,
        tmp_path,
        f"--source {archive} --store {store_url} {on_ec2} --remote-python {sys.executable} "
        "--algorithm tests.byo_algorithms:Slow --job-name interrupted",
        wait=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    jobs = JobStore(Store(store_url))
    try:
        wait_for(
            lambda: _secondary(jobs, "interrupted") == Secondary.TRAINING,
            180,
            "training",
            every=0.2,
        )
        signalled = time.monotonic()
        os.killpg(proc.pid, sig)
        proc.wait(timeout=30)
        print(f"{sig.name}: the command line ended {time.monotonic() - signalled:.1f} s later")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    status = jobs.status("interrupted")
    assert status.status == Status.STOPPED, status
    assert "interrupted" in status.failure_reason
    assert live(ec2, status.info["job_id"]) == []
    # Terminated, the instances run nothing more (the player kills what a machine would lose).
    wait_for(lambda: not player.left_behind(), 30, "the instances' processes to end")


@pytest.mark.slow
def test_abandoned_instances_end_themselves(ec2, player, s3_store, channels):
    """No launcher follows this job: the driver records the failure and powers off, the
    worker exits with its scheduler and powers off, and both terminate."""
    job = make_job(s3_store, channels, algorithm="tests.byo_algorithms:Failing")
    with backend(instance_count=2) as ec2_backend:
        job, jobs = ec2_backend.prepare(job), JobStore(s3_store)
        jobs.create(job)
        fleet = Fleet(
            ec2,
            job.resources.job_id,
            job.name,
            ec2_backend.settings,
            datetime.now(UTC) + timedelta(hours=1),
        )
        for role, count in [("driver", 1), ("worker", 1)]:
            fleet.launch(role, count, ec2_backend.user_data(role, job, jobs.spec_url(job.name)))
    wait_for(lambda: not live(ec2, fleet.job_id), 90, "the instances to end themselves")
    assert all(p.powered_off for p in player.played.values())
    assert jobs.status(job.name).status == Status.FAILED


def test_reap_terminates_instances_past_their_deadline(ec2, aws, capsys):
    settings = resolve_settings(ami=AMI)
    now = datetime.now(UTC)
    late = Fleet(ec2, "late-job-1", "late-job", settings, now - timedelta(minutes=5))
    current = Fleet(ec2, "current-job-1", "current-job", settings, now + timedelta(hours=1))
    late.launch("driver", 1, "#!/bin/bash\n")
    current.launch("driver", 1, "#!/bin/bash\n")

    assert skiff(["ec2", "reap"]) == 0
    assert "terminated 1 instance(s)" in capsys.readouterr().out
    assert live(ec2, "late-job-1") == [] and len(live(ec2, "current-job-1")) == 1
    assert skiff(["ec2", "reap", "--job-id", "current-job-1"]) == 0
    assert live(ec2, "current-job-1") == []


def test_user_data_ends_the_instance_whatever_happens():
    script = user_data(
        "worker",
        job_id="j-1",
        spec_url="s3://b/jobs/j/job.json",
        region="eu-west-1",
        python="/opt/skiff/venv/bin/python",
        max_runtime=600,
        instance_count=3,
        worker_start_timeout=300,
        worker_death_timeout=60,
    )
    assert "trap 'eval \"${SKIFF_SHUTDOWN_COMMAND:-shutdown -h now}\"' EXIT" in script
    assert (
        "timeout --kill-after=30 1020 /opt/skiff/venv/bin/python -m backends.ec2_node "
        "worker s3://b/jobs/j/job.json --start-timeout 300 --death-timeout 60" in script
    )
    assert 'AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-eu-west-1}"' in script


def test_options_come_from_arguments_then_environment_then_config_file(tmp_path, monkeypatch):
    config = tmp_path / "ec2.toml"
    config.write_text('ami = "ami-file"\ninstance_type = "c5.large"\nspot = true\n')
    monkeypatch.setenv("SKIFF_EC2_CONFIG", str(config))
    monkeypatch.setenv("SKIFF_EC2_INSTANCE_TYPE", "c6i.xlarge")
    monkeypatch.setenv("SKIFF_EC2_SECURITY_GROUP_IDS", '["sg-1", "sg-2"]')
    settings = resolve_settings(instance_count=3, ami=None)
    assert (settings.ami, settings.instance_type, settings.spot) == ("ami-file", "c6i.xlarge", True)
    assert settings.security_group_ids == ["sg-1", "sg-2"] and settings.instance_count == 3
    assert resolve_settings(instance_type="m7i.large").instance_type == "m7i.large"
    with pytest.raises(BackendError, match="instance_count: Input should be less than or equal"):
        resolve_settings(instance_count=500)


def test_clear_errors_before_anything_is_launched(ec2, monkeypatch, store, tiny_channels):
    monkeypatch.setenv("SKIFF_EC2_CONFIG", "/nonexistent/ec2.toml")
    with pytest.raises(BackendError, match="needs an AMI: --ami, SKIFF_EC2_AMI"):
        get_backend("ec2")
    with pytest.raises(BackendError, match="uses every core of each instance"):
        get_backend("ec2", ami=AMI, threads=2)
    with pytest.raises(BackendError, match="needs an s3:// store: instances cannot read /"):
        backend().run(make_job(store, tiny_channels), store)


@contextlib.contextmanager
def when_training(jobs: JobStore, name: str, action) -> Iterator[None]:
    """Run ``action`` in a thread once the job is training remotely."""

    def wait_then_act() -> None:
        wait_for(lambda: _secondary(jobs, name) == Secondary.TRAINING, 120, "training")
        action()

    thread = threading.Thread(target=wait_then_act)
    thread.start()
    yield
    thread.join()


def _secondary(jobs: JobStore, name: str) -> Secondary | None:
    try:
        return jobs.status(name).secondary_status
    except Exception:
        return None


def test_the_ec2_commands_name_aws_errors(monkeypatch, capsys):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # it caches the credentials it found
    assert skiff(["ec2", "reap", "--region", "us-east-1"]) == 1
    assert "reaping instances: NoCredentialsError" in capsys.readouterr().err


def test_the_schedulers_address_is_read_only_once_its_file_is_whole(tmp_path):
    # Dask writes its scheduler file in place: the driver polls until it parses.
    from backends.ec2_node import _published_address

    file = tmp_path / "scheduler.json"
    assert _published_address(file) is None
    file.write_text("")
    assert _published_address(file) is None
    file.write_text('{"type": "Scheduler", "addr')
    assert _published_address(file) is None
    file.write_text('{"type": "Scheduler", "address": "tcp://10.0.0.5:8786"}')
    assert _published_address(file) == "tcp://10.0.0.5:8786"
