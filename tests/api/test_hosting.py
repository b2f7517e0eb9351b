"""Hosting through ``skiff api``: the demo's model behind an endpoint, invoked with boto3's
``sagemaker-runtime`` client on the API's own port, then deleted; and an endpoint whose model
cannot load. Real endpoint servers on loopback, boto3's waiters."""

from __future__ import annotations

import json
import threading

import boto3
import numpy as np
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, WaiterError

from algorithms.archive import archive_bytes
from algorithms.classification_metrics import classification_metrics
from flows import cli
from tests.api.test_records import shaped
from tests.helpers import wait_for

pytestmark = pytest.mark.slow
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
ARN = "arn:aws:sagemaker:us-east-1:000000000000"
WAIT = {"Delay": 1, "MaxAttempts": 120}


def runtime(url: str):
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )


def host(client, name: str, model_data_url: str, **config) -> None:
    """A model, a one-variant config (``config``: more of its fields) and an endpoint, all
    named ``name``."""
    client.create_model(
        ModelName=name,
        ExecutionRoleArn="arn:aws:iam::000000000000:role/SageMakerRole",
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": model_data_url},
    )
    variant = {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1,
               "InstanceType": "ml.m4.xlarge", "InitialVariantWeight": 1}  # fmt: skip
    client.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant], **config)
    client.create_endpoint(EndpointName=name, EndpointConfigName=name)


def test_the_demo_model_serves_through_the_runtime_and_is_deleted(api, demo, capsys):
    client, invoke = api.client(), runtime(api.url)
    artifact = demo.described["ModelArtifacts"]["S3ModelArtifacts"]
    capture = {
        "EnableCapture": True,
        "InitialSamplingPercentage": 100,
        "DestinationS3Uri": f"s3://{demo.bucket}/capture",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]},
    }
    host(client, "demo-endpoint", artifact, DataCaptureConfig=capture)
    client.get_waiter("endpoint_in_service").wait(EndpointName="demo-endpoint", WaiterConfig=WAIT)
    described = shaped("DescribeEndpoint", client.describe_endpoint(EndpointName="demo-endpoint"))
    assert described["EndpointConfigName"] == "demo-endpoint"
    assert described["DataCaptureConfig"]["CurrentSamplingPercentage"] == 100
    assert described["ProductionVariants"][0]["CurrentWeight"] == 1
    test = demo.frames["test"].to_numpy(dtype=np.float32)
    scores = []
    for start in range(0, len(test), 500):  # as the notebook did
        rows = "\n".join(",".join(f"{v:g}" for v in row) for row in test[start : start + 500, 1:])
        answer = invoke.invoke_endpoint(
            EndpointName="demo-endpoint", ContentType="text/csv", Body=rows
        )
        assert answer["InvokedProductionVariant"] == "AllTraffic"
        scores += [float(s) for s in answer["Body"].read().decode().split()]
    metrics = classification_metrics(test[:, 0], np.asarray(scores))
    assert metrics["auc"] >= 0.76 and metrics["error_rate"] <= 0.11, metrics
    with pytest.raises(ClientError) as bad:
        invoke.invoke_endpoint(EndpointName="demo-endpoint", ContentType="text/csv", Body="1,2")
    assert bad.value.response["Error"]["Code"] == "ValidationError"
    assert "expected" in bad.value.response["Error"]["Message"]  # the server's own words
    with pytest.raises(ClientError) as again:
        client.create_endpoint(EndpointName="demo-endpoint", EndpointConfigName="demo-endpoint")
    assert again.value.response["Error"]["Message"] == (
        f'Cannot create already existing endpoint "{ARN}:endpoint/demo-endpoint".'
    )
    assert cli.main(["--store", api.store.root, "endpoints", "list"]) == 0  # one store, three doors
    assert "demo-endpoint" in capsys.readouterr().out

    client.delete_endpoint(EndpointName="demo-endpoint")
    client.get_waiter("endpoint_deleted").wait(EndpointName="demo-endpoint", WaiterConfig=WAIT)
    with pytest.raises(ClientError) as gone:
        client.describe_endpoint(EndpointName="demo-endpoint")
    assert gone.value.response["Error"]["Message"] == (
        f'Could not find endpoint "{ARN}:endpoint/demo-endpoint".'
    )
    with pytest.raises(ClientError) as refused:
        invoke.invoke_endpoint(EndpointName="demo-endpoint", ContentType="text/csv", Body="1")
    assert refused.value.response["Error"]["Code"] == "ValidationError"

    # Data capture: each answered request, in SageMaker's format on S3, written by the stop.
    s3 = boto3.client("s3")
    listed = s3.list_objects_v2(Bucket=demo.bucket, Prefix="capture/demo-endpoint/AllTraffic/")
    records = [
        json.loads(line)
        for item in listed.get("Contents", [])
        for line in s3.get_object(Bucket=demo.bucket, Key=item["Key"])["Body"].read().splitlines()
    ]
    assert len(records) == len(range(0, len(test), 500))  # the bad request is not recorded
    first = records[0]["captureData"]
    assert first["endpointInput"]["encoding"] == "CSV"
    assert first["endpointInput"]["data"].count("\n") == 499
    assert first["endpointOutput"]["observedContentType"].startswith("text/csv")
    assert len(first["endpointOutput"]["data"].split()) == 500


def test_an_endpoint_whose_model_cannot_load_fails_saying_why(api, tmp_path):
    legacy = tmp_path / "model.tar.gz"
    legacy.write_bytes(archive_bytes(b"binf" + bytes(100) + b"gbtree"))  # XGBoost 1.x's format
    client = api.client()
    host(client, "legacy-endpoint", f"file://{legacy}")
    with pytest.raises(WaiterError):  # the waiter stops at Failed
        client.get_waiter("endpoint_in_service").wait(
            EndpointName="legacy-endpoint", WaiterConfig=WAIT
        )
    described = client.describe_endpoint(EndpointName="legacy-endpoint")
    assert described["EndpointStatus"] == "Failed"
    assert "legacy binary format" in described["FailureReason"]
    client.delete_endpoint(EndpointName="legacy-endpoint")


def invoke_until(
    stop: threading.Event, url: str, endpoint: str, row: str, seen: list, failed: list
):
    """Invoke ``endpoint`` until ``stop`` is set; record each answering variant or failure."""
    client = runtime(url)
    while not stop.is_set():
        try:
            answer = client.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=row)
            answer["Body"].read()
            seen.append(answer["InvokedProductionVariant"])
        except Exception as exc:
            failed.append(repr(exc))


def test_a_canary_update_under_load_and_weights_without_a_reload(api, demo, tmp_path):
    client = api.client()
    artifact = demo.described["ModelArtifacts"]["S3ModelArtifacts"]
    host(client, "canary-endpoint", artifact)
    client.get_waiter("endpoint_in_service").wait(EndpointName="canary-endpoint", WaiterConfig=WAIT)
    client.create_model(
        ModelName="canary-green",
        ExecutionRoleArn="arn:aws:iam::000000000000:role/SageMakerRole",
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": artifact},
    )
    two = [
        {"VariantName": "blue", "ModelName": "canary-endpoint", "InitialVariantWeight": 1},
        {"VariantName": "green", "ModelName": "canary-green", "InitialVariantWeight": 1},
    ]
    for v in two:
        v |= {"InitialInstanceCount": 1, "InstanceType": "ml.m4.xlarge"}
    client.create_endpoint_config(EndpointConfigName="two-variants", ProductionVariants=two)
    client.create_endpoint_config(EndpointConfigName="green-only", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "canary-green", "InitialInstanceCount": 1,
         "InstanceType": "ml.m4.xlarge"}])  # fmt: skip
    row = ",".join("0" for _ in range(demo.frames["test"].shape[1] - 1))
    stop, seen, failed = threading.Event(), [], []
    load = [
        threading.Thread(
            target=invoke_until, args=(stop, api.url, "canary-endpoint", row, seen, failed)
        )
        for _ in range(4)
    ]
    for thread in load:
        thread.start()
    try:
        canary = {"BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": "CANARY", "WaitIntervalInSeconds": 1,
                                            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 50}},
            "TerminationWaitInSeconds": 0},
            "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "skiff-5xx-rate-5"}]}}  # fmt: skip
        client.update_endpoint(
            EndpointName="canary-endpoint", EndpointConfigName="green-only", DeploymentConfig=canary
        )
        states = set()

        def settled() -> bool:
            status = client.describe_endpoint(EndpointName="canary-endpoint")["EndpointStatus"]
            states.add(status)
            return "Updating" in states and status == "InService"

        wait_for(settled, 120, "the canary update to finish", every=0.2)
    finally:
        stop.set()
        for thread in load:
            thread.join()
    assert not failed, failed[:3]  # zero failed requests during the update
    assert "Updating" in states and len(seen) > 20
    assert seen[-1] == "AllTraffic"  # green took its name when it took all the traffic
    described = client.describe_endpoint(EndpointName="canary-endpoint")
    assert described["EndpointConfigName"] == "green-only" and "FailureReason" not in described

    client.update_endpoint(EndpointName="canary-endpoint", EndpointConfigName="two-variants")
    wait_for(
        lambda: client.describe_endpoint(EndpointName="canary-endpoint")["EndpointStatus"] == "InService"
        and client.describe_endpoint(EndpointName="canary-endpoint")["EndpointConfigName"] == "two-variants",
        120, "the all-at-once update",
    )  # fmt: skip
    invoke = runtime(api.url)
    answers = [
        invoke.invoke_endpoint(EndpointName="canary-endpoint", ContentType="text/csv", Body=row)[
            "InvokedProductionVariant"
        ]
        for _ in range(200)
    ]
    assert abs(answers.count("blue") - 100) <= 28  # 4σ of a fair split of 200
    targeted = invoke.invoke_endpoint(
        EndpointName="canary-endpoint", ContentType="text/csv", Body=row, TargetVariant="green"
    )
    assert targeted["InvokedProductionVariant"] == "green"
    client.update_endpoint_weights_and_capacities(
        EndpointName="canary-endpoint",
        DesiredWeightsAndCapacities=[
            {"VariantName": "blue", "DesiredWeight": 0},
            {"VariantName": "green", "DesiredWeight": 1},
        ],
    )
    answers = [
        invoke.invoke_endpoint(EndpointName="canary-endpoint", ContentType="text/csv", Body=row)[
            "InvokedProductionVariant"
        ]
        for _ in range(50)
    ]
    assert set(answers) == {"green"}
    weights = {
        v["VariantName"]: v["CurrentWeight"]
        for v in client.describe_endpoint(EndpointName="canary-endpoint")["ProductionVariants"]
    }
    assert weights == {"blue": 0, "green": 1}
    # An update whose model cannot load is rolled back: the old variants serve on.
    legacy = tmp_path / "model.tar.gz"
    legacy.write_bytes(archive_bytes(b"binf" + bytes(100) + b"gbtree"))
    client.create_model(
        ModelName="canary-legacy",
        ExecutionRoleArn="arn:aws:iam::000000000000:role/SageMakerRole",
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": f"file://{legacy}"},
    )
    client.create_endpoint_config(EndpointConfigName="legacy-only", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "canary-legacy", "InitialInstanceCount": 1,
         "InstanceType": "ml.m4.xlarge"}])  # fmt: skip
    client.update_endpoint(EndpointName="canary-endpoint", EndpointConfigName="legacy-only")
    rolled_back = wait_for(
        lambda: (d := client.describe_endpoint(EndpointName="canary-endpoint"))["EndpointStatus"]
        == "InService" and d,
        120, "the failed update to be rolled back",
    )  # fmt: skip
    assert "legacy binary format" in rolled_back["FailureReason"]
    assert rolled_back["EndpointConfigName"] == "two-variants"
    answer = invoke.invoke_endpoint(
        EndpointName="canary-endpoint", ContentType="text/csv", Body=row
    )
    assert answer["InvokedProductionVariant"] == "green"
    with pytest.raises(ClientError, match=r"alarm 'my-cloudwatch-alarm' is not one of Skiff's"):
        client.update_endpoint(
            EndpointName="canary-endpoint", EndpointConfigName="green-only",
            DeploymentConfig={"AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "my-cloudwatch-alarm"}]}},
        )  # fmt: skip
    client.delete_endpoint(EndpointName="canary-endpoint")
