"""SageMaker's training-job operations over Skiff's job records: CreateTrainingJob (SageMaker's
built-in XGBoost contract), DescribeTrainingJob, StopTrainingJob, ListTrainingJobs.

A job created here is the same record ``skiff jobs`` shows and the pipeline makes; the
SageMaker request is kept in it as given (``TrainingJob.request``), for what Skiff records
but does not enforce.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime
from typing import Any

from algorithms.channels import channel_format
from backends.catalog import backend_class
from core.errors import JobError, SkiffError
from core.records.jobs import JobStatus, JobStore, Secondary, Status, TrainingJob
from flows.api import tags
from flows.api.context import ApiContext
from flows.api.errors import in_use, invalid, not_found
from flows.api.launch import start_job
from flows.api.shapes import epoch, refuse_unsupported

KIND = "training-job"
# SageMaker's XGBoost images, in any region: <account>.dkr.ecr.<region>.amazonaws.com/
# xgboost:latest (the 2017 demo's), sagemaker-xgboost:1.7-1, ...; or the bare name.
XGBOOST_IMAGE = re.compile(
    r"^(\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/)?(sagemaker-)?xgboost"
    r"(:[A-Za-z0-9._-]+)?(@sha256:[0-9a-f]{64})?$"
)
CHANNELS = ("train", "validation", "test")
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
# What the SageMaker console and SDKs print for each step (Skiff's own words follow).
STEP_TEXT = {
    Secondary.STARTING: "Preparing the instances for training",
    Secondary.DOWNLOADING: "Downloading input data",
    Secondary.TRAINING: "Training in progress",
    Secondary.UPLOADING: "Uploading generated training model",
    Secondary.STOPPING: "Stopping the training job",
    Secondary.COMPLETED: "Training job completed",
    Secondary.FAILED: "Training job failed",
    Secondary.STOPPED: "Training job stopped",
    Secondary.MAX_RUNTIME_EXCEEDED: "Training job stopped: it ran past MaxRuntimeInSeconds",
}


def create_training_job(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    refuse_unsupported("CreateTrainingJob", p, HONOURED, ACCEPTED)
    name = p["TrainingJobName"]
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
    if len(p.get("Tags", [])) > tags.MAX_TAGS:
        raise invalid(f"Tags: at most {tags.MAX_TAGS} tags, {len(p['Tags'])} given")
    channels, content_types = _channels(p.get("InputDataConfig", []))
    output = p["OutputDataConfig"]
    if output.get("CompressionType", "GZIP") != "GZIP":
        raise invalid("OutputDataConfig.CompressionType NONE is not supported: models are tar.gz")
    out_url = _url(output["S3OutputPath"], "OutputDataConfig.S3OutputPath").rstrip("/")
    hyperparameters = dict(p.get("HyperParameters", {}))
    try:
        from algorithms.catalog import resolve_algorithm

        resolve_algorithm("xgboost").validate_hyperparameters(hyperparameters)
    except SkiffError as exc:
        raise invalid(str(exc)) from None
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
        request=json.loads(json.dumps(p, default=str)),
    )
    jobs = JobStore(ctx.store)
    try:
        jobs.create(job, message=f"on {placed}")
    except JobError as exc:
        if "already exists" in str(exc):
            raise in_use(
                "Training job names must be unique within an AWS account and region, and a "
                f"training job with this name already exists ({ctx.arn(KIND, name)})"
            ) from None
        raise invalid(str(exc)) from None
    tags.save(ctx, KIND, name, p.get("Tags", []))
    start_job(ctx.store, name, backend, options, ctx.child_env)
    return {"TrainingJobArn": ctx.arn(KIND, name)}


def _url(url: str, field: str) -> str:
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
        channels[name] = _url(source["S3Uri"], f"channel {name!r} S3Uri")
        content_types[name] = content_type
    if "train" not in channels:
        raise invalid("InputDataConfig needs a 'train' channel")
    return channels, content_types


def _read(ctx: ApiContext, name: str) -> tuple[TrainingJob, JobStatus]:
    jobs = JobStore(ctx.store)
    try:
        return jobs.spec(name), jobs.status(name)
    except JobError:
        raise not_found() from None


def shown_status(jobs: JobStore, status: JobStatus) -> tuple[str, str, str | None]:
    """(TrainingJobStatus, SecondaryStatus, FailureReason) as SageMaker says them: a job not
    yet started is InProgress/Starting; one asked to stop is Stopping at once; a lost one
    (its runner's heartbeat stopped) Failed."""
    if lost := jobs.lost(status):
        return "Failed", "Failed", f"the job is lost: {lost}"
    if not status.status.terminal and jobs.stop_requested(status.name):
        return "Stopping", "Stopping", None
    if status.status == Status.PENDING:
        return "InProgress", "Starting", None
    reason = status.failure_reason if status.status == Status.FAILED else None
    return str(status.status), str(status.secondary_status), reason


def _transitions(status: JobStatus, secondary: str) -> list[dict[str, Any]]:
    """Skiff's transitions as SageMaker's: one per secondary status, each ended by the next."""
    steps: list[dict[str, Any]] = []
    for t in status.transitions:
        words = STEP_TEXT.get(t.secondary_status, str(t.secondary_status))
        own = t.message if t.message and not t.message.startswith("{") else ""
        message = f"{words} ({own})" if own else words
        if steps and steps[-1]["Status"] == t.secondary_status:
            steps[-1]["StatusMessage"] = message
            continue
        if steps:
            steps[-1]["EndTime"] = epoch(t.at)
        steps.append({"Status": str(t.secondary_status), "StartTime": epoch(t.at)})
        steps[-1]["StatusMessage"] = message
    if secondary == "Stopping" and (not steps or steps[-1]["Status"] != "Stopping"):
        steps.append({"Status": "Stopping", "StartTime": epoch(datetime.now().astimezone())})
        steps[-1]["StatusMessage"] = STEP_TEXT[Secondary.STOPPING]
    if steps and status.status.terminal:
        steps[-1]["EndTime"] = steps[-1]["StartTime"]
    return steps


def _metrics(status: JobStatus, at: float | None) -> list[dict[str, Any]]:
    """``validation_auc`` → ``validation:auc``; Skiff's own derived figures (``_error_rate``)
    are not XGBoost's eval metrics, and are left out."""
    found = []
    for key, value in sorted(status.metrics.items()):
        channel, _, metric = key.partition("_")
        if channel in CHANNELS and metric and metric != "error_rate":
            found.append({"MetricName": f"{channel}:{metric}", "Value": value, "Timestamp": at})
    return found


def describe_training_job(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    spec, status = _read(ctx, p["TrainingJobName"])
    if spec.request is None:  # a job of the pipeline or the skiff command: what it has
        request: dict[str, Any] = {
            "HyperParameters": {k: str(v) for k, v in spec.hyperparameters.items()}
        }
    else:
        request = dict(spec.request)
    jobs = JobStore(ctx.store)
    primary, secondary, reason = shown_status(jobs, status)
    steps = _transitions(status, secondary)
    started = next(
        (epoch(t.at) for t in status.transitions if t.status == Status.IN_PROGRESS), None
    )
    ended = epoch(status.ended_at) if primary in ("Completed", "Failed", "Stopped") else None
    resources = {"InstanceCount": 1, "VolumeSizeInGB": 30} | request.get("ResourceConfig", {})
    resources.setdefault("InstanceType", "ml.m5.xlarge")
    output = {"KmsKeyId": ""} | request.get("OutputDataConfig", {"S3OutputPath": spec.output_url})
    answer: dict[str, Any] = {
        k: v
        for k, v in request.items()
        if k not in ("TrainingJobName", "Tags", "ResourceConfig", "OutputDataConfig")
        # RoleArn and the rest as given (a job made by the pipeline has none)
    }
    answer |= {
        "TrainingJobName": spec.name,
        "TrainingJobArn": ctx.arn(KIND, spec.name),
        "ModelArtifacts": {"S3ModelArtifacts": spec.artifact_url or status.model_url or ""},
        "TrainingJobStatus": primary,
        "SecondaryStatus": secondary,
        "HyperParameters": request.get("HyperParameters", {}),
        "AlgorithmSpecification": request.get(
            "AlgorithmSpecification", {"TrainingImage": spec.algorithm, "TrainingInputMode": "File"}
        ),
        "OutputDataConfig": output,
        "ResourceConfig": resources,
        "StoppingCondition": {"MaxRuntimeInSeconds": int(spec.max_runtime_seconds)}
        | request.get("StoppingCondition", {}),
        "CreationTime": epoch(spec.created_at),
        "LastModifiedTime": steps[-1]["StartTime"] if steps else epoch(spec.created_at),
        "SecondaryStatusTransitions": steps,
        "FinalMetricDataList": _metrics(status, ended),
        "EnableNetworkIsolation": request.get("EnableNetworkIsolation", False),
        "EnableInterContainerTrafficEncryption": request.get(
            "EnableInterContainerTrafficEncryption", False
        ),
        "EnableManagedSpotTraining": request.get("EnableManagedSpotTraining", False),
    }
    if reason:
        answer["FailureReason"] = reason
    if started is not None:
        answer["TrainingStartTime"] = started
    if ended is not None:
        answer["TrainingEndTime"] = ended
        seconds = max(round(ended - (started or ended)), 1 if started else 0)
        answer["TrainingTimeInSeconds"] = seconds
        answer["BillableTimeInSeconds"] = seconds * int(resources["InstanceCount"])
    return answer


def stop_training_job(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    name = p["TrainingJobName"]
    _, status = _read(ctx, name)
    jobs = JobStore(ctx.store)
    primary, _, _ = shown_status(jobs, status)
    if primary in ("Completed", "Failed", "Stopped"):
        raise invalid(f"The request was rejected because the training job is in status {primary}.")
    jobs.request_stop(name)
    return {}


SORT_KEYS = {
    "Name": lambda s: s["TrainingJobName"],
    "CreationTime": lambda s: s["CreationTime"],
    "Status": lambda s: s["TrainingJobStatus"],
}


def list_training_jobs(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    for unsupported in ("WarmPoolStatusEquals", "TrainingPlanArnEquals"):
        if unsupported in p:
            raise invalid(f"ListTrainingJobs: {unsupported} is not supported by Skiff")
    jobs = JobStore(ctx.store)
    summaries = []
    for name in jobs.names():
        try:
            spec, status = jobs.spec(name), jobs.status(name)
        except SkiffError:  # a job still being created, or damaged: not listable
            continue
        summary = _summary(ctx, jobs, spec, status)
        if _wanted(summary, p):
            summaries.append(summary)
    summaries.sort(
        key=SORT_KEYS[p.get("SortBy", "CreationTime")],
        reverse=p.get("SortOrder", "Ascending") == "Descending",
    )
    start = _offset(p.get("NextToken"))
    size = p.get("MaxResults", 10)
    page = summaries[start : start + size]
    answer: dict[str, Any] = {"TrainingJobSummaries": page}
    if start + size < len(summaries):
        answer["NextToken"] = base64.urlsafe_b64encode(
            json.dumps({"offset": start + size}).encode()
        ).decode()
    return answer


def _summary(ctx: ApiContext, jobs: JobStore, spec: TrainingJob, status: JobStatus) -> dict:
    primary, secondary, _ = shown_status(jobs, status)
    summary = {
        "TrainingJobName": spec.name,
        "TrainingJobArn": ctx.arn(KIND, spec.name),
        "CreationTime": epoch(spec.created_at),
        "TrainingJobStatus": primary,
        "SecondaryStatus": secondary,
        "LastModifiedTime": epoch(
            status.transitions[-1].at if status.transitions else spec.created_at
        ),
    }
    if primary in ("Completed", "Failed", "Stopped") and status.ended_at:
        summary["TrainingEndTime"] = epoch(status.ended_at)
    return summary


def _wanted(summary: dict[str, Any], p: dict[str, Any]) -> bool:
    created, modified = summary["CreationTime"], summary["LastModifiedTime"]
    checks = (
        ("CreationTimeAfter", lambda t: created > t.timestamp()),
        ("CreationTimeBefore", lambda t: created < t.timestamp()),
        ("LastModifiedTimeAfter", lambda t: modified > t.timestamp()),
        ("LastModifiedTimeBefore", lambda t: modified < t.timestamp()),
        ("NameContains", lambda s: s.lower() in summary["TrainingJobName"].lower()),
        ("StatusEquals", lambda s: summary["TrainingJobStatus"] == s),
    )
    return all(check(p[key]) for key, check in checks if key in p)


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
    except (ValueError, KeyError, TypeError):
        raise invalid(f"NextToken {token!r} is not one this server gave") from None


OPERATIONS = {
    "CreateTrainingJob": create_training_job,
    "DescribeTrainingJob": describe_training_job,
    "StopTrainingJob": stop_training_job,
    "ListTrainingJobs": list_training_jobs,
}
