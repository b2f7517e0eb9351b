"""SageMaker's training-job operations over Skiff's job records: CreateTrainingJob (SageMaker's
built-in XGBoost contract) and StopTrainingJob here; DescribeTrainingJob and ListTrainingJobs
in ``training_reads``.

A job created here is the same record ``skiff jobs`` shows and the pipeline makes; the
SageMaker request is kept in it as given (``TrainingJob.request``), for what Skiff records
but does not enforce.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from algorithms.catalog import resolve_algorithm
from algorithms.channels import channel_format
from backends.catalog import backend_class
from core.errors import JobError, SkiffError
from core.records.jobs import JobStore, TrainingJob
from flows.api import tags
from flows.api.context import ApiContext
from flows.api.errors import in_use, invalid
from flows.api.launch import start_job
from flows.api.shapes import as_given, refuse_unsupported
from flows.api.training_reads import (
    CHANNELS,
    ENDED,
    KIND,
    describe_training_job,
    list_training_jobs,
    read_job,
    shown_status,
)

# SageMaker's XGBoost images, in any region: <account>.dkr.ecr.<region>.amazonaws.com/
# xgboost:latest (the 2017 demo's), sagemaker-xgboost:1.7-1, ...; or the bare name.
XGBOOST_IMAGE = re.compile(
    r"^(\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/)?(sagemaker-)?xgboost"
    r"(:[A-Za-z0-9._-]+)?(@sha256:[0-9a-f]{64})?$"
)
DEFAULT_MAX_RUNTIME = 86_400  # SageMaker's

HONOURED = frozenset({
    "TrainingJobName", "HyperParameters", "AlgorithmSpecification.TrainingImage",
    "InputDataConfig[].ChannelName", "InputDataConfig[].DataSource.S3DataSource.S3Uri",
    "InputDataConfig[].DataSource.S3DataSource.S3DataType", "InputDataConfig[].ContentType",
    "InputDataConfig[].CompressionType", "InputDataConfig[].RecordWrapperType",
    "OutputDataConfig.S3OutputPath", "OutputDataConfig.CompressionType",
    "ResourceConfig.InstanceType", "ResourceConfig.InstanceCount",
    "StoppingCondition.MaxRuntimeInSeconds", "Tags",
})  # fmt: skip
ACCEPTED = frozenset({
    "RoleArn", "AlgorithmSpecification.TrainingInputMode",
    "AlgorithmSpecification.EnableSageMakerMetricsTimeSeries",
    "AlgorithmSpecification.MetricDefinitions",
    "InputDataConfig[].InputMode", "InputDataConfig[].ShuffleConfig",
    "InputDataConfig[].DataSource.S3DataSource.S3DataDistributionType",
    "OutputDataConfig.KmsKeyId", "ResourceConfig.VolumeSizeInGB",
    "ResourceConfig.VolumeKmsKeyId", "ResourceConfig.KeepAlivePeriodInSeconds",
    "StoppingCondition.MaxWaitTimeInSeconds", "StoppingCondition.MaxPendingTimeInSeconds",
    "VpcConfig", "EnableNetworkIsolation", "EnableInterContainerTrafficEncryption",
    "EnableManagedSpotTraining", "CheckpointConfig", "DebugHookConfig",
    "DebugRuleConfigurations", "TensorBoardOutputConfig", "ExperimentConfig",
    "ProfilerConfig", "ProfilerRuleConfigurations", "Environment", "RetryStrategy",
    "RemoteDebugConfig", "InfraCheckConfig", "MlflowConfig",
})  # fmt: skip


def create_training_job(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    refuse_unsupported("CreateTrainingJob", p, HONOURED, ACCEPTED)
    name = p["TrainingJobName"]
    if len(p.get("Tags", [])) > tags.MAX_TAGS:
        raise invalid(f"Tags: at most {tags.MAX_TAGS} tags, {len(p['Tags'])} given")
    hyperparameters = dict(p.get("HyperParameters", {}))
    try:
        resolve_algorithm("xgboost").validate_hyperparameters(hyperparameters)
    except SkiffError as exc:
        raise invalid(str(exc)) from None
    job, placed = job_from_request(ctx, name, p, hyperparameters)
    jobs = JobStore(ctx.store)
    try:
        jobs.create(job, message=f"on {placed.where}")
    except JobError as exc:
        if "already exists" in str(exc):
            raise in_use(
                "Training job names must be unique within an AWS account and region, and a "
                f"training job with this name already exists ({ctx.arn(KIND, name)})"
            ) from None
        raise invalid(str(exc)) from None
    tags.save(ctx, KIND, name, p.get("Tags", []))
    start_job(ctx.store, name, placed.backend, placed.options, ctx.child_env)
    return {"TrainingJobArn": ctx.arn(KIND, name)}


@dataclass(frozen=True)
class Placed:
    """Where a job goes: the backend, its options, and a line for the job's log."""

    backend: str
    options: dict[str, Any]
    where: str


def job_from_request(
    ctx: ApiContext, name: str, p: dict[str, Any], hyperparameters: dict[str, Any]
) -> tuple[TrainingJob, Placed]:
    """The job a CreateTrainingJob request (or a tuning job's TrainingJobDefinition) asks
    for, named ``name``, with ``hyperparameters``; and where it runs.

    Raises:
        ApiError: ValidationException naming the field at fault.
    """
    image = p.get("AlgorithmSpecification", {}).get("TrainingImage")
    if not image:
        raise invalid(
            "AlgorithmSpecification.TrainingImage is required: Skiff runs SageMaker's "
            "built-in XGBoost images (AlgorithmName is not supported)"
        )
    if not XGBOOST_IMAGE.match(image):
        raise invalid(
            f"TrainingImage {image!r} is not one of SageMaker's XGBoost images: Skiff runs only "
            "those (e.g. <account>.dkr.ecr.<region>.amazonaws.com/sagemaker-xgboost:1.7-1); "
            "bring your own training code with Skiff's --algorithm package.module:Name"
        )
    channels, content_types = _channels(p.get("InputDataConfig", []))
    output = p["OutputDataConfig"]
    if output.get("CompressionType", "GZIP") != "GZIP":
        raise invalid("OutputDataConfig.CompressionType NONE is not supported: models are tar.gz")
    out_url = storage_url(output["S3OutputPath"], "OutputDataConfig.S3OutputPath").rstrip("/")
    resources = p.get("ResourceConfig", {})
    count = int(resources.get("InstanceCount", 1))
    backend, options, placed = ctx.placement.for_job(resources.get("InstanceType", ""), count)
    try:
        backend_class(backend).validate_options(**options)
    except SkiffError as exc:
        raise invalid(f"cannot place the job on the {backend} backend: {exc}") from None
    job = TrainingJob(
        name=name,
        algorithm="xgboost",
        hyperparameters=hyperparameters,
        channels=channels,
        content_types=content_types,
        label="label",
        features=[],
        output_url=f"{out_url}/{name}/output",
        artifact_url=f"{out_url}/{name}/output/model.tar.gz",
        backend=backend,
        max_runtime_seconds=p.get("StoppingCondition", {}).get(
            "MaxRuntimeInSeconds", DEFAULT_MAX_RUNTIME
        ),
        request=as_given(p),
    )
    return job, Placed(backend, options, placed)


def storage_url(url: str, field: str) -> str:
    """``url`` if SageMaker's code may name it (s3://, or file:// as its local mode allows).

    Raises:
        ApiError: another kind of URL, naming the field.
    """
    if not url.startswith(("s3://", "file://")):
        raise invalid(f"{field} {url!r} must be an s3:// or a file:// URL")
    return url


def _channels(config: list[dict[str, Any]]) -> tuple[dict[str, str], dict[str, str]]:
    channels: dict[str, str] = {}
    content_types: dict[str, str] = {}
    for channel in config:
        name = channel["ChannelName"]
        if name not in CHANNELS:
            raise invalid(f"channel {name!r}: SageMaker's XGBoost reads {', '.join(CHANNELS)}")
        if name in channels:
            raise invalid(f"channel {name!r} is given twice")
        source = channel.get("DataSource", {}).get("S3DataSource")
        if not source:
            raise invalid(f"channel {name!r} needs DataSource.S3DataSource")
        if source.get("S3DataType", "S3Prefix") != "S3Prefix":
            raise invalid(
                f"channel {name!r}: S3DataType {source['S3DataType']} is not supported (S3Prefix)"
            )
        for field, none in (("CompressionType", "None"), ("RecordWrapperType", "None")):
            if channel.get(field, none) != none:
                raise invalid(f"channel {name!r}: {field} {channel[field]} is not supported")
        content_type = channel.get("ContentType", "text/libsvm")
        try:
            channel_format(content_type)
        except SkiffError as exc:
            raise invalid(f"channel {name!r}: {exc}") from None
        channels[name] = storage_url(source["S3Uri"], f"channel {name!r} S3Uri")
        content_types[name] = content_type
    if "train" not in channels:
        raise invalid("InputDataConfig needs a 'train' channel")
    return channels, content_types


def stop_training_job(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    name = p["TrainingJobName"]
    _, status = read_job(ctx, name)
    jobs = JobStore(ctx.store)
    primary, _, _ = shown_status(jobs, status)
    if primary in ENDED:
        raise invalid(f"The request was rejected because the training job is in status {primary}.")
    jobs.request_stop(name)
    return {}


OPERATIONS = {
    "CreateTrainingJob": create_training_job,
    "DescribeTrainingJob": describe_training_job,
    "StopTrainingJob": stop_training_job,
    "ListTrainingJobs": list_training_jobs,
}
