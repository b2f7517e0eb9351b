"""Hosting through ``skiff api``: the demo's model behind an endpoint, invoked with boto3's
``sagemaker-runtime`` client on the API's own port, then deleted; and an endpoint whose model
cannot load. Real endpoint servers on loopback, boto3's waiters."""

from __future__ import annotations

import boto3
import numpy as np
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, WaiterError

from algorithms.archive import archive_bytes
from algorithms.classification_metrics import classification_metrics
from flows import cli
from tests.api.test_records import shaped

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


def host(client, name: str, model_data_url: str) -> None:
    """A model, a one-variant config and an endpoint, all named ``name``."""
    client.create_model(
        ModelName=name,
        ExecutionRoleArn="arn:aws:iam::000000000000:role/SageMakerRole",
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": model_data_url},
    )
    variant = {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1,
               "InstanceType": "ml.m4.xlarge", "InitialVariantWeight": 1}  # fmt: skip
    client.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant])
    client.create_endpoint(EndpointName=name, EndpointConfigName=name)


def test_the_demo_model_serves_through_the_runtime_and_is_deleted(api, demo, capsys):
    client, invoke = api.client(), runtime(api.url)
    artifact = demo.described["ModelArtifacts"]["S3ModelArtifacts"]
    host(client, "demo-endpoint", artifact)
    client.get_waiter("endpoint_in_service").wait(EndpointName="demo-endpoint", WaiterConfig=WAIT)
    described = shaped("DescribeEndpoint", client.describe_endpoint(EndpointName="demo-endpoint"))
    assert described["EndpointConfigName"] == "demo-endpoint"
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
