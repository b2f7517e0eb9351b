"""Deploying an approved model version to an endpoint on this machine, and retiring it."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from algorithms.store import Store
from flows.errors import PipelineError
from serving import local
from serving.endpoint import EndpointConfig, EndpointStore, Variant
from serving.errors import ServingError
from serving.registry import Approval, ModelRegistry


class NotApproved(PipelineError):
    """Only approved versions are deployed."""


@dataclass(frozen=True)
class Deployment:
    endpoint_name: str
    endpoint_url: str
    config_number: int
    variant: str
    seconds_to_live: float

    def as_dict(self) -> dict:
        return asdict(self)


def deploy(store: Store, endpoint: str, group: str, version: int, host: str = "127.0.0.1",
           port: int = 0, timeout: float = 120.0) -> Deployment:  # fmt: skip
    """Route all of ``endpoint``'s traffic to ``group`` version ``version`` (creating the
    endpoint, or updating it in place), start its server if none runs, and wait until the
    server serves the new config. If the server cannot load it, the previous config is
    restored and the error raised.

    Raises:
        NotApproved: the version is not Approved (the message says how to approve it).
        ServingError: the server could not load the model (the old config keeps serving).
    """
    mv = ModelRegistry(store).get(group, version)
    if mv.approval_status != Approval.APPROVED:
        raise NotApproved(
            f"{group} version {version} is {mv.approval_status}, so it is not deployed; approve "
            f"it with: skiff --store {store.root} models approve {version} --group {group}"
        )
    configs = EndpointStore(store)
    previous = configs.current(endpoint) if configs.exists(endpoint) else None
    variant = Variant(name=f"v{version}", model_group=group, model_version=version)
    started = time.monotonic()
    wanted = EndpointConfig(
        endpoint=endpoint, variants=[variant], reason=f"deploy {group} version {version}"
    )
    new = configs.update(endpoint, lambda _: wanted)
    try:
        server = local.start(store, endpoint, host, port, timeout=timeout)
        local.wait_for_config(server, new.number, timeout=timeout)
    except ServingError:
        if previous is not None:
            reason = f"rollback: config {new.number} could not be served"
            restored = previous.model_copy(update={"reason": reason})
            configs.update(endpoint, lambda _: restored)
        raise
    return Deployment(endpoint, server.url, new.number, variant.name, time.monotonic() - started)


def delete(store: Store, endpoint: str) -> bool:
    """Stop the endpoint's server and retire its config (the history stays in the store).

    Returns whether a server was running.
    """
    was_running = local.stop(store, endpoint)
    EndpointStore(store).delete(endpoint)
    return was_running
