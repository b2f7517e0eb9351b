"""SageMaker's batch transform operations over Skiff's transform jobs (``flows.transforms``):
CreateTransformJob, DescribeTransformJob, ListTransformJobs, StopTransformJob.

A job created here is the record ``skiff transforms`` shows; it runs as the ``transform-job``
flow, a Prefect flow run in a process of its own (it outlives this server), on the backend
the server places it on (one instance: local; several: a Dask LocalCluster).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from core.errors import SkiffError, TransformError, describe_invalid
from core.records.jobs import Status
from core.records.transforms import (
    ACCEPTS,
    CONTENT_TYPES,
    TransformJob,
    TransformStatus,
    TransformStore,
    content_type_of,
)
from flows.api import tags
from flows.api.context import ApiContext
from flows.api.errors import in_use, invalid, not_found
from flows.api.launch import start_flow
from flows.api.pages import page, wanted
from flows.api.shapes import as_given, epoch, refuse_unsupported

KIND = "transform-job"
SOURCE = "TransformInput.DataSource.S3DataSource"
HONOURED = frozenset({
    "TransformJobName", "ModelName", "MaxPayloadInMB", "BatchStrategy", "Tags",
    f"{SOURCE}.S3Uri", f"{SOURCE}.S3DataType", "TransformInput.ContentType",
    "TransformInput.SplitType", "TransformInput.CompressionType",
    "TransformOutput.S3OutputPath", "TransformOutput.Accept", "TransformOutput.AssembleWith",
    "DataProcessing.InputFilter", "DataProcessing.OutputFilter", "DataProcessing.JoinSource",
    "TransformResources.InstanceType", "TransformResources.InstanceCount",
})  # fmt: skip
# Recorded and shown as given, with no effect here.
ACCEPTED = frozenset({
    "MaxConcurrentTransforms", "Environment", "ModelClientConfig", "ExperimentConfig",
    "TransformOutput.KmsKeyId", "TransformResources.VolumeKmsKeyId",
    "TransformResources.TransformAmiVersion",
})  # fmt: skip


def create_transform_job(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    refuse_unsupported("CreateTransformJob", p, HONOURED, ACCEPTED)
    name, given_input, output = p["TransformJobName"], p["TransformInput"], p["TransformOutput"]
    source = given_input["DataSource"]["S3DataSource"]
    if source["S3DataType"] != "S3Prefix":
        raise invalid(f"S3DataType {source['S3DataType']} is not supported by Skiff: S3Prefix")
    if given_input.get("CompressionType", "None") != "None":
        raise invalid(f"CompressionType {given_input['CompressionType']} is not supported by Skiff")
    split = given_input.get("SplitType", "None")
    if split not in ("None", "Line"):
        raise invalid(f"SplitType {split} is not supported by Skiff: Line or None")
    content_type = content_type_of(given_input.get("ContentType"), source["S3Uri"]) or "text/csv"
    if content_type not in CONTENT_TYPES:
        raise invalid(f"ContentType {given_input['ContentType']} is not supported by Skiff: "
                      f"{', '.join(CONTENT_TYPES)}")  # fmt: skip
    accept = content_type_of(output.get("Accept"), "") or "text/csv"
    if accept not in ACCEPTS:
        raise invalid(f"Accept {output['Accept']} is not supported by Skiff: {', '.join(ACCEPTS)}")
    resources = p["TransformResources"]
    backend, options, _ = ctx.placement.for_job(
        resources["InstanceType"], resources["InstanceCount"]
    )
    if backend == "ec2":
        raise invalid("transform jobs do not run on the ec2 backend yet: start skiff api with "
                      "--backend auto, local or dask")  # fmt: skip
    processing = p.get("DataProcessing", {})
    try:
        spec = TransformJob(
            name=name, model=p["ModelName"], input_url=source["S3Uri"],
            output_url=output["S3OutputPath"], content_type=content_type, split_type=split,
            batch_strategy=p.get("BatchStrategy", "MultiRecord"),
            max_payload_mb=max(p.get("MaxPayloadInMB", 6), 1), accept=accept,
            assemble_with=output.get("AssembleWith", "None"),
            input_filter=processing.get("InputFilter"),
            join_source=processing.get("JoinSource", "None"),
            output_filter=processing.get("OutputFilter"),
            backend=backend, request=as_given(p),
        )  # fmt: skip
    except ValidationError as exc:
        raise invalid(describe_invalid(exc)) from None
    from flows.transforms.jobs import check

    records = TransformStore(ctx.store)
    if ctx.store.exists(records.key(name, "job.json")):
        raise in_use(f"a transform job named {name} already exists ({ctx.arn(KIND, name)})")
    try:
        check(ctx.store, spec)
    except TransformError as exc:
        if "cannot transform with" in str(exc):
            raise invalid(f'Could not find model "{ctx.arn("model", spec.model or "")}".') from None
        raise invalid(str(exc)) from None
    try:
        records.create(spec)
    except SkiffError:
        raise in_use(
            f"a transform job named {name} already exists ({ctx.arn(KIND, name)})"
        ) from None
    tags.save(ctx, KIND, name, p.get("Tags", []))
    arguments = [ctx.store.root, name, "--backend", backend, "--options", json.dumps(options)]
    start_flow("flows.transforms.flow", arguments, f"{name}.log", ctx.store, ctx.child_env)
    return {"TransformJobArn": ctx.arn(KIND, name)}


def read_transform(ctx: ApiContext, name: str) -> tuple[TransformJob, TransformStatus]:
    records = TransformStore(ctx.store)
    try:
        return records.spec(name), records.status(name)
    except SkiffError:
        raise not_found() from None


def shown_status(ctx: ApiContext, status: TransformStatus) -> str:
    records = TransformStore(ctx.store)
    if records.lost(status):
        return "Failed"
    if status.status == Status.PENDING:
        return "InProgress"  # SageMaker's transform jobs have no Pending
    if not status.status.terminal and records.stop_requested(status.name):
        return "Stopping"
    return str(status.status)


def _reason(ctx: ApiContext, status: TransformStatus) -> str | None:
    if lost := TransformStore(ctx.store).lost(status):
        return f"lost: {lost}"
    return status.failure_reason


def describe_transform_job(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    spec, status = read_transform(ctx, p["TransformJobName"])
    given = spec.request or {}
    answer: dict[str, Any] = {
        "TransformJobName": spec.name,
        "TransformJobArn": ctx.arn(KIND, spec.name),
        "TransformJobStatus": shown_status(ctx, status),
        "ModelName": spec.model or spec.source,
        "MaxPayloadInMB": spec.max_payload_mb,
        "BatchStrategy": spec.batch_strategy,
        "TransformInput": given.get("TransformInput") or {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": spec.input_url}},
            "ContentType": spec.content_type, "SplitType": spec.split_type,
        },
        "TransformOutput": given.get("TransformOutput") or {
            "S3OutputPath": spec.output_url, "Accept": spec.accept,
            "AssembleWith": spec.assemble_with,
        },
        "TransformResources": given.get("TransformResources")
        or {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        "CreationTime": epoch(spec.created_at),
    }  # fmt: skip
    for field in ("MaxConcurrentTransforms", "Environment", "ModelClientConfig",
                  "DataProcessing", "ExperimentConfig"):  # fmt: skip
        if field in given:
            answer[field] = given[field]
    if reason := _reason(ctx, status):
        answer["FailureReason"] = reason
    started = [t.at for t in status.transitions if t.status == Status.IN_PROGRESS]
    if started:
        answer["TransformStartTime"] = epoch(started[0])
    if status.ended_at:
        answer["TransformEndTime"] = epoch(status.ended_at)
    return answer


def list_transform_jobs(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    records = TransformStore(ctx.store)
    summaries = []
    for name in records.names():
        try:
            spec, status = read_transform(ctx, name)
        except Exception:
            continue
        created = epoch(spec.created_at) or 0.0
        shown = shown_status(ctx, status)
        if not wanted(name, created, p) or p.get("StatusEquals", shown) != shown:
            continue
        summary: dict[str, Any] = {
            "TransformJobName": name,
            "TransformJobArn": ctx.arn(KIND, name),
            "CreationTime": created,
            "TransformJobStatus": shown,
            "LastModifiedTime": epoch(status.transitions[-1].at) if status.transitions else created,
        }
        if status.ended_at:
            summary["TransformEndTime"] = epoch(status.ended_at)
        if reason := _reason(ctx, status):
            summary["FailureReason"] = reason
        summaries.append(summary)
    keys = {
        "Name": lambda s: s["TransformJobName"],
        "CreationTime": lambda s: s["CreationTime"],
        "Status": lambda s: s["TransformJobStatus"],
    }
    items, token = page(summaries, p, keys, default_order="Descending")
    return {"TransformJobSummaries": items, **({"NextToken": token} if token else {})}


def stop_transform_job(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    name = p["TransformJobName"]
    _, status = read_transform(ctx, name)
    if status.status.terminal:
        raise invalid(f"The request was rejected because the transform job is in status "
                      f"{status.status}.")  # fmt: skip
    TransformStore(ctx.store).request_stop(name)
    return {}


OPERATIONS = {
    "CreateTransformJob": create_transform_job,
    "DescribeTransformJob": describe_transform_job,
    "ListTransformJobs": list_transform_jobs,
    "StopTransformJob": stop_transform_job,
}
