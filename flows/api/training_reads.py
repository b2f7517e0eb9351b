"""How a training job's record reads in SageMaker's words: DescribeTrainingJob and
ListTrainingJobs (statuses, secondary-status transitions, final metrics, times, pages)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.errors import JobError, SkiffError
from core.records.jobs import JobStatus, JobStore, Secondary, Status, TrainingJob
from flows.api.context import ApiContext
from flows.api.errors import invalid, not_found
from flows.api.pages import page, wanted
from flows.api.shapes import epoch

KIND = "training-job"
CHANNELS = ("train", "validation", "test")
ENDED = ("Completed", "Failed", "Stopped")

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


def read_job(ctx: ApiContext, name: str) -> tuple[TrainingJob, JobStatus]:
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
    spec, status = read_job(ctx, p["TrainingJobName"])
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
    ended = epoch(status.ended_at) if primary in ENDED else None
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
    if spec.tuning_job:  # a trial: the values it was given, and its tuning job
        answer["HyperParameters"] = {k: str(v) for k, v in spec.hyperparameters.items()}
        answer["TuningJobArn"] = ctx.arn("hyper-parameter-tuning-job", spec.tuning_job)
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
    found, token = page(summaries, p, SORT_KEYS)
    return {"TrainingJobSummaries": found} | ({"NextToken": token} if token else {})


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
    if primary in ENDED and status.ended_at:
        summary["TrainingEndTime"] = epoch(status.ended_at)
    return summary


def _wanted(summary: dict[str, Any], p: dict[str, Any]) -> bool:
    modified = summary["LastModifiedTime"]
    checks = (
        ("LastModifiedTimeAfter", lambda t: modified > t.timestamp()),
        ("LastModifiedTimeBefore", lambda t: modified < t.timestamp()),
        ("StatusEquals", lambda s: summary["TrainingJobStatus"] == s),
    )
    return wanted(summary["TrainingJobName"], summary["CreationTime"], p) and all(
        check(p[key]) for key, check in checks if key in p
    )
