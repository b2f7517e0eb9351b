"""Deploying an approved model version to an endpoint on this machine, and retiring it."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from core.errors import NotApproved
from core.records.endpoints import EndpointConfig, EndpointStore, Variant
from core.records.registry import Approval, ModelRegistry
from core.store import Store
from serving import local
from serving.options import ServerOptions
from serving.updates import BlueGreen, UpdatePolicy


@dataclass(frozen=True)
class Deployment:
    endpoint_name: str
    endpoint_url: str
    config_number: int
    variant: str
    seconds_to_live: float

    def as_dict(self) -> dict:
        return asdict(self)


def deploy(
    store: Store,
    endpoint: str,
    group: str,
    version: int,
    host: str = "127.0.0.1",
    port: int = 0,
    timeout: float = 120.0,
    policy: UpdatePolicy | None = None,
    server: ServerOptions | None = None,
) -> Deployment:
    """Put ``group`` version ``version`` behind ``endpoint``.

    A new endpoint gets a config with that version alone and a server. An existing one (its
    server started again if it is not running) is updated in place by ``policy``: all at once,
    canary or linear, with alarms; a failed load or a tripped alarm restores the old config.

    Raises:
        NotApproved: the version is not Approved (the message says how to approve it).
        ServingError: the server could not load the model (the old config keeps serving).
        UpdateRolledBack: an alarm tripped during the update; the old config serves again.
    """
    mv = ModelRegistry(store).get(group, version)
    if mv.approval_status != Approval.APPROVED:
        raise NotApproved(
            f"{group} version {version} is {mv.approval_status}, so it is not deployed; approve "
            f"it with: skiff --store {store.root} models approve {version} --group {group}"
        )
    configs = EndpointStore(store)
    variant = Variant(name=f"v{version}", model_group=group, model_version=version)
    what = f"deploy {group} version {version}"
    started = time.monotonic()
    if configs.exists(endpoint):
        running = local.start(store, endpoint, host, port, timeout=timeout, options=server)
        final = BlueGreen(configs, running, policy or UpdatePolicy()).run(variant, what)
    else:
        final = configs.update(
            endpoint, lambda _: EndpointConfig(endpoint=endpoint, variants=[variant], reason=what)
        )
        running = local.start(store, endpoint, host, port, timeout=timeout, options=server)
    return Deployment(endpoint, running.url, final.number, variant.name, time.monotonic() - started)


def delete(store: Store, endpoint: str) -> bool:
    """Stop the endpoint's server and retire its config (the history stays in the store).

    Returns whether a server was running.
    """
    was_running = local.stop(store, endpoint)
    EndpointStore(store).delete(endpoint)
    return was_running
