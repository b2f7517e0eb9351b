"""What SageMaker code sees when it gets something wrong: SageMaker's error codes and wording,
through boto3's own client, and never a 500. No job starts here."""

from __future__ import annotations

import subprocess
import sys

import pytest
from botocore.exceptions import ClientError, WaiterError

from tests.api.conftest import CREDENTIALS, sagemaker
from tests.helpers import ROOT

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


def job_request(**changes):
    """A valid CreateTrainingJob request, as the SageMaker SDK sends it, with ``changes``."""
    request = {
        "TrainingJobName": "never-runs",
        "RoleArn": "arn:aws:iam::000000000000:role/SageMakerRole",
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "HyperParameters": {"num_round": "10", "objective": "binary:logistic"},
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "ContentType": "csv",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": "s3://bucket/train/",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/output"},
        "ResourceConfig": {
            "InstanceType": "ml.m5.xlarge",
            "InstanceCount": 1,
            "VolumeSizeInGB": 30,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
        "DebugHookConfig": {"S3OutputPath": "s3://bucket/debug", "CollectionConfigurations": []},
        "ProfilerConfig": {"S3OutputPath": "s3://bucket/profiler", "DisableProfiler": False},
    }
    return request | changes


def channel(name, content_type="csv", **source):
    return {
        "ChannelName": name,
        "ContentType": content_type,
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/x"} | source},
    }


def refused(client, call, **request):
    with pytest.raises(ClientError) as caught:
        getattr(client, call)(**request)
    error = caught.value.response["Error"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return error["Code"], error["Message"]


def test_a_missing_job_is_sagemakers_validation_exception(quiet_api):
    client = sagemaker(quiet_api)
    for call in ("describe_training_job", "stop_training_job"):
        assert refused(client, call, TrainingJobName="nope") == (
            "ValidationException",
            "Requested resource not found.",
        )
    with pytest.raises(WaiterError, match="ValidationException"):  # the waiter gives up at once
        client.get_waiter("training_job_completed_or_stopped").wait(
            TrainingJobName="nope", WaiterConfig={"Delay": 1, "MaxAttempts": 3}
        )
    arn = "arn:aws:sagemaker:us-east-1:000000000000:training-job/nope"
    assert refused(client, "list_tags", ResourceArn=arn)[0] == "ValidationException"


@pytest.mark.parametrize(
    ("changes", "wording"),
    [
        ({"AlgorithmSpecification": {"TrainingImage": "me/my-image:1", "TrainingInputMode": "File"}},
         "TrainingImage 'me/my-image:1' is not one of SageMaker's XGBoost images"),
        ({"HyperParameters": {"max_depth": "deep"}},
         "hyperparameter 'max_depth' = 'deep' is invalid: must be an integer in [0, 30]"),
        ({"HyperParameters": {"num_rounds": "10"}}, "unknown hyperparameter(s) 'num_rounds'"),
        ({"HyperParameters": {"objective": "multi:softprob"}}, "needs num_class"),
        ({"InputDataConfig": [channel("train", "application/x-recordio-protobuf")]},
         "RecordIO-protobuf is not supported"),
        ({"InputDataConfig": [channel("validation")]}, "InputDataConfig needs a 'train' channel"),
        ({"InputDataConfig": [channel("train", S3DataType="ManifestFile")]},
         "S3DataType ManifestFile is not supported"),
        ({"InputDataConfig": [{"ChannelName": "train", "DataSource": {"FileSystemDataSource": {
            "FileSystemId": "fs-12345678", "FileSystemAccessMode": "ro", "FileSystemType": "EFS",
            "DirectoryPath": "/train"}}}]},
         "InputDataConfig[].DataSource.FileSystemDataSource is not supported by Skiff"),
        ({"InputDataConfig": [channel("train") | {"CompressionType": "Gzip"}]},
         "CompressionType Gzip is not supported"),
        ({"InputDataConfig": [channel("extra")]}, "channel 'extra': SageMaker's XGBoost reads"),
        ({"ServerlessJobConfig": {"BaseModelArn": "arn:aws:sagemaker:us-east-1:aws:hub-content/Hub/Model/llama/1.0.0", "JobType": "FineTuning"}},
         "ServerlessJobConfig is not supported by Skiff"),
        ({"TrainingJobName": "under_score"},
         "Value 'under_score' at 'trainingJobName' failed to satisfy constraint: Member must "
         "satisfy regular expression pattern"),
        ({"OutputDataConfig": {"S3OutputPath": "https://example.com/out"}},
         "must be an s3:// or a file:// URL"),
        ({"ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1,
                             "VolumeSizeInGB": 30, "InstanceGroups": []}},
         "ResourceConfig.InstanceGroups is not supported by Skiff"),
    ],
)  # fmt: skip
def test_a_wrong_request_is_refused_naming_what_is_wrong(quiet_api, changes, wording):
    code, message = refused(sagemaker(quiet_api), "create_training_job", **job_request(**changes))
    assert code == "ValidationException" and wording in message, message


def test_nothing_is_recorded_for_a_refused_job(quiet_api):
    client = sagemaker(quiet_api)
    refused(client, "create_training_job", **job_request(HyperParameters={"eta": "2"}))
    assert client.list_training_jobs()["TrainingJobSummaries"] == []


def test_an_operation_skiff_does_not_have_is_named(quiet_api):
    code, message = refused(sagemaker(quiet_api), "describe_labeling_job", LabelingJobName="x")
    assert code == "ValidationException"
    assert "DescribeLabelingJob is not supported by Skiff; supported: AddTags" in message


def test_a_list_filter_skiff_cannot_apply_is_refused(quiet_api):
    _, message = refused(sagemaker(quiet_api), "list_training_jobs", WarmPoolStatusEquals="Reused")
    assert "WarmPoolStatusEquals is not supported by Skiff" in message
    _, message = refused(sagemaker(quiet_api), "list_training_jobs", NextToken="forged")
    assert "NextToken 'forged' is not one this server gave" in message


def test_signatures_are_checked_with_credentials(signed_api):
    ((key, secret),) = CREDENTIALS.items()
    assert sagemaker(signed_api, key, secret).list_training_jobs()["TrainingJobSummaries"] == []
    with pytest.raises(ClientError) as wrong:
        sagemaker(signed_api, key, "a-wrong-secret").list_training_jobs()
    assert wrong.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert "does not match the signature you provided" in wrong.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as unknown:
        sagemaker(signed_api, "AKIDNOBODY", secret).list_training_jobs()
    assert unknown.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_serving_beyond_loopback_needs_credentials(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "--store", str(tmp_path), "api", "--host", "0.0.0.0"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert "refusing to serve on 0.0.0.0 without --credentials" in done.stderr
