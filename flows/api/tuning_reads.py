"""How a tuning job's record reads in SageMaker's words: DescribeHyperParameterTuningJob,
ListHyperParameterTuningJobs and ListTrainingJobsForHyperParameterTuningJob (statuses,
counters, the best training job, every trial as a HyperParameterTrainingJobSummary)."""

from __future__ import annotations

from typing import Any

from core.errors import SkiffError
from core.records.jobs import JobStore, Status
from core.records.tuning import Trial, TuningRecord, TuningSpec, TuningStatus, TuningStore
from flows.api.context import ApiContext
from flows.api.errors import ApiError, not_found
from flows.api.pages import page, wanted
from flows.api.shapes import epoch
from flows.api.training_reads import KIND as TRAINING_KIND

KIND = "hyper-parameter-tuning-job"
CONFIG = "HyperParameterTuningJobConfig"
DEFINITION = "TrainingJobDefinition"


def read_tuning(ctx: ApiContext, name: str) -> tuple[TuningSpec, TuningRecord]:
    tunings = TuningStore(ctx.store)
    try:
        return tunings.spec(name), tunings.record(name)
    except SkiffError:
        raise not_found() from None


def shown_status(ctx: ApiContext, record: TuningRecord) -> str:
    if TuningStore.lost(record):
        return "Failed"
    if not record.status.terminal and TuningStore(ctx.store).stop_requested(record.name):
        return "Stopping"
    return str(record.status)


def _counters(record: TuningRecord) -> tuple[dict[str, int], dict[str, int]]:
    """TrainingJobStatusCounters and ObjectiveStatusCounters."""
    counts = record.counts()
    jobs = {
        "Completed": counts["Completed"],
        "InProgress": counts["InProgress"],
        "RetryableError": 0,
        "NonRetryableError": counts["Failed"],
        "Stopped": counts["Stopped"],
    }
    succeeded = sum(t.objective is not None and t.status == Status.COMPLETED for t in record.trials)
    pending = counts["InProgress"]
    failed = len(record.trials) - succeeded - pending
    return jobs, {"Succeeded": succeeded, "Pending": pending, "Failed": failed}


def trial_summary(ctx: ApiContext, spec: TuningSpec, trial: Trial) -> dict[str, Any]:
    """A trial as SageMaker's HyperParameterTrainingJobSummary."""
    summary: dict[str, Any] = {
        "TrainingJobName": trial.job_name,
        "TrainingJobArn": ctx.arn(TRAINING_KIND, trial.job_name),
        "TuningJobName": spec.name,
        "CreationTime": epoch(trial.started_at),
        "TrainingJobStatus": str(trial.status) if trial.status.terminal else "InProgress",
        "TunedHyperParameters": {k: str(v) for k, v in trial.hyperparameters.items()},
    }
    try:
        job = JobStore(ctx.store).status(trial.job_name)
    except SkiffError:
        job = None
    if job is not None and (started := job.started_at):
        summary["TrainingStartTime"] = epoch(started)
    if trial.ended_at:
        summary["TrainingEndTime"] = epoch(trial.ended_at)
    if trial.failure_reason and trial.status != Status.COMPLETED:
        summary["FailureReason"] = trial.failure_reason
    if trial.objective is not None:
        summary["FinalHyperParameterTuningJobObjectiveMetric"] = {
            "Type": "Maximize" if spec.objective.maximize else "Minimize",
            "MetricName": spec.objective.metric,
            "Value": trial.objective,
        }
    completed = trial.status == Status.COMPLETED and trial.objective is not None
    summary["ObjectiveStatus"] = (
        "Succeeded" if completed else "Pending" if not trial.status.terminal else "Failed"
    )
    return summary


def describe_hyper_parameter_tuning_job(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    spec, record = read_tuning(ctx, p["HyperParameterTuningJobName"])
    request = spec.request or {}
    jobs, objectives = _counters(record)
    answer: dict[str, Any] = {
        "HyperParameterTuningJobName": spec.name,
        "HyperParameterTuningJobArn": ctx.arn(KIND, spec.name),
        CONFIG: request.get(CONFIG) or _config(spec),
        "HyperParameterTuningJobStatus": shown_status(ctx, record),
        "CreationTime": epoch(record.created_at),
        "LastModifiedTime": epoch(record.modified_at),
        "TrainingJobStatusCounters": jobs,
        "ObjectiveStatusCounters": objectives,
    }
    if DEFINITION in request:
        answer[DEFINITION] = request[DEFINITION]
    if record.ended_at:
        answer["HyperParameterTuningEndTime"] = epoch(record.ended_at)
    if (best := record.best_trial) is not None:
        answer["BestTrainingJob"] = trial_summary(ctx, spec, best)
    if record.failure_reason and record.status == TuningStatus.FAILED:
        answer["FailureReason"] = record.failure_reason
    if lost := TuningStore.lost(record):
        answer["FailureReason"] = f"the tuning job is lost: {lost}"
    return answer


def _config(spec: TuningSpec) -> dict[str, Any]:
    """The config of a tuning job not made through this API (the pipeline's)."""
    ranges: dict[str, list] = {
        "IntegerParameterRanges": [],
        "ContinuousParameterRanges": [],
        "CategoricalParameterRanges": [],
    }
    for r in spec.ranges:
        if r.kind == "categorical":
            ranges["CategoricalParameterRanges"].append({"Name": r.name, "Values": r.values})
            continue
        field = "IntegerParameterRanges" if r.kind == "integer" else "ContinuousParameterRanges"
        shown = (int(r.low or 0), int(r.high or 0)) if r.kind == "integer" else (r.low, r.high)
        low, high = str(shown[0]), str(shown[1])
        ranges[field].append(
            {"Name": r.name, "MinValue": low, "MaxValue": high, "ScalingType": r.scaling}
        )
    return {
        "Strategy": spec.strategy,
        "HyperParameterTuningJobObjective": {
            "Type": "Maximize" if spec.objective.maximize else "Minimize",
            "MetricName": spec.objective.metric,
        },
        "ResourceLimits": {
            "MaxNumberOfTrainingJobs": spec.max_trials,
            "MaxParallelTrainingJobs": spec.max_parallel,
        },
        "ParameterRanges": ranges,
        "TrainingJobEarlyStoppingType": spec.early_stopping,
        "RandomSeed": spec.seed,
    }


TUNING_SORT = {
    "Name": lambda s: s["HyperParameterTuningJobName"],
    "Status": lambda s: s["HyperParameterTuningJobStatus"],
    "CreationTime": lambda s: s["CreationTime"],
}


def list_hyper_parameter_tuning_jobs(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    summaries = []
    for name in TuningStore(ctx.store).names():
        try:
            spec, record = read_tuning(ctx, name)
        except ApiError:  # one being created, or damaged: not listable
            continue
        jobs, objectives = _counters(record)
        summary = {
            "HyperParameterTuningJobName": name,
            "HyperParameterTuningJobArn": ctx.arn(KIND, name),
            "HyperParameterTuningJobStatus": shown_status(ctx, record),
            "Strategy": spec.strategy,
            "CreationTime": epoch(record.created_at),
            "LastModifiedTime": epoch(record.modified_at),
            "TrainingJobStatusCounters": jobs,
            "ObjectiveStatusCounters": objectives,
            "ResourceLimits": {
                "MaxNumberOfTrainingJobs": spec.max_trials,
                "MaxParallelTrainingJobs": spec.max_parallel,
            },
        }
        if record.ended_at:
            summary["HyperParameterTuningEndTime"] = epoch(record.ended_at)
        if _wanted(summary, p):
            summaries.append(summary)
    found, token = page(summaries, p, TUNING_SORT)
    return {"HyperParameterTuningJobSummaries": found} | ({"NextToken": token} if token else {})


def _wanted(summary: dict[str, Any], p: dict[str, Any]) -> bool:
    modified = summary["LastModifiedTime"]
    checks = (
        ("LastModifiedTimeAfter", lambda t: modified > t.timestamp()),
        ("LastModifiedTimeBefore", lambda t: modified < t.timestamp()),
        ("StatusEquals", lambda s: summary["HyperParameterTuningJobStatus"] == s),
    )
    name, created = summary["HyperParameterTuningJobName"], summary["CreationTime"]
    return wanted(name, created, p) and all(c(p[k]) for k, c in checks if k in p)


def _objective_sort(s: dict[str, Any]) -> float:
    metric = s.get("FinalHyperParameterTuningJobObjectiveMetric")
    return metric["Value"] if metric else float("-inf")


TRIAL_SORT = {
    "Name": lambda s: s["TrainingJobName"],
    "CreationTime": lambda s: s["CreationTime"],
    "Status": lambda s: s["TrainingJobStatus"],
    "FinalObjectiveMetricValue": _objective_sort,
}


def list_training_jobs_for_hyper_parameter_tuning_job(
    ctx: ApiContext, p: dict[str, Any]
) -> dict[str, Any]:
    spec, record = read_tuning(ctx, p["HyperParameterTuningJobName"])
    summaries = [trial_summary(ctx, spec, t) for t in record.trials]
    if "StatusEquals" in p:
        summaries = [s for s in summaries if s["TrainingJobStatus"] == p["StatusEquals"]]
    # SageMaker's defaults: by the objective, best first (for a minimised one, lowest first).
    order = "Descending" if spec.objective.maximize else "Ascending"
    found, token = page(summaries, p, TRIAL_SORT, "FinalObjectiveMetricValue", order)
    return {"TrainingJobSummaries": found} | ({"NextToken": token} if token else {})
