"""The API's fixtures: ``skiff api`` as a real process (jobs run as Prefect flow runs on the
session's Prefect server, S3 on moto), and the same app in a thread over an empty store for
what needs no job (errors, signatures)."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
import uvicorn
from botocore.config import Config

from core.store import Store
from flows.api.context import ApiContext
from flows.api.server import make_app
from tests.helpers import free_port, start_logged, wait_for

CREDENTIALS = {"AKIDSKIFFTEST": "the-right-secret"}


def sagemaker(url: str, key: str = "testing", secret: str = "testing") -> Any:
    """boto3's own SageMaker client, pointed at ``url`` (and nothing else changed)."""
    return boto3.client(
        "sagemaker",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}),
    )


class _ThreadServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # a thread cannot; the test runner owns them
        pass


def serve_in_thread(app: Any) -> Iterator[str]:
    port = free_port()
    server = _ThreadServer(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 30, "the API server in a thread")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def quiet_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = Store(str(tmp_path_factory.mktemp("api-store")))
    store.ensure_layout()
    return store


@pytest.fixture(scope="module")
def quiet_api(quiet_store: Store) -> Iterator[str]:
    """The API app over a store of its own, any signature accepted (as on loopback); no job
    it is asked for starts (those tests are refused before), records are made directly."""
    yield from serve_in_thread(make_app(ApiContext(quiet_store)))


@pytest.fixture(scope="module")
def signed_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API app that checks every signature against ``CREDENTIALS``."""
    store = Store(str(tmp_path_factory.mktemp("api-store")))
    store.ensure_layout()
    yield from serve_in_thread(make_app(ApiContext(store), credentials=CREDENTIALS))


class ApiProcess:
    def __init__(self, url: str, store: Store, log: Path):
        self.url, self.store, self.log = url, store, log

    def client(self) -> Any:
        return sagemaker(self.url)


def start_api(store: Store, log: Path) -> tuple[Any, str]:
    """``skiff api`` itself, as users start it, over ``store``; once it answers."""
    port = free_port()
    command = [sys.executable, "-m", "flows.cli", "--store", store.root, "api", "--port", str(port)]
    proc = start_logged(command, log, os.environ.copy())
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, log.read_text()
        try:
            sagemaker(url).list_training_jobs()
            return True
        except Exception:
            return False

    wait_for(up, 120, "skiff api", every=0.3)
    return proc, url


@pytest.fixture(scope="session")
def api(
    tmp_path_factory: pytest.TempPathFactory, prefect_server: str, aws: str
) -> Iterator[ApiProcess]:
    """``skiff api`` over a fresh store; its jobs reach S3 (moto) through the standard AWS
    variables and report to the session's Prefect server."""
    folder = tmp_path_factory.mktemp("api")
    store = Store(str(folder / "store"))
    proc, url = start_api(store, folder / "api.log")
    try:
        yield ApiProcess(url, store, folder / "api.log")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@dataclass
class Demo:
    """The 2017 demo's training job, run once through the API for the tests that read it."""

    job: str
    bucket: str
    frames: dict[str, pd.DataFrame]
    described: dict[str, Any]


DEMO_JOB = "DEMO-xgboost-dm-2017"


@pytest.fixture(scope="session")
def demo(api: ApiProcess, csv_bytes: bytes) -> Demo:
    """The demo's data prepared as the notebook did, on S3 (moto), trained on 2 instances
    with the notebook's exact hyperparameters, waited for with boto3's waiter."""
    from bench.api import DEMO_HYPERPARAMETERS, DEMO_IMAGE, notebook_frames

    bucket = f"demo-{os.urandom(3).hex()}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    frames = notebook_frames(csv_bytes)
    for channel in ("train", "validation"):
        body = frames[channel].to_csv(index=False, header=False).encode()
        s3.put_object(Bucket=bucket, Key=f"sagemaker/xgboost-dm/{channel}/{channel}.csv", Body=body)
    client = api.client()
    client.create_training_job(
        TrainingJobName=DEMO_JOB,
        RoleArn="arn:aws:iam::000000000000:role/SageMakerRole",
        AlgorithmSpecification={"TrainingImage": DEMO_IMAGE, "TrainingInputMode": "File"},
        HyperParameters=DEMO_HYPERPARAMETERS,
        InputDataConfig=[
            {
                "ChannelName": channel,
                "ContentType": "csv",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"s3://{bucket}/sagemaker/xgboost-dm/{channel}/",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
            for channel in ("train", "validation")
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/sagemaker/xgboost-dm/output"},
        ResourceConfig={"InstanceType": "ml.m4.xlarge", "InstanceCount": 2, "VolumeSizeInGB": 5},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
        Tags=[{"Key": "project", "Value": "bank-marketing"}],
    )
    client.get_waiter("training_job_completed_or_stopped").wait(
        TrainingJobName=DEMO_JOB, WaiterConfig={"Delay": 1, "MaxAttempts": 600}
    )
    described = client.describe_training_job(TrainingJobName=DEMO_JOB)
    return Demo(DEMO_JOB, bucket, frames, described)
