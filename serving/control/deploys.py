"""Deploying a model version to an endpoint on this machine, and retiring an endpoint: the
one operation behind ``skiff endpoints deploy``, the pipeline's deploy step and the
``deploy-model`` flow. Which versions may be deployed is the caller's policy (the pipeline
deploys approved ones only: ``flows/approval.py``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from core.errors import ServingError
from core.records.endpoints import DataCapture, EndpointConfig, EndpointStore, Variant
from core.store import Store
from serving.control import servers
from serving.control.rollouts import BlueGreen, UpdatePolicy
from serving.options import ServerOptions


@dataclass(frozen=True)
class Deployment:
    endpoint_name: str
    endpoint_url: str
    config_number: int
    variant: str
    seconds_to_live: float
    created: bool  # a new endpoint, rather than an update of one that existed

    def as_dict(self) -> dict:
        return asdict(self)


def deploy(
    store: Store,
    endpoint: str,
    group: str,
    version: int,
    host: str = "127.0.0.1",
    port: int | None = None,
    timeout: float = 120.0,
    policy: UpdatePolicy | None = None,
    server: ServerOptions | None = None,
    capture: DataCapture | None = None,
    weight: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> Deployment:
    """Put ``group`` version ``version`` behind ``endpoint``.

    A new endpoint gets a config with that version alone and a server. An existing one (its
    server started again if it is not running) is updated in place by ``policy``: all at once,
    canary or linear, with alarms; a failed load or a tripped alarm restores the old config.
    With ``weight`` (a share between 0 and 1), the version joins the live variants instead,
    taking that share of the traffic and keeping it (an A/B test; ``policy``'s baking and
    alarms watch it). ``capture`` turns data capture on (or changes it) from this deploy on;
    without it, the endpoint's capture stays as it was. ``progress`` is told each step of an
    update as it happens.

    Raises:
        VersionNotFound: the group has no such version.
        ServingError: the server could not load the model (the old config keeps serving), or
            ``weight`` was given for a new endpoint, out of range or with a stepwise strategy.
        UpdateRolledBack: an alarm tripped during the update; the old config serves again.
    """
    configs = EndpointStore(store)
    variant = Variant(name=f"v{version}", model_group=group, model_version=version)
    what = f"deploy {group} version {version}"
    started = time.monotonic()
    created = not configs.exists(endpoint)
    if weight is not None:
        check_beside(endpoint, weight, created, policy or UpdatePolicy())
    if not created:
        running = servers.start(store, endpoint, host, port, timeout=timeout, options=server)
        if capture is not None:  # the rollout's configs carry it on (EndpointStore.update)
            reason = f"data capture: {capture.percent:g}% to {capture.destination}"
            configs.update(
                endpoint, lambda c: c.model_copy(update={"capture": capture, "reason": reason})
            )
        update = BlueGreen(configs, running, policy or UpdatePolicy(), progress=progress)
        if weight is not None:
            final = update.beside(variant, weight, what)
        else:
            final = update.run(variant, what)
    else:
        first = EndpointConfig(endpoint=endpoint, variants=[variant], reason=what, capture=capture)
        final = configs.update(endpoint, lambda _: first)
        running = servers.start(store, endpoint, host, port, timeout=timeout, options=server)
    seconds = time.monotonic() - started
    return Deployment(endpoint, running.url, final.number, variant.name, seconds, created)


def check_beside(endpoint: str, weight: float, created: bool, policy: UpdatePolicy) -> None:
    """A deploy beside the live variants: of an endpoint that has some, at a share strictly
    between 0 and 1, not also a stepwise shift of all the traffic.

    Raises:
        ServingError: naming what does not fit.
    """
    if not 0 < weight < 1:
        raise ServingError(
            f"--weight {weight:g}: the new variant's share of the traffic must be between 0 "
            "and 1 (1, all of it, is a plain deploy: leave --weight out)"
        )
    if created:
        raise ServingError(
            f"endpoint {endpoint!r} does not exist yet: its first version serves all the "
            "traffic (deploy without --weight, then deploy the next one beside it)"
        )
    if policy.strategy != "ALL_AT_ONCE":
        raise ServingError(
            f"--weight deploys beside the live variants and keeps them; --strategy "
            f"{policy.strategy} shifts all the traffic to the new one: choose one"
        )


def delete(store: Store, endpoint: str) -> bool:
    """Stop the endpoint's server and retire its config (the history stays in the store). A
    server running without a stored config (someone removed it) is stopped all the same.

    Returns whether a server was running.

    Raises:
        EndpointNotFound: there is neither a stored config nor a server of that name.
    """
    was_running = servers.stop(store, endpoint)
    servers.forget_port(store, endpoint)  # a new endpoint of this name starts afresh
    configs = EndpointStore(store)
    if was_running and not configs.exists(endpoint):
        return True
    configs.delete(endpoint)
    return was_running
