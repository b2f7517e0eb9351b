"""SageMaker's hyperparameter tuning operations over Skiff's tuning jobs (``flows.tuning``):
CreateHyperParameterTuningJob and StopHyperParameterTuningJob here;
DescribeHyperParameterTuningJob and the two lists in ``tuning_reads``.

A tuning job created here is the record ``skiff tuning`` shows; its tuner is the ``tune``
flow, a Prefect flow run in a process of its own (it outlives this server); its trials are
training jobs DescribeTrainingJob shows, with their ``TuningJobArn``.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from core.errors import TuningError, describe_invalid
from core.records.tuning import (
    Objective,
    ParameterRange,
    TuningSpec,
    TuningStore,
)
from flows.api import tags
from flows.api.context import ApiContext
from flows.api.errors import in_use, invalid
from flows.api.launch import start_flow
from flows.api.shapes import as_given, refuse_unsupported
from flows.api.training import ACCEPTED as TRAINING_ACCEPTED
from flows.api.training import DEFAULT_MAX_RUNTIME, job_from_request
from flows.api.tuning_reads import (
    CONFIG,
    DEFINITION,
    KIND,
    describe_hyper_parameter_tuning_job,
    list_hyper_parameter_tuning_jobs,
    list_training_jobs_for_hyper_parameter_tuning_job,
    read_tuning,
)

_TRAINING_FIELDS = (
    "AlgorithmSpecification.TrainingImage", "InputDataConfig[].ChannelName",
    "InputDataConfig[].DataSource.S3DataSource.S3Uri",
    "InputDataConfig[].DataSource.S3DataSource.S3DataType", "InputDataConfig[].ContentType",
    "InputDataConfig[].CompressionType", "InputDataConfig[].RecordWrapperType",
    "OutputDataConfig.S3OutputPath", "OutputDataConfig.CompressionType",
    "ResourceConfig.InstanceType", "ResourceConfig.InstanceCount",
    "StoppingCondition.MaxRuntimeInSeconds", "StaticHyperParameters",
)  # fmt: skip
HONOURED = frozenset({
    "HyperParameterTuningJobName", "Tags",
    f"{CONFIG}.Strategy", f"{CONFIG}.HyperParameterTuningJobObjective",
    f"{CONFIG}.ResourceLimits.MaxNumberOfTrainingJobs",
    f"{CONFIG}.ResourceLimits.MaxParallelTrainingJobs",
    f"{CONFIG}.ParameterRanges.IntegerParameterRanges",
    f"{CONFIG}.ParameterRanges.ContinuousParameterRanges",
    f"{CONFIG}.ParameterRanges.CategoricalParameterRanges",
    f"{CONFIG}.TrainingJobEarlyStoppingType", f"{CONFIG}.RandomSeed",
    *(f"{DEFINITION}.{f}" for f in _TRAINING_FIELDS),
})  # fmt: skip
ACCEPTED = frozenset({
    f"{DEFINITION}.RoleArn", f"{DEFINITION}.DefinitionName",
    *(f"{DEFINITION}.{f}" for f in TRAINING_ACCEPTED if f != "RoleArn"),
})  # fmt: skip
STRATEGIES = ("Bayesian", "Random", "Hyperband")
SCALINGS = {"Auto", "Linear", "Logarithmic", "ReverseLogarithmic"}


def create_hyper_parameter_tuning_job(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    if "TrainingJobDefinitions" in p:
        raise invalid(
            "TrainingJobDefinitions is not supported by Skiff: give one TrainingJobDefinition"
        )
    if DEFINITION not in p:
        raise invalid("TrainingJobDefinition is required")
    refuse_unsupported("CreateHyperParameterTuningJob", p, HONOURED, ACCEPTED)
    name, config, definition = p["HyperParameterTuningJobName"], p[CONFIG], p[DEFINITION]
    if len(p.get("Tags", [])) > tags.MAX_TAGS:
        raise invalid(f"Tags: at most {tags.MAX_TAGS} tags, {len(p['Tags'])} given")
    strategy = config["Strategy"]
    if strategy not in STRATEGIES:
        supported = ", ".join(STRATEGIES)
        raise invalid(f"Strategy {strategy} is not supported by Skiff; supported: {supported}")
    objective = config.get("HyperParameterTuningJobObjective")
    if not objective:
        raise invalid("HyperParameterTuningJobObjective is required (MetricName and Type)")
    limits = config["ResourceLimits"]
    request = definition | {
        "HyperParameters": dict(definition.get("StaticHyperParameters", {})),
        "StoppingCondition": {"MaxRuntimeInSeconds": DEFAULT_MAX_RUNTIME}
        | definition.get("StoppingCondition", {}),
    }
    job, placed = job_from_request(ctx, name, request, request["HyperParameters"])
    try:
        spec = TuningSpec(
            name=name,
            definition=job.model_copy(update={"request": as_given(definition)}),
            ranges=_ranges(config.get("ParameterRanges", {})),
            objective=Objective(
                metric=objective["MetricName"], maximize=objective["Type"] == "Maximize"
            ),
            strategy=strategy,
            max_trials=limits.get("MaxNumberOfTrainingJobs", 1),
            max_parallel=limits["MaxParallelTrainingJobs"],
            early_stopping=config.get("TrainingJobEarlyStoppingType", "Off"),
            seed=config.get("RandomSeed", 0),
            backend=placed.backend,
            backend_options=placed.options,
            request=as_given(p),
        )
    except ValidationError as exc:  # a name, a limit
        raise invalid(describe_invalid(exc)) from None
    from flows.tuning import jobs  # optuna: only when a tuning job is made

    try:
        jobs.create(ctx.store, spec)
    except TuningError as exc:
        if "already exists" in str(exc):
            arn = ctx.arn(KIND, name)
            raise in_use(f"a tuning job named {name} already exists ({arn})") from None
        raise invalid(str(exc)) from None
    tags.save(ctx, KIND, name, p.get("Tags", []))
    start_flow("flows.tuning.flow", [ctx.store.root, name], f"{name}.log", ctx.store, ctx.child_env)
    return {"HyperParameterTuningJobArn": ctx.arn(KIND, name)}


def _ranges(given: dict[str, Any]) -> list[ParameterRange]:
    if given.get("AutoParameters"):
        raise invalid("ParameterRanges.AutoParameters is not supported by Skiff: give the ranges")
    ranges = []
    for field, kind in (
        ("ContinuousParameterRanges", "continuous"),
        ("IntegerParameterRanges", "integer"),
    ):
        for r in given.get(field, []):
            scaling = r.get("ScalingType", "Auto")
            if scaling not in SCALINGS:
                known = ", ".join(sorted(SCALINGS))
                raise invalid(f"{field} {r['Name']}: ScalingType {scaling} is not one of {known}")
            try:
                low, high = float(r["MinValue"]), float(r["MaxValue"])
            except ValueError:
                raise invalid(
                    f"{field} {r['Name']}: MinValue {r['MinValue']!r} and MaxValue "
                    f"{r['MaxValue']!r} must be numbers"
                ) from None
            bounds = {"low": low, "high": high, "scaling": scaling}
            ranges.append(_range(field, name=r["Name"], kind=kind, **bounds))
    for r in given.get("CategoricalParameterRanges", []):
        values = {"kind": "categorical", "values": r["Values"]}
        ranges.append(_range("CategoricalParameterRanges", name=r["Name"], **values))
    return ranges


def _range(field: str, **fields: Any) -> ParameterRange:
    try:
        return ParameterRange(**fields)
    except ValidationError as exc:
        raise invalid(f"{field}: {describe_invalid(exc)}") from None


def stop_hyper_parameter_tuning_job(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    name = p["HyperParameterTuningJobName"]
    _, record = read_tuning(ctx, name)
    if record.status.terminal:
        raise invalid(
            f"The request was rejected because the tuning job is in status {record.status}."
        )
    TuningStore(ctx.store).request_stop(name)
    return {}


OPERATIONS = {
    "CreateHyperParameterTuningJob": create_hyper_parameter_tuning_job,
    "DescribeHyperParameterTuningJob": describe_hyper_parameter_tuning_job,
    "ListHyperParameterTuningJobs": list_hyper_parameter_tuning_jobs,
    "ListTrainingJobsForHyperParameterTuningJob": list_training_jobs_for_hyper_parameter_tuning_job,
    "StopHyperParameterTuningJob": stop_hyper_parameter_tuning_job,
}
