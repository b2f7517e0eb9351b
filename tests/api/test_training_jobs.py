"""Training jobs through ``skiff api``, driven by boto3's own SageMaker client and its waiter:
real processes (the server, each job's Prefect flow run, its runner, a Dask LocalCluster), S3
on moto, and the artifacts read back with open-source XGBoost."""

from __future__ import annotations

import io
import signal
import tarfile
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from botocore.exceptions import ClientError
from botocore.validate import ParamValidator

from algorithms.classification_metrics import classification_metrics
from algorithms.xgboost import XGBoostPredictor
from core.records.jobs import JobStore
from flows import cli
from flows.api.shapes import service_model
from tests.api.conftest import sagemaker, start_api
from tests.api.test_logs import logs_client
from tests.helpers import wait_for

pytestmark = pytest.mark.slow
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
WAIT = {"Delay": 1, "MaxAttempts": 600}


def s3_channel(name: str, uri: str, content_type: str = "csv") -> dict[str, Any]:
    return {
        "ChannelName": name,
        "ContentType": content_type,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": uri,
                "S3DataDistributionType": "FullyReplicated",
            }
        },
    }


def create(client, name: str, channels: list, output: str, count: int = 1, **changes) -> None:
    client.create_training_job(
        **{
            "TrainingJobName": name,
            "RoleArn": "arn:aws:iam::000000000000:role/SageMakerRole",
            "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
            "HyperParameters": {"num_round": "20", "objective": "binary:logistic"},
            "InputDataConfig": channels,
            "OutputDataConfig": {"S3OutputPath": output},
            "ResourceConfig": {
                "InstanceType": "ml.m4.xlarge",
                "InstanceCount": count,
                "VolumeSizeInGB": 5,
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        }
        | changes
    )


def finished(client, name: str) -> dict[str, Any]:
    client.get_waiter("training_job_completed_or_stopped").wait(
        TrainingJobName=name, WaiterConfig=WAIT
    )
    described = client.describe_training_job(TrainingJobName=name)
    described.pop("ResponseMetadata")
    report = ParamValidator().validate(
        described, service_model().operation_model("DescribeTrainingJob").output_shape
    )
    assert not report.has_errors(), report.generate_report()  # SageMaker's shape, exactly
    return described


def metric(described: dict[str, Any], name: str) -> float:
    return {m["MetricName"]: m["Value"] for m in described["FinalMetricDataList"]}[name]


def booster_from(archive: bytes) -> xgb.Booster:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        raw = tar.extractfile("xgboost-model").read()
    booster = xgb.Booster()
    booster.load_model(bytearray(raw))  # open-source XGBoost, the format sniffed
    return booster


def synthetic(rows: int, seed: int, classes: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 6)).astype(np.float32)
    score = x[:, 0] + 0.5 * x[:, 1] - x[:, 2] + rng.normal(scale=0.5, size=rows)
    edges = np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1])
    label = np.digitize(score, edges).astype(np.float32)
    return pd.DataFrame(
        np.column_stack([label, x]), columns=["label", *(f"x{i}" for i in range(6))]
    )


def test_the_2017_demo_trains_on_two_instances_and_its_model_loads_in_xgboost(api, demo, capsys):
    s3 = boto3.client("s3")
    client, job, frames, bucket = api.client(), demo.job, demo.frames, f"s3://{demo.bucket}"
    name = demo.bucket
    described = finished(client, job)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    assert metric(described, "validation:auc") >= 0.76
    assert {"train:auc", "validation:error"} <= {
        m["MetricName"] for m in described["FinalMetricDataList"]
    }
    steps = [t["Status"] for t in described["SecondaryStatusTransitions"]]
    assert steps == ["Starting", "Downloading", "Training", "Uploading", "Completed"]
    assert all(t["StatusMessage"] for t in described["SecondaryStatusTransitions"])
    assert described["BillableTimeInSeconds"] == 2 * described["TrainingTimeInSeconds"] > 0
    assert described["OutputDataConfig"]["KmsKeyId"] == ""
    artifact = described["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifact == f"{bucket}/sagemaker/xgboost-dm/output/{job}/output/model.tar.gz"
    archive = s3.get_object(Bucket=name, Key=artifact.split("/", 3)[3])["Body"].read()
    booster = booster_from(archive)
    validation = frames["validation"].to_numpy(dtype=np.float32)
    scores = booster.inplace_predict(validation[:, 1:])
    assert classification_metrics(validation[:, 0], scores)["auc"] >= 0.76
    jobs = JobStore(api.store)  # the same record the skiff command and the pipeline use
    skiffs = XGBoostPredictor.load(jobs.manifest(job).model_url)
    np.testing.assert_array_equal(skiffs.predict(validation[:, 1:]), scores)
    log = jobs.log(job)
    assert "a LocalCluster of 2 workers" in log and "hyperparameter 'silent' ignored" in log
    streams = logs_client(api.url).describe_log_streams(  # what fit(logs=True) follows
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=f"{job}/"
    )["logStreams"]
    assert len(streams) == 2
    events = logs_client(api.url).get_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs",
        logStreamName=streams[0]["logStreamName"],
        startFromHead=True,
    )["events"]
    assert any(e["message"].startswith("[99] train-auc:") for e in events)
    assert cli.main(["--store", api.store.root, "jobs", "list"]) == 0
    assert job in capsys.readouterr().out
    tags = client.list_tags(ResourceArn=described["TrainingJobArn"])["Tags"]
    assert tags == [{"Key": "project", "Value": "bank-marketing"}]
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    def flow_runs() -> list:
        with get_client(sync_client=True) as prefect:
            return prefect.read_flow_runs(
                flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[job]))
            )

    # The run ends once its backend has released the cluster, just after the job.
    runs = wait_for(lambda: [r for r in flow_runs() if r.state.is_final()], 60, "the flow run")
    assert [r.name for r in runs] == [job] and runs[0].state.is_completed()


def test_file_channels_in_libsvm_and_parquet_with_no_s3(api, tmp_path):
    client = api.client()
    for channel, seed in (("train", 1), ("validation", 2)):
        frame = synthetic(600, seed)
        folder = tmp_path / "libsvm" / channel
        folder.mkdir(parents=True)
        for part, rows in enumerate(np.array_split(frame.to_numpy(), 2)):  # two objects
            lines = [
                f"{r[0]:g} " + " ".join(f"{i}:{v:.6g}" for i, v in enumerate(r[1:])) for r in rows
            ]
            (folder / f"part-{part}.libsvm").write_text("\n".join(lines) + "\n")
        (tmp_path / "parquet").mkdir(exist_ok=True)
        frame.to_parquet(tmp_path / "parquet" / f"{channel}.parquet")
    create(
        client,
        "libsvm-job",
        [
            s3_channel(c, f"file://{tmp_path}/libsvm/{c}/", "text/libsvm")
            for c in ("train", "validation")
        ],
        f"file://{tmp_path}/output",
    )
    parquet = [
        s3_channel(c, f"file://{tmp_path}/parquet/{c}.parquet", "application/x-parquet")
        for c in ("train", "validation")
    ]
    create(client, "parquet-job", parquet, f"file://{tmp_path}/output")
    with pytest.raises(ClientError) as again:  # the same name twice
        create(client, "parquet-job", parquet, f"file://{tmp_path}/output")
    assert again.value.response["Error"]["Code"] == "ResourceInUse"
    assert "already exists" in again.value.response["Error"]["Message"]
    for job in ("libsvm-job", "parquet-job"):
        described = finished(client, job)
        assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
        assert metric(described, "validation:auc") > 0.8
        booster = booster_from((tmp_path / "output" / job / "output/model.tar.gz").read_bytes())
        assert booster.num_features() == 6
    assert JobStore(api.store).manifest("parquet-job").features == [f"x{i}" for i in range(6)]


def test_a_multiclass_job_reports_its_own_metrics(api, tmp_path):
    client = api.client()
    for channel, seed in (("train", 3), ("validation", 4), ("test", 5)):
        synthetic(900, seed, classes=3).to_csv(
            tmp_path / f"{channel}.csv", index=False, header=False
        )
    create(
        client,
        "three-classes",
        [s3_channel(c, f"file://{tmp_path}/{c}.csv", "text/csv;label_size=1") for c in ("train", "validation", "test")],
        f"file://{tmp_path}/output",
        HyperParameters={"num_round": "15", "objective": "multi:softprob", "num_class": "3",
                         "eval_metric": "mlogloss,merror", "early_stopping_rounds": "5"},
    )  # fmt: skip
    described = finished(client, "three-classes")
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    names = {m["MetricName"] for m in described["FinalMetricDataList"]}
    assert {"validation:mlogloss", "validation:merror", "test:merror"} <= names
    assert metric(described, "validation:merror") < 0.4
    booster = booster_from((tmp_path / "output/three-classes/output/model.tar.gz").read_bytes())
    test = np.loadtxt(tmp_path / "test.csv", delimiter=",", dtype=np.float32)
    assert booster.inplace_predict(test[:, 1:]).shape == (900, 3)


def test_stopping_a_job_and_listing_jobs_page_by_page(api, tmp_path):
    client = api.client()
    synthetic(20_000, 6).to_csv(tmp_path / "train.csv", index=False, header=False)
    create(
        client,
        "stopped-job",
        [s3_channel("train", f"file://{tmp_path}/train.csv")],
        f"file://{tmp_path}/output",
        HyperParameters={"num_round": "10000", "max_depth": "8", "eta": "0.01"},
    )
    wait_for(
        lambda: (
            client.describe_training_job(TrainingJobName="stopped-job")["SecondaryStatus"]
            == "Training"
        ),
        120,
        "the job to train",
    )
    client.stop_training_job(TrainingJobName="stopped-job")
    assert client.describe_training_job(TrainingJobName="stopped-job")["TrainingJobStatus"] in (
        "Stopping",
        "Stopped",
    )
    described = finished(client, "stopped-job")
    assert described["TrainingJobStatus"] == "Stopped"
    assert [t["Status"] for t in described["SecondaryStatusTransitions"]][-2:] == [
        "Stopping",
        "Stopped",
    ]
    with pytest.raises(ClientError, match=r"the training job is in status Stopped"):
        client.stop_training_job(TrainingJobName="stopped-job")

    everything = client.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]
    pages = client.get_paginator("list_training_jobs").paginate(
        SortBy="Name", SortOrder="Descending", PaginationConfig={"PageSize": 1}
    )
    names = [s["TrainingJobName"] for page in pages for s in page["TrainingJobSummaries"]]
    assert names == sorted((s["TrainingJobName"] for s in everything), reverse=True)
    assert len(names) == len(set(names)) >= 2
    stopped = client.list_training_jobs(StatusEquals="Stopped")["TrainingJobSummaries"]
    assert [s["TrainingJobName"] for s in stopped] == ["stopped-job"]
    assert client.list_training_jobs(NameContains="STOPPED")["TrainingJobSummaries"] == stopped


def test_jobs_outlive_the_server_that_started_them(api, tmp_path):
    """Ctrl-C on ``skiff api`` stops the server, not its jobs; another server on the same
    store (a restarted one) finds them through their records."""
    synthetic(5_000, 7).to_csv(tmp_path / "train.csv", index=False, header=False)
    server, url = start_api(api.store, tmp_path / "second-api.log")
    create(
        sagemaker(url),
        "outlives-its-server",
        [s3_channel("train", f"file://{tmp_path}/train.csv")],
        f"file://{tmp_path}/output",
        HyperParameters={"num_round": "100"},
    )
    server.send_signal(signal.SIGINT)
    assert server.wait(timeout=30) is not None
    jobs = JobStore(api.store)
    wait_for(lambda: jobs.status("outlives-its-server").status.terminal, 180, "the job to end")
    described = finished(api.client(), "outlives-its-server")
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
