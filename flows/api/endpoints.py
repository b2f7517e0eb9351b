"""SageMaker's endpoints over Skiff's: CreateEndpoint, DescribeEndpoint, DeleteEndpoint,
ListEndpoints.

An endpoint is Skiff's own (its numbered configs in the store, its server on this machine):
CreateEndpoint publishes the first config from the named one (each variant serving a hosted
model) and starts the server, answering at once; the status is read live from the server
(Creating until every worker serves the current config, InService then, Failed with the
server's reason when it cannot load it). An endpoint the pipeline or ``skiff endpoints
deploy`` made reads the same, its EndpointConfigName ``<endpoint>-config-<n>``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.errors import AlreadyExistsError, EndpointNotFound
from core.processes import alive
from core.records.endpoints import EndpointConfig, EndpointStore, Variant
from core.records.hosting import HostedEndpoint, HostingStore
from flows.api import tags
from flows.api.context import ApiContext
from flows.api.errors import invalid
from flows.api.hosting import capture_described, named_config
from flows.api.pages import page, wanted
from flows.api.shapes import epoch, refuse_unsupported
from serving.control import deploys, servers
from serving.options import ServerOptions

KIND = "endpoint"
START_GRACE_SECONDS = 120.0  # a server not up this long after CreateEndpoint has failed
HONOURED = frozenset({"EndpointName", "EndpointConfigName", "Tags"})


def missing(ctx: ApiContext, name: str) -> Any:
    """What SageMaker says, word for word (the SDK looks for "Could not find")."""
    return invalid(f'Could not find endpoint "{ctx.arn(KIND, name)}".')


def create_endpoint(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    refuse_unsupported("CreateEndpoint", p, HONOURED, frozenset())
    name, config_name = p["EndpointName"], p["EndpointConfigName"]
    configs, hosting = EndpointStore(ctx.store), HostingStore(ctx.store)
    exists = invalid(f'Cannot create already existing endpoint "{ctx.arn(KIND, name)}".')
    if configs.exists(name):
        raise exists
    named = named_config(ctx, config_name)
    record = HostedEndpoint(name=name, config_name=config_name, request=p)
    try:
        hosting.create_endpoint(record)
    except AlreadyExistsError:  # left by one that `skiff endpoints delete` retired: a new one
        hosting.save_endpoint(record)
    variants = [Variant(name=v.name, model=v.model, weight=v.weight) for v in named.variants]
    first = EndpointConfig(
        endpoint=name, variants=variants, reason=f"CreateEndpoint {config_name}",
        capture=named.capture,
    )  # fmt: skip
    configs.update(name, lambda _: first)
    workers = min(max(v.instance_count for v in named.variants), os.cpu_count() or 1)
    servers.spawn(ctx.store, name, options=ServerOptions(server_workers=workers))
    tags.save(ctx, KIND, name, p.get("Tags", []))
    return {"EndpointArn": ctx.arn(KIND, name)}


@dataclass(frozen=True)
class EndpointState:
    """An endpoint as SageMaker describes it, read from its records and its server."""

    status: str  # EndpointStatus
    failure_reason: str | None
    current: EndpointConfig  # the config it serves, or is moving to
    workers: int  # server workers serving it (0 while none does)
    record: HostedEndpoint | None  # None for one the pipeline or `skiff` made


def endpoint_status(ctx: ApiContext, name: str) -> EndpointState:
    """Endpoint ``name``'s status, read live from its server.

    Raises:
        ApiError: no such endpoint.
    """
    configs, hosting = EndpointStore(ctx.store), HostingStore(ctx.store)
    try:
        current = configs.current(name)
    except EndpointNotFound:
        raise missing(ctx, name) from None
    record = hosting.endpoint(name)

    def state(status: str, reason: str | None = None, workers: int = 0) -> EndpointState:
        return EndpointState(status, reason, current, workers, record)

    if record is not None and record.failure_reason:
        return state("Failed", record.failure_reason)
    server = servers.running(ctx.store, name)
    if server is None:
        created = datetime.fromisoformat(record.created_at) if record else None
        if created and (datetime.now(UTC) - created).total_seconds() < START_GRACE_SECONDS:
            return state("Creating")
        return state(
            "Failed",
            f"no server runs endpoint {name} on this machine: skiff endpoints start {name}",
        )
    status = servers.status_of(server)
    if status is None:
        return state("Creating")
    if (
        record is not None
        and record.updating_to
        and (record.update_pid is None or alive(record.update_pid))
    ):
        return state("RollingBack" if record.rolling_back else "Updating", None, status.workers)
    if status.serves(current.number):
        last_failure = record.update_failure if record is not None else None
        return state("InService", last_failure, status.workers)
    if status.rejected(current.number) and status.config_number is None:
        # It never served: the endpoint failed to come up. Say why, and stop its server.
        reason = status.last_error or f"see {server.log}"
        if record is not None:
            hosting.failed(record, reason)
        servers.stop(ctx.store, name)
        return state("Failed", reason)
    return state("Creating" if status.config_number is None else "Updating")


def describe_endpoint(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    name = p["EndpointName"]
    state = endpoint_status(ctx, name)
    current, workers, record = state.current, state.workers, state.record
    variants = [
        {
            "VariantName": v.name,
            "CurrentWeight": v.weight,
            "DesiredWeight": v.weight,
            "CurrentInstanceCount": workers,
            "DesiredInstanceCount": max(workers, 1),
        }
        for v in current.variants
    ]
    answer: dict[str, Any] = {
        "EndpointName": name,
        "EndpointArn": ctx.arn(KIND, name),
        "EndpointConfigName": record.config_name if record else f"{name}-config-{current.number}",
        "ProductionVariants": variants,
        "EndpointStatus": state.status,
        "CreationTime": epoch(record.created_at if record else _first(ctx, name)),
        "LastModifiedTime": epoch(current.created_at),
    }
    if state.failure_reason:
        answer["FailureReason"] = state.failure_reason
    return answer | capture_described(current.capture)


def _first(ctx: ApiContext, name: str) -> str:
    history = EndpointStore(ctx.store).history(name)
    return history[0].created_at if history else datetime.now(UTC).isoformat()


def delete_endpoint(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    name = p["EndpointName"]
    hosting = HostingStore(ctx.store)
    try:
        deploys.delete(ctx.store, name)  # its server stopped, its config retired
    except EndpointNotFound:
        raise missing(ctx, name) from None
    if hosting.endpoint(name) is not None:
        hosting.delete(hosting.ENDPOINTS, name)
    return {}


SORT_KEYS = {
    "Name": lambda s: s["EndpointName"],
    "CreationTime": lambda s: s["CreationTime"],
    "Status": lambda s: s["EndpointStatus"],
}


def list_endpoints(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    summaries = []
    for name in EndpointStore(ctx.store).names():
        try:
            d = describe_endpoint(ctx, {"EndpointName": name})
        except Exception:  # retired meanwhile, or its records damaged: not listable
            continue
        keys = ("EndpointName", "EndpointArn", "CreationTime", "LastModifiedTime", "EndpointStatus")
        summary = {k: d[k] for k in keys}
        if wanted(name, summary["CreationTime"], p) and p.get("StatusEquals") in (
            None,
            summary["EndpointStatus"],
        ):
            summaries.append(summary)
    found, token = page(summaries, p, SORT_KEYS, default_order="Descending")
    return {"Endpoints": found} | ({"NextToken": token} if token else {})


OPERATIONS = {
    "CreateEndpoint": create_endpoint,
    "DescribeEndpoint": describe_endpoint,
    "DeleteEndpoint": delete_endpoint,
    "ListEndpoints": list_endpoints,
}
