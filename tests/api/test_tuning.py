"""Tuning jobs through ``skiff api``, driven by boto3's SageMaker client with the companion
notebook's request (``hpo_xgboost_direct_marketing_sagemaker_APIs.ipynb``): real processes
(the server, the tuner's Prefect flow run, each trial's runner), the demo's data on S3 (moto)."""

from __future__ import annotations

import copy

import pytest
from botocore.exceptions import ClientError

from core.records.tuning import TuningStore
from tests.helpers import wait_for

pytestmark = pytest.mark.slow
IMAGE = "811284229777.dkr.ecr.us-east-1.amazonaws.com/xgboost:latest"  # the notebook's

# The notebook's tuning_job_config, as it is, but for 6 trials rather than 20 (CI's time).
TUNING_JOB_CONFIG = {
    "ParameterRanges": {
        "CategoricalParameterRanges": [],
        "ContinuousParameterRanges": [
            {"MaxValue": "1", "MinValue": "0", "Name": "eta"},
            {"MaxValue": "10", "MinValue": "1", "Name": "min_child_weight"},
            {"MaxValue": "2", "MinValue": "0", "Name": "alpha"},
        ],
        "IntegerParameterRanges": [{"MaxValue": "10", "MinValue": "1", "Name": "max_depth"}],
    },
    "ResourceLimits": {"MaxNumberOfTrainingJobs": 6, "MaxParallelTrainingJobs": 3},
    "Strategy": "Bayesian",
    "HyperParameterTuningJobObjective": {"MetricName": "validation:auc", "Type": "Maximize"},
}


def training_job_definition(bucket: str) -> dict:
    """The notebook's training_job_definition, on the demo's data."""
    prefix = "sagemaker/xgboost-dm"
    return {
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "InputDataConfig": [
            {
                "ChannelName": channel,
                "CompressionType": "None",
                "ContentType": "csv",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataDistributionType": "FullyReplicated",
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"s3://{bucket}/{prefix}/{channel}/",
                    }
                },
            }
            for channel in ("train", "validation")
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/{prefix}/output"},
        "ResourceConfig": {
            "InstanceCount": 1,
            "InstanceType": "ml.m4.xlarge",
            "VolumeSizeInGB": 10,
        },
        "RoleArn": "arn:aws:iam::000000000000:role/SageMakerRole",
        "StaticHyperParameters": {
            "eval_metric": "auc",
            "num_round": "100",
            "objective": "binary:logistic",
            "rate_drop": "0.3",
            "tweedie_variance_power": "1.4",
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 43200},
    }


def ended(client, name: str) -> dict:
    def over() -> dict | None:
        d = client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        return (
            d if d["HyperParameterTuningJobStatus"] in ("Completed", "Failed", "Stopped") else None
        )

    return wait_for(over, 600, f"tuning job {name} to end", every=1)


def test_the_companion_notebooks_tuning_job_runs_and_reads_as_sagemakers(api, demo):
    client = api.client()
    name = "xgboost-tuningjob-01-12-00-00"
    client.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig=TUNING_JOB_CONFIG,
        TrainingJobDefinition=training_job_definition(demo.bucket),
    )
    status = client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)[
        "HyperParameterTuningJobStatus"
    ]
    assert status == "InProgress"  # the notebook's check
    described = ended(client, name)
    assert described["HyperParameterTuningJobStatus"] == "Completed", described
    assert described["TrainingJobStatusCounters"] == {
        "Completed": 6, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 0, "Stopped": 0,
    }  # fmt: skip
    assert described["ObjectiveStatusCounters"] == {"Succeeded": 6, "Pending": 0, "Failed": 0}
    assert described["HyperParameterTuningJobConfig"] == TUNING_JOB_CONFIG
    best = described["BestTrainingJob"]
    assert set(best["TunedHyperParameters"]) == {"eta", "min_child_weight", "alpha", "max_depth"}
    objective = best["FinalHyperParameterTuningJobObjectiveMetric"]
    assert objective["MetricName"] == "validation:auc" and 0.7 < objective["Value"] < 1

    trials = client.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name
    )["TrainingJobSummaries"]
    values = [t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for t in trials]
    assert len(trials) == 6 and values == sorted(values, reverse=True)  # best first
    assert trials[0]["TrainingJobName"] == best["TrainingJobName"]
    page = client.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, MaxResults=4, SortBy="Name", SortOrder="Ascending"
    )
    assert len(page["TrainingJobSummaries"]) == 4 and page["NextToken"]

    job = client.describe_training_job(TrainingJobName=best["TrainingJobName"])
    assert job["TuningJobArn"] == described["HyperParameterTuningJobArn"]
    assert job["HyperParameters"]["num_round"] == "100"
    assert job["HyperParameters"]["max_depth"] == best["TunedHyperParameters"]["max_depth"]
    assert job["ModelArtifacts"]["S3ModelArtifacts"].endswith("/output/model.tar.gz")
    listed = client.list_hyper_parameter_tuning_jobs(NameContains="tuningjob-01")
    summary = listed["HyperParameterTuningJobSummaries"][0]
    assert summary["HyperParameterTuningJobName"] == name and summary["Strategy"] == "Bayesian"

    with pytest.raises(ClientError, match="in status Completed"):
        client.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    with pytest.raises(ClientError, match="already exists"):
        client.create_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=name,
            HyperParameterTuningJobConfig=TUNING_JOB_CONFIG,
            TrainingJobDefinition=training_job_definition(demo.bucket),
        )


def changed(path: str, value) -> dict:
    config = copy.deepcopy(TUNING_JOB_CONFIG)
    *parents, leaf = path.split(".")
    target = config
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[leaf] = value
    return config


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (changed("ParameterRanges.ContinuousParameterRanges.0.MaxValue", "2"),
         r"range eta \[0, 2\]: hyperparameter 'eta' = 2.0 is invalid"),
        (changed("ParameterRanges.IntegerParameterRanges.0.Name", "max_dept"),
         r"unknown hyperparameter\(s\) 'max_dept'"),
        (changed("Strategy", "Grid"), r"Strategy Grid is not supported by Skiff"),
        (changed("HyperParameterTuningJobObjective.MetricName", "validation:rmse"),
         r"the trials report validation:auc"),
        (changed("ParameterRanges.ContinuousParameterRanges.0.ScalingType", "Logarithmic"),
         r"eta.* is Logarithmic, so its low value must be above 0"),
    ],
)  # fmt: skip
def test_a_bad_tuning_request_is_refused_naming_what_is_wrong(api, config, message):
    client = api.client()
    with pytest.raises(ClientError, match=message) as caught:
        client.create_hyper_parameter_tuning_job(
            HyperParameterTuningJobName="refused",
            HyperParameterTuningJobConfig=config,
            TrainingJobDefinition=training_job_definition("unused-bucket"),
        )
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "refused" not in TuningStore(api.store).names()
    with pytest.raises(ClientError, match="Requested resource not found"):
        client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="refused")


def test_a_tuning_job_stopped_through_the_api_ends_stopped(api, demo):
    client = api.client()
    name = "stopped-tuning"
    client.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig=changed("ResourceLimits.MaxNumberOfTrainingJobs", 50),
        TrainingJobDefinition=training_job_definition(demo.bucket),
    )
    client.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    status = client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    assert status["HyperParameterTuningJobStatus"] in ("Stopping", "Stopped")
    described = ended(client, name)
    assert described["HyperParameterTuningJobStatus"] == "Stopped"
    counters = described["TrainingJobStatusCounters"]
    assert counters["InProgress"] == 0 and counters["Completed"] + counters["Stopped"] < 50
