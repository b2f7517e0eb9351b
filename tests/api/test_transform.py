"""Batch transform through ``skiff api``: the demo's model scores the demo's test rows on S3
(moto) with boto3's CreateTransformJob and its waiter, as SageMaker's own batch transform
examples ask it (the label first, dropped by ``$[1:]``, joined back by ``$[0,-1]``)."""

from __future__ import annotations

import boto3
import numpy as np
import pytest
from botocore.exceptions import ClientError

from serving.dataplane.answers import csv_scores
from serving.dataplane.loading import load_hosted

pytestmark = pytest.mark.slow
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
WAIT = {"Delay": 1, "MaxAttempts": 300}


def _request(name: str, model: str, bucket: str, **changes) -> dict:
    request = {
        "TransformJobName": name,
        "ModelName": model,
        "MaxPayloadInMB": 1,
        "BatchStrategy": "MultiRecord",
        "TransformInput": {
            "DataSource": {
                "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/batch/in/"}
            },
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        "TransformOutput": {"S3OutputPath": f"s3://{bucket}/batch/out/", "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        "DataProcessing": {
            "InputFilter": "$[1:]",
            "JoinSource": "Input",
            "OutputFilter": "$[0,-1]",
        },
    }
    return request | changes


def test_create_transform_job_and_its_waiter(api, demo):
    client, s3 = api.client(), boto3.client("s3")
    artifact = demo.described["ModelArtifacts"]["S3ModelArtifacts"]
    client.create_model(
        ModelName="batch-model",
        ExecutionRoleArn="arn:aws:iam::000000000000:role/SageMakerRole",
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": artifact},
    )
    test = demo.frames["test"]
    halves = {"part-1.csv": test[: len(test) // 2], "part-2.csv": test[len(test) // 2 :]}
    for key, frame in halves.items():
        body = frame.to_csv(index=False, header=False).encode()
        s3.put_object(Bucket=demo.bucket, Key=f"batch/in/{key}", Body=body)

    arn = client.create_transform_job(**_request("batch-1", "batch-model", demo.bucket))
    assert arn["TransformJobArn"].endswith(":transform-job/batch-1")
    client.get_waiter("transform_job_completed_or_stopped").wait(
        TransformJobName="batch-1", WaiterConfig=WAIT
    )
    described = client.describe_transform_job(TransformJobName="batch-1")
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    assert described["ModelName"] == "batch-model"
    assert described["DataProcessing"]["InputFilter"] == "$[1:]"
    assert described["TransformStartTime"] <= described["TransformEndTime"]

    model = load_hosted(api.store, "batch-model")
    for key, frame in halves.items():
        body = s3.get_object(Bucket=demo.bucket, Key=f"batch/out/{key}.out")["Body"].read()
        rows = frame.to_numpy(np.float32)
        scores = csv_scores(model.predict(np.ascontiguousarray(rows[:, 1:]))).split()
        labels = frame.iloc[:, 0].astype(str).tolist()
        assert body.decode().splitlines() == [
            f"{y},{s}" for y, s in zip(labels, scores, strict=True)
        ]

    listed = client.list_transform_jobs(NameContains="batch-")["TransformJobSummaries"]
    assert [(s["TransformJobName"], s["TransformJobStatus"]) for s in listed] == [
        ("batch-1", "Completed")
    ]
    with pytest.raises(ClientError, match="in status Completed"):
        client.stop_transform_job(TransformJobName="batch-1")
    with pytest.raises(ClientError, match="already exists"):
        client.create_transform_job(**_request("batch-1", "batch-model", demo.bucket))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"ModelName": "no-such-model"}, 'Could not find model "arn:aws:sagemaker:'),
        ({"DataProcessing": {"InputFilter": "$[1:"}}, "JSONPath '$[1:': cannot read"),
        ({"BatchStrategy": "SingleRecord", "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "ManifestFile", "S3Uri": "s3://b/m"}}}},
         "S3DataType ManifestFile is not supported by Skiff"),
        ({"ModelClientConfig": {"InvocationsTimeoutInSeconds": 60}, "DataCaptureConfig": {
            "DestinationS3Uri": "s3://b/c"}}, "DataCaptureConfig is not supported by Skiff"),
    ],
)  # fmt: skip
def test_bad_requests_are_named(api, demo, changes, message):
    client = api.client()
    with pytest.raises(ClientError, match="ValidationException") as caught:
        client.create_transform_job(**_request("refused", "batch-model", demo.bucket, **changes))
    assert message in str(caught.value)
    with pytest.raises(ClientError, match="ValidationException"):
        client.describe_transform_job(TransformJobName="refused")
