"""The part of CloudWatch Logs that SageMaker code reads to follow a training job (the SDK's
``fit(logs=True)``) or a transform job (``transformer.wait(logs=True)``), on ``skiff api``'s
port: DescribeLogStreams and GetLogEvents in the log groups ``/aws/sagemaker/TrainingJobs``
and ``/aws/sagemaker/TransformJobs``, fed by the job's log in the store (its live channel).

A job has one stream per instance, ``<job>/algo-<i>-<epoch>``, as on SageMaker; the job's
log (its runner's: every status change and every tenth round) is ``algo-1``'s, the others
are empty (a Dask job's workers log nowhere a stream could read).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.errors import JobError
from core.records.jobs import JobStore
from core.records.transforms import TransformStore
from flows.api.context import ApiContext
from flows.api.errors import ApiError, invalid
from flows.api.pages import window

GROUPS: dict[str, type[JobStore]] = {
    "/aws/sagemaker/TrainingJobs": JobStore,
    "/aws/sagemaker/TransformJobs": TransformStore,
}


def _not_found(what: str) -> ApiError:
    return ApiError("ResourceNotFoundException", f"The specified log {what} does not exist.")


def _group(ctx: ApiContext, p: dict[str, Any]) -> JobStore:
    """The records of the jobs whose logs the request's group holds."""
    group = p.get("logGroupName") or p.get("logGroupIdentifier", "").rpartition(":")[2]
    if group not in GROUPS:
        raise _not_found("group")
    return GROUPS[group](ctx.store)


def _millis(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def _streams(spec: Any) -> list[str]:
    request = spec.request or {}
    resources = request.get("ResourceConfig") or request.get("TransformResources") or {}
    count = int(resources.get("InstanceCount", 1))
    created = _millis(spec.created_at) // 1000
    return [f"{spec.name}/algo-{i}-{created}" for i in range(1, count + 1)]


def _events(jobs: JobStore, name: str) -> list[dict[str, Any]]:
    """The job's log lines as events: ``<ISO time> <message>`` each."""
    events = []
    for line in jobs.log(name).splitlines():
        stamp, _, message = line.partition(" ")
        try:
            at = _millis(stamp)
        except ValueError:  # a line of a message that spans several: the time of the last
            at, message = (events[-1]["timestamp"] if events else 0), line
        events.append({"timestamp": at, "message": message, "ingestionTime": at})
    return events


def describe_log_streams(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    jobs = _group(ctx, p)
    prefix = p.get("logStreamNamePrefix", "")
    job, slash, _ = prefix.partition("/")
    names = [job] if slash else [n for n in jobs.names() if n.startswith(prefix)]
    streams = []
    for name in names:
        try:
            spec = jobs.spec(name)
        except JobError:
            continue  # no such job (yet): no streams, as SageMaker before the job starts
        events = _events(jobs, name)
        for i, stream in enumerate(_streams(spec)):
            if not stream.startswith(prefix):
                continue
            own = events if i == 0 else []
            entry: dict[str, Any] = {
                "logStreamName": stream,
                "creationTime": _millis(spec.created_at),
            }
            entry["storedBytes"] = sum(len(e["message"]) for e in own)
            if own:
                entry |= {
                    "firstEventTimestamp": own[0]["timestamp"],
                    "lastEventTimestamp": own[-1]["timestamp"],
                    "lastIngestionTime": own[-1]["timestamp"],
                }
            streams.append(entry)
    key = "lastEventTimestamp" if p.get("orderBy") == "LastEventTime" else "logStreamName"
    streams.sort(key=lambda s: s.get(key, 0), reverse=bool(p.get("descending")))
    found, token = window(streams, p.get("nextToken"), p.get("limit", 50), "nextToken")
    return {"logStreams": found} | ({"nextToken": token} if token else {})


def get_log_events(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    jobs = _group(ctx, p)
    stream = p["logStreamName"]
    name = stream.partition("/")[0]
    try:
        spec = jobs.spec(name)
    except JobError:
        raise _not_found("stream") from None
    streams = _streams(spec)
    if stream not in streams:
        raise _not_found("stream")
    events = _events(jobs, name) if stream == streams[0] else []
    if "startTime" in p:
        since = p["startTime"]
        events = [e for e in events if e["timestamp"] >= since]
    if "endTime" in p:
        events = [e for e in events if e["timestamp"] < p["endTime"]]
    limit = p.get("limit", 10_000)
    token = p.get("nextToken")
    if token:
        at = _position(token)
        start, end = (at, at + limit) if token[:2] == "f/" else (max(at - limit, 0), at)
    elif p.get("startFromHead"):
        start, end = 0, limit
    else:
        start, end = max(len(events) - limit, 0), len(events)
    end = min(end, len(events))
    return {
        "events": events[start:end],
        "nextForwardToken": f"f/{end}",
        "nextBackwardToken": f"b/{start}",
    }


def _position(token: str) -> int:
    """Where a GetLogEvents token (``f/<n>`` forward, ``b/<n>`` backward) points."""
    if token[:2] not in ("f/", "b/") or not token[2:].isdigit():
        raise invalid(f"nextToken {token!r} is not one this server gave")
    return int(token[2:])


OPERATIONS = {"DescribeLogStreams": describe_log_streams, "GetLogEvents": get_log_events}
