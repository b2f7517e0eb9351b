"""SageMaker's endpoint updates over Skiff's blue/green rollouts: UpdateEndpoint (its
DeploymentConfig mapped onto ``serving.control.rollouts.UpdatePolicy``, run as a flow run of
its own) and UpdateEndpointWeightsAndCapacities (weights changed without a reload).

How DeploymentConfig maps:
- ``TrafficRoutingConfiguration.Type`` ALL_AT_ONCE / CANARY / LINEAR is the strategy;
  ``WaitIntervalInSeconds`` the baking time after each step; ``CanarySize`` and
  ``LinearStepSize`` as ``CAPACITY_PERCENT`` are the new variant's share of traffic (100: all
  at once), as ``INSTANCE_COUNT`` counted against its InitialInstanceCount;
  ``TerminationWaitInSeconds`` how long the old variant stays loaded; the whole update must
  fit ``MaximumExecutionTimeoutInSeconds`` (checked before it starts).
- ``AutoRollbackConfiguration.Alarms``: Skiff's own alarms on the new variant, by name:
  ``skiff-5xx-rate-<percent>`` (at most that share of 5xx answers) and
  ``skiff-p99-latency-<ms>`` (p99 latency at most that); any other name is refused.
- No DeploymentConfig: SageMaker's default, all at once.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from core.errors import ServingError, describe_invalid
from core.records.endpoints import EndpointStore
from core.records.hosting import HostedEndpoint, HostingStore
from flows.api.context import ApiContext
from flows.api.endpoints import KIND, endpoint_status
from flows.api.errors import invalid
from flows.api.hosting import named_config
from flows.api.launch import start_flow
from flows.api.shapes import refuse_unsupported
from serving.control import rollouts, servers
from serving.control.rollouts import Alarms, UpdatePolicy

BLUE_GREEN = "DeploymentConfig.BlueGreenUpdatePolicy"
HONOURED = frozenset({
    "EndpointName", "EndpointConfigName",
    f"{BLUE_GREEN}.TrafficRoutingConfiguration", f"{BLUE_GREEN}.TerminationWaitInSeconds",
    f"{BLUE_GREEN}.MaximumExecutionTimeoutInSeconds",
    "DeploymentConfig.AutoRollbackConfiguration.Alarms",
})  # fmt: skip
ACCEPTED = frozenset({"RetainAllVariantProperties", "ExcludeRetainedVariantProperties",
                      "RetainDeploymentConfig"})  # fmt: skip
ALARM = re.compile(r"^skiff-(?:(?P<rate>5xx-rate)-(?P<pct>\d+(\.\d+)?)|p99-latency-(?P<ms>\d+))$")


def update_policy(config: dict[str, Any], instances: int) -> UpdatePolicy:
    """SageMaker's DeploymentConfig as Skiff's update policy.

    Raises:
        ApiError: a value Skiff cannot honour, naming it.
    """
    blue_green = config.get("BlueGreenUpdatePolicy", {})
    routing = blue_green.get("TrafficRoutingConfiguration", {"Type": "ALL_AT_ONCE"})
    strategy = routing["Type"]
    policy: dict[str, Any] = {"strategy": strategy}
    policy["wait_seconds"] = routing.get("WaitIntervalInSeconds", 0)
    policy["termination_wait_seconds"] = blue_green.get("TerminationWaitInSeconds", 0)
    size = routing.get({"CANARY": "CanarySize", "LINEAR": "LinearStepSize"}.get(strategy, ""))
    if strategy in ("CANARY", "LINEAR"):
        if size is None:
            raise invalid(
                f"{strategy} needs {'CanarySize' if strategy == 'CANARY' else 'LinearStepSize'}"
            )
        share = size["Value"] / (100 if size["Type"] == "CAPACITY_PERCENT" else instances)
        if share >= 1:
            policy["strategy"] = "ALL_AT_ONCE"
        else:
            policy["canary_size" if strategy == "CANARY" else "linear_step"] = share
    alarms: dict[str, Any] = {}
    for alarm in config.get("AutoRollbackConfiguration", {}).get("Alarms", []):
        found = ALARM.match(alarm["AlarmName"])
        if not found:
            raise invalid(
                f"alarm {alarm['AlarmName']!r} is not one of Skiff's: skiff-5xx-rate-<percent> "
                "or skiff-p99-latency-<ms>"
            )
        if found["rate"]:
            alarms["max_error_rate"] = float(found["pct"]) / 100
        else:
            alarms["max_p99_ms"] = float(found["ms"])
    try:
        made = UpdatePolicy(**policy, alarms=Alarms(**alarms))
    except ValidationError as exc:
        raise invalid(f"DeploymentConfig: {describe_invalid(exc)}") from None
    limit = blue_green.get("MaximumExecutionTimeoutInSeconds")
    planned = made.wait_seconds * len(made.shares()) + made.termination_wait_seconds
    if limit is not None and planned > limit:
        raise invalid(
            f"MaximumExecutionTimeoutInSeconds {limit} is shorter than the update's baking and "
            f"termination waits ({planned:g} s)"
        )
    return made


def update_endpoint(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    refuse_unsupported("UpdateEndpoint", p, HONOURED, ACCEPTED)
    name, config_name = p["EndpointName"], p["EndpointConfigName"]
    state = endpoint_status(ctx, name)
    if state.status != "InService":
        raise invalid(f'Cannot update in-progress endpoint "{ctx.arn(KIND, name)}".')
    named = named_config(ctx, config_name)
    instances = max(v.instance_count for v in named.variants)
    policy = update_policy(p.get("DeploymentConfig", {}), instances)
    if len(named.variants) > 1 and policy.strategy != "ALL_AT_ONCE":
        raise invalid(
            f"{policy.strategy} shifts traffic to one new variant; {config_name} has "
            f"{len(named.variants)} (give it one, or update ALL_AT_ONCE)"
        )
    hosting, current = HostingStore(ctx.store), state.current
    record = state.record or HostedEndpoint(
        name=name, config_name=f"{name}-config-{current.number}", created_at=current.created_at
    )
    arguments = [ctx.store.root, name, config_name, "--policy", policy.model_dump_json()]
    hosting.save_endpoint(record.model_copy(update={"updating_to": config_name}))
    pid = start_flow(
        "flows.api.endpoint_flow", arguments, f"{name}-update.log", ctx.store, ctx.child_env
    )
    current_record = hosting.endpoint(name)
    if current_record is not None and current_record.updating_to == config_name:
        hosting.save_endpoint(current_record.model_copy(update={"update_pid": pid}))
    return {"EndpointArn": ctx.arn(KIND, name)}


def update_weights_and_capacities(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    name = p["EndpointName"]
    state = endpoint_status(ctx, name)
    workers = state.workers
    if state.status != "InService":
        raise invalid(f'Cannot update in-progress endpoint "{ctx.arn(KIND, name)}".')
    weights = {}
    for desired in p["DesiredWeightsAndCapacities"]:
        if "ServerlessUpdateConfig" in desired:
            raise invalid("ServerlessUpdateConfig is not supported by Skiff")
        count = desired.get("DesiredInstanceCount")
        if count is not None and count != workers:
            raise invalid(
                f"DesiredInstanceCount {count} for {desired['VariantName']}: the endpoint's "
                f"server runs {workers} worker(s) for all variants; changing that needs a new "
                "server (skiff endpoints stop, then start --server-workers N): not supported"
            )
        if "DesiredWeight" in desired:
            weights[desired["VariantName"]] = desired["DesiredWeight"]
    try:
        rollouts.set_weights(
            EndpointStore(ctx.store), name, weights, servers.running(ctx.store, name)
        )
    except (ServingError, ValidationError) as exc:
        raise invalid(str(exc)) from None
    return {"EndpointArn": ctx.arn(KIND, name)}


OPERATIONS = {
    "UpdateEndpoint": update_endpoint,
    "UpdateEndpointWeightsAndCapacities": update_weights_and_capacities,
}
