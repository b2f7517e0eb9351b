"""What the API says about jobs already in the store (made here directly, as the pipeline or
``skiff`` would, so no job runs): SageMaker's shapes, tags, stop requests, placement."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from botocore.validate import ParamValidator

from core.records.jobs import JobStore, TrainingJob
from flows.api.auth import read_credentials
from flows.api.launch import Placement
from flows.api.shapes import service_model
from tests.api.conftest import sagemaker


@pytest.fixture(scope="module")
def pending(quiet_store) -> str:
    job = TrainingJob(
        name="recorded-job",
        hyperparameters={"num_round": 10},
        channels={"train": "s3://b/train.parquet"},
        label="y",
        features=["a", "b"],
        output_url="s3://b/out",
    )
    JobStore(quiet_store).create(job)
    return job.name


def shaped(operation: str, answer: dict) -> dict:
    answer = {k: v for k, v in answer.items() if k != "ResponseMetadata"}
    shape = service_model().operation_model(operation).output_shape
    report = ParamValidator().validate(answer, shape)
    assert not report.has_errors(), report.generate_report()
    return answer


def test_a_recorded_job_reads_in_sagemakers_shape_and_stops(quiet_api, quiet_store, pending):
    client = sagemaker(quiet_api)
    described = shaped("DescribeTrainingJob", client.describe_training_job(TrainingJobName=pending))
    assert (described["TrainingJobStatus"], described["SecondaryStatus"]) == (
        "InProgress",
        "Starting",
    )
    assert described["HyperParameters"] == {"num_round": "10"}  # strings, as SageMaker's
    assert described["OutputDataConfig"]["KmsKeyId"] == ""
    assert described["SecondaryStatusTransitions"][0]["StatusMessage"]
    summaries = shaped("ListTrainingJobs", client.list_training_jobs())["TrainingJobSummaries"]
    assert [s["TrainingJobName"] for s in summaries] == [pending]
    client.stop_training_job(TrainingJobName=pending)  # its runner would stop it now
    assert client.describe_training_job(TrainingJobName=pending)["TrainingJobStatus"] == "Stopping"
    assert JobStore(quiet_store).stop_requested(pending)


def test_tags_are_added_listed_and_deleted(quiet_api, pending):
    client = sagemaker(quiet_api)
    arn = client.describe_training_job(TrainingJobName=pending)["TrainingJobArn"]
    assert arn == f"arn:aws:sagemaker:us-east-1:000000000000:training-job/{pending}"
    client.add_tags(ResourceArn=arn, Tags=[{"Key": f"k{i}", "Value": str(i)} for i in range(50)])
    client.add_tags(ResourceArn=arn, Tags=[{"Key": "k0", "Value": "again"}])  # replaces
    tags = client.list_tags(ResourceArn=arn)["Tags"]
    assert len(tags) == 50 and tags[0] == {"Key": "k0", "Value": "again"}
    with pytest.raises(ClientError) as over:
        client.add_tags(ResourceArn=arn, Tags=[{"Key": "one-more", "Value": ""}])
    assert over.value.response["Error"]["Code"] == "ResourceLimitExceeded"
    client.delete_tags(ResourceArn=arn, TagKeys=[f"k{i}" for i in range(1, 50)])
    assert client.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "k0", "Value": "again"}]
    with pytest.raises(ClientError, match=r"is not an ARN of this server"):
        client.list_tags(ResourceArn="arn:aws:sagemaker:eu-west-1:123456789012:training-job/x")


def test_where_a_job_is_placed():
    auto = Placement()
    assert auto.for_job("ml.m5.xlarge", 1)[:2] == ("local", {})
    backend, options, said = auto.for_job("ml.m5.xlarge", 512)
    assert backend == "dask" and options["workers"] < 512 and "capped at this machine's" in said
    cluster = Placement("dask", {"scheduler": "tcp://10.0.0.5:8786"})
    assert cluster.for_job("ml.m5.xlarge", 4)[:2] == ("dask", {"scheduler": "tcp://10.0.0.5:8786"})
    backend, options, _ = Placement("ec2").for_job("ml.c5.2xlarge", 3)
    assert (backend, options) == ("ec2", {"instance_type": "c5.2xlarge", "instance_count": 3})


def test_credentials_file(tmp_path):
    path = tmp_path / "keys.txt"
    path.write_text("# team keys\nAKIDONE = secret-one\nAKIDTWO=secret-two\n")
    assert read_credentials(path) == {"AKIDONE": "secret-one", "AKIDTWO": "secret-two"}
    path.write_text("AKIDONE secret-one\n")
    with pytest.raises(ValueError, match=r"line 1: expected 'access-key-id = secret'"):
        read_credentials(path)
