"""A training job's log as SageMaker code follows it: CloudWatch Logs' DescribeLogStreams and
GetLogEvents on ``skiff api``'s port, through boto3's own ``logs`` client, read as the SDK's
``fit(logs=True)`` reads them."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from core.records.jobs import JobStore, TrainingJob

GROUP = "/aws/sagemaker/TrainingJobs"


def logs_client(url: str):
    return boto3.client(
        "logs", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
        aws_secret_access_key="testing", config=Config(retries={"max_attempts": 1}),
    )  # fmt: skip


@pytest.fixture(scope="module")
def logged(quiet_store) -> str:
    job = TrainingJob(
        name="logged-job",
        channels={"train": "s3://b/train.csv"},
        label="label",
        features=[],
        output_url="s3://b/out",
        request={"ResourceConfig": {"InstanceCount": 2}},
    )
    jobs = JobStore(quiet_store)
    jobs.create(job)
    lines = [
        f"2026-12-02T01:00:{i:02d}.000+00:00 [{i * 10}] validation-auc:0.{70 + i}"
        for i in range(25)
    ]
    jobs.write_log(job.name, "\n".join(lines) + "\n")
    return job.name


def test_a_job_has_a_stream_per_instance_and_its_log_reads_page_by_page(quiet_api, logged):
    client = logs_client(quiet_api)
    streams = client.describe_log_streams(
        logGroupName=GROUP, logStreamNamePrefix=f"{logged}/", orderBy="LogStreamName", limit=2
    )["logStreams"]
    names = [s["logStreamName"] for s in streams]
    assert len(names) == 2 and names[0].startswith(f"{logged}/algo-1-")
    assert names[1].startswith(f"{logged}/algo-2-")
    messages, token = [], None
    while True:  # as the SDK: until a page comes back empty
        page = client.get_log_events(
            logGroupName=GROUP, logStreamName=names[0], startFromHead=True, limit=10,
            **({"nextToken": token} if token else {}),
        )  # fmt: skip
        if not page["events"]:
            break
        messages += [e["message"] for e in page["events"]]
        token = page["nextForwardToken"]
    assert messages[0] == "[0] validation-auc:0.70" and messages[-1] == "[240] validation-auc:0.94"
    assert len(messages) == 25
    assert client.get_log_events(logGroupName=GROUP, logStreamName=names[1])["events"] == []
    assert (
        client.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix="nobody/")["logStreams"]
        == []
    )  # a job not created yet has no streams: the SDK waits


def test_unknown_groups_and_streams_are_cloudwatchs_errors(quiet_api, logged):
    client = logs_client(quiet_api)
    for call, request, what in (
        (client.describe_log_streams, {"logGroupName": "/aws/other"}, "group"),
        (
            client.get_log_events,
            {"logGroupName": GROUP, "logStreamName": f"{logged}/algo-9-1"},
            "stream",
        ),
        (
            client.get_log_events,
            {"logGroupName": GROUP, "logStreamName": "nobody/algo-1-1"},
            "stream",
        ),
    ):
        with pytest.raises(ClientError) as caught:
            call(**request)
        assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
        assert (
            caught.value.response["Error"]["Message"] == f"The specified log {what} does not exist."
        )
