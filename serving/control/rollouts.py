"""Blue/green updates of a running endpoint, as SageMaker's DeploymentConfig does them.

The new variant (green) joins the old ones (blue) in one config and takes a growing share of
the traffic: all at once, a canary share first, or linear steps. After each step the update
bakes for ``wait_seconds`` while alarms watch the new variant through the server's own
counters (``/metrics``: the 5xx rate of the requests that parsed, and the p99 latency of those
of at most ``alarm_max_rows`` rows: a client's bad or huge requests cannot trip them). A
tripped alarm, or a model that fails to load, puts the old config back. Once green has all the
traffic, blue stays loaded (at weight 0) for ``termination_wait_seconds`` so that a rollback is
instant, and is then dropped; unless someone changed the endpoint's weights meanwhile (an A/B
test begun during the wait): their config stands.

An A/B test adds a variant *beside* the live ones instead (``BlueGreen.beside``): it takes a
share of the traffic and keeps it, with the same baking and alarms; ``promote`` then gives one
variant all the traffic, ``remove`` drops one, and ``set_weights`` moves the shares.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from core.errors import ServingError, UpdateRolledBack
from core.records.endpoints import EndpointConfig, EndpointStore, Variant
from serving.control import scrapes, servers

logger = logging.getLogger(__name__)
Strategy = Literal["ALL_AT_ONCE", "CANARY", "LINEAR"]
ALARM_POLL = 0.25
PROGRESS_EVERY = 5.0  # seconds between the baking's progress lines


class Alarms(BaseModel):
    """Limits on the new variant during baking; a breach rolls the update back."""

    max_error_rate: float = Field(
        0.05, ge=0, le=1, description="most 5xx per request the new variant may answer"
    )
    max_p99_ms: float = Field(1000, gt=0, description="highest p99 latency of the new variant")
    min_requests: int = Field(
        10,
        ge=1,
        description="requests the new variant must have answered (that parsed) before an "
        "alarm judges",
    )


class UpdatePolicy(BaseModel):
    """How a new model version replaces the live one."""

    strategy: Strategy = Field("ALL_AT_ONCE", description="ALL_AT_ONCE, CANARY or LINEAR")
    canary_size: float = Field(0.1, gt=0, lt=1, description="CANARY: the first share of traffic")
    linear_step: float = Field(0.25, gt=0, lt=1, description="LINEAR: the share added per step")
    wait_seconds: float = Field(0, ge=0, le=86400, description="baking time after each step")
    termination_wait_seconds: float = Field(
        0, ge=0, le=86400, description="how long the old variant stays loaded after the shift"
    )
    alarms: Alarms = Field(default_factory=Alarms)

    @model_validator(mode="after")
    def _baking_for_stepwise(self) -> UpdatePolicy:
        if self.strategy != "ALL_AT_ONCE" and self.wait_seconds <= 0:
            raise ValueError(f"{self.strategy} needs a baking time: set wait_seconds > 0")
        return self

    @model_validator(mode="after")
    def _sizes_of_their_strategy(self) -> UpdatePolicy:
        """A step size another strategy would use is refused, not ignored (only a value
        other than the default: a form that sends every field sends the defaults)."""
        for field, strategy in (("canary_size", "CANARY"), ("linear_step", "LINEAR")):
            default = type(self).model_fields[field].default
            if self.strategy != strategy and getattr(self, field) != default:
                raise ValueError(
                    f"{field} is the {strategy} strategy's; with strategy {self.strategy} it "
                    f"would be ignored (set strategy {strategy}, or leave {field} out)"
                )
        return self

    def shares(self) -> list[float]:
        """The new variant's share of traffic after each step."""
        if self.strategy == "CANARY":
            return [self.canary_size, 1.0]
        if self.strategy == "LINEAR":
            steps = int(1 / self.linear_step - 1e-9)
            return [round(self.linear_step * (i + 1), 6) for i in range(steps)] + [1.0]
        return [1.0]


def with_share(
    blue: EndpointConfig, green: Variant, share: float, reason: str, transitional: bool = True
) -> EndpointConfig:
    """Blue's variants scaled to ``1 - share`` of the traffic, green given ``share`` (a
    variant of green's name among them is replaced). A step of an update is ``transitional``."""
    old = [v for v in blue.variants if v.name != green.name]
    total = sum(v.weight for v in old) or 1.0
    scaled = [
        v.model_copy(update={"weight": round((1 - share) * v.weight / total, 6)}) for v in old
    ]
    return EndpointConfig(
        endpoint=blue.endpoint,
        variants=[*scaled, green.model_copy(update={"weight": share})],
        reason=reason,
        transitional=transitional,
    )


class BlueGreen:
    """One update of one endpoint whose server runs on this machine."""

    def __init__(
        self,
        configs: EndpointStore,
        server: servers.RunningEndpoint,
        policy: UpdatePolicy,
        sleep: Callable[[float], None] = time.sleep,
        on_rollback: Callable[[str], None] | None = None,
        progress: Callable[[str], None] | None = None,
    ):
        self.configs, self.server, self.policy, self.sleep = configs, server, policy, sleep
        self.name = server.name
        self.on_rollback = on_rollback  # told why, before the old config is put back
        self.progress = progress  # told each step as it happens (a command prints them)

    def run(self, green: Variant, what: str, final_name: str | None = None) -> EndpointConfig:
        """Shift the traffic to ``green`` step by step; return the final config, in which
        green is named ``final_name`` if given (SageMaker code reuses a variant's name across
        configs: green shifts under a name of its own, then takes the old one).

        Raises:
            UpdateRolledBack: an alarm tripped or the model failed to load; the endpoint serves
                its old config again (the message says why).
        """
        blue = self.configs.current(self.name)
        strategy = self.policy.strategy
        for share in self.policy.shares():
            reason = f"{what}: {strategy} {share:.0%} to {green.name}"
            shifted = self._apply(with_share(blue, green, share, reason), blue)
            self._bake(green.name, blue)
        if self.policy.termination_wait_seconds:
            wait = self.policy.termination_wait_seconds
            self._say(f"the old variants stay loaded, at weight 0, for {wait:g} s")
        self.sleep(self.policy.termination_wait_seconds)  # blue stays loaded, at weight 0
        final = EndpointConfig(
            endpoint=self.name,
            variants=[green.model_copy(update={"weight": 1.0, "name": final_name or green.name})],
            reason=f"{what}: done, {green.name} serves all traffic",
        )
        done = self.configs.update_unless_changed(self.name, shifted.number, final)
        if done is None:  # weights set during the termination wait (an A/B test): kept
            kept = self.configs.current(self.name)
            self._say(
                f"config {kept.number} changed the weights during the termination wait; it "
                "stands (nothing dropped)"
            )
            return kept
        return self._serve(done, blue)

    def beside(self, green: Variant, share: float, what: str) -> EndpointConfig:
        """Add ``green`` beside the live variants at ``share`` of the traffic, the others
        keeping their proportions of the rest (an A/B test): a settled config, baked and
        watched by the alarms as an update's step is.

        Raises:
            UpdateRolledBack: an alarm tripped or the model failed to load; the endpoint
                serves its old config again.
        """
        blue = self.configs.current(self.name)
        reason = f"{what}: beside the live variants, {share:.0%} to {green.name}"
        config = self._apply(with_share(blue, green, share, reason, transitional=False), blue)
        self._bake(green.name, blue)
        return config

    def _apply(self, config: EndpointConfig, blue: EndpointConfig) -> EndpointConfig:
        return self._serve(self.configs.update(self.name, lambda _: config), blue)

    def _serve(self, published: EndpointConfig, blue: EndpointConfig) -> EndpointConfig:
        """Wait until the server serves ``published``; roll back to ``blue`` if it cannot."""
        try:
            servers.wait_for_config(self.server, published.number)
        except ServingError as exc:
            self._rollback(blue, f"config {published.number} could not be served: {exc}")
        self._say(f"config {published.number} live: {published.reason}")
        return published

    def _say(self, text: str, level: int = logging.INFO) -> None:
        logger.log(level, "%s: %s", self.name, text)
        if self.progress is not None:
            self.progress(text)

    def _bake(self, variant: str, blue: EndpointConfig) -> None:
        """Watch ``variant``'s counters for the baking time; roll back if an alarm trips."""
        alarms, started = self.policy.alarms, time.monotonic()
        if self.policy.wait_seconds <= 0:
            return
        self._say(
            f"baking {self.policy.wait_seconds:g} s: the alarms watch {variant} (5xx over "
            f"{alarms.max_error_rate:.0%}, p99 over {alarms.max_p99_ms:g} ms, once it has "
            f"answered {alarms.min_requests})"
        )
        baseline, said = self._counters(variant), started
        window = scrapes.VariantCounters()
        while time.monotonic() - started < self.policy.wait_seconds:
            self.sleep(min(ALARM_POLL, self.policy.wait_seconds))
            window = self._counters(variant) - baseline
            if time.monotonic() - said >= PROGRESS_EVERY:
                said = time.monotonic()
                self._say(f"alarms read: {_window_line(variant, window)}")
            judged = window.invocations >= alarms.min_requests
            if judged and window.error_rate > alarms.max_error_rate:
                self._rollback(
                    blue,
                    f"alarm: {variant} answered {window.errors_5xx:.0f} of "
                    f"{window.invocations:.0f} requests with 5xx "
                    f"(limit {alarms.max_error_rate:.1%})",
                )
            p99_ms = 1000 * window.quantile(0.99)
            if window.timed >= alarms.min_requests and p99_ms > alarms.max_p99_ms:
                self._rollback(
                    blue,
                    f"alarm: {variant} p99 latency {p99_ms:.0f} ms "
                    f"(limit {alarms.max_p99_ms:.0f} ms)",
                )
        self._say(f"baked: {_window_line(variant, window)}, no alarm")

    def _counters(self, variant: str) -> scrapes.VariantCounters:
        # What the alarms judge by: the model's failures and latency, never what clients send
        # (a malformed body or a huge batch aimed at the new variant must not roll it back).
        counters = scrapes.scrape(self.server, watched=True)
        return counters.get(variant, scrapes.VariantCounters())

    def _rollback(self, blue: EndpointConfig, why: str) -> None:
        if self.on_rollback is not None:
            self.on_rollback(why)
        back = restore(self.configs, blue, why)
        servers.wait_for_config(self.server, back.number)
        self._say(f"rolled back to the old variants (config {back.number}): {why}", logging.WARNING)
        raise UpdateRolledBack(f"endpoint {self.name!r} rolled back: {why}")


def _window_line(variant: str, window: scrapes.VariantCounters) -> str:
    p99 = f"p99 under {1000 * window.quantile(0.99):g} ms" if window.timed else "no latency yet"
    return (
        f"{variant} answered {window.invocations:.0f} requests, {window.errors_5xx:.0f} with "
        f"5xx, {p99}"
    )


def set_weights(
    configs: EndpointStore,
    name: str,
    weights: dict[str, float],
    server: servers.RunningEndpoint | None = None,
) -> EndpointConfig:
    """Change the traffic weights of existing variants, without loading anything new."""
    current = configs.current(name)
    _known(current, *weights)
    variants = [
        v.model_copy(update={"weight": weights.get(v.name, v.weight)}) for v in current.variants
    ]
    reason = "weights: " + ", ".join(f"{v.name}={v.weight:g}" for v in variants)
    wanted = EndpointConfig(endpoint=name, variants=variants, reason=reason)  # validates sums
    return publish(configs, wanted, server)


def promote(
    configs: EndpointStore,
    name: str,
    variant: str,
    server: servers.RunningEndpoint | None = None,
) -> EndpointConfig:
    """End an A/B test for ``variant``: it serves all the traffic, the others are dropped
    (it is loaded already: nothing new loads)."""
    current = configs.current(name)
    (winner,) = _known(current, variant)
    dropped = ", ".join(v.name for v in current.variants if v.name != variant) or "none"
    wanted = EndpointConfig(
        endpoint=name,
        variants=[winner.model_copy(update={"weight": 1.0})],
        reason=f"promote {variant}: it serves all traffic (dropped: {dropped})",
    )
    return publish(configs, wanted, server)


def remove(
    configs: EndpointStore,
    name: str,
    variant: str,
    server: servers.RunningEndpoint | None = None,
) -> EndpointConfig:
    """End an A/B test against ``variant``: it is dropped, the others share its traffic in
    their proportions."""
    current = configs.current(name)
    _known(current, variant)
    rest = [v for v in current.variants if v.name != variant]
    if not rest:
        raise ServingError(
            f"{variant} is endpoint {name!r}'s only variant; to stop serving it, delete the "
            f"endpoint (skiff endpoints delete {name})"
        )
    if sum(v.weight for v in rest) <= 0:
        raise ServingError(
            f"the other variants of {name!r} ({', '.join(v.name for v in rest)}) have weight "
            f"0; give one a weight first (skiff endpoints weights {name} {rest[0].name}=1)"
        )
    kept = ", ".join(v.name for v in rest)
    wanted = EndpointConfig(
        endpoint=name, variants=rest, reason=f"remove {variant} ({kept} serve on)"
    )
    return publish(configs, wanted, server)


def _known(config: EndpointConfig, *names: str) -> list[Variant]:
    """The variants of ``config`` named ``names``.

    Raises:
        ServingError: naming the unknown ones and the endpoint's variants.
    """
    by_name = {v.name: v for v in config.variants}
    unknown = sorted(set(names) - set(by_name))
    if unknown:
        raise ServingError(
            f"endpoint {config.endpoint!r} has no variant {', '.join(unknown)}; "
            f"its variants: {', '.join(by_name)}"
        )
    return [by_name[n] for n in names]


def rollback(
    configs: EndpointStore,
    name: str,
    to: int | None = None,
    server: servers.RunningEndpoint | None = None,
) -> EndpointConfig:
    """Serve an earlier config again: config ``to``, or else the last settled config (not a
    step of an update) whose traffic differs from the current one's."""
    current = configs.current(name)
    history = configs.history(name)
    if to is not None:
        matches = [c for c in history if c.number == to]
        if not matches:
            raise ServingError(f"endpoint {name!r} has no config {to} (1-{current.number})")
        target = matches[0]
    else:
        live = _traffic(current)
        earlier = [
            c
            for c in history
            if c.number < current.number and not c.transitional and _traffic(c) != live
        ]
        if not earlier:
            raise ServingError(f"endpoint {name!r} has no earlier config to roll back to")
        target = earlier[-1]
    restored = target.model_copy(
        update={"reason": f"rollback to config {target.number}", "transitional": False}
    )
    return publish(configs, restored, server)


def _traffic(config: EndpointConfig) -> set[tuple[str, tuple[str, ...], float]]:
    """Which models get traffic, and how much (variants at weight 0 serve nothing)."""
    shares = config.shares()
    return {(v.name, v.key, round(shares[v.name], 6)) for v in config.variants if v.weight > 0}


def publish(
    configs: EndpointStore, config: EndpointConfig, server: servers.RunningEndpoint | None
) -> EndpointConfig:
    """Publish ``config`` as the endpoint's current one, and wait until ``server`` serves it.
    A config the server rejects, or does not apply in time, does not stay published: the one
    before it is published again (a later poll of the server must not pick up a config its
    caller was told failed).

    Raises:
        ServingError: the server rejected it, or did not apply it in time.
    """
    before = configs.current(config.endpoint)
    published = configs.update(config.endpoint, lambda _: config)
    if server is None:
        return published
    try:
        servers.wait_for_config(server, published.number)
    except ServingError as exc:
        back = restore(configs, before, f"config {published.number} not served: {exc}")
        again = f"the variants of config {before.number} are published again (config {back.number})"
        try:
            servers.wait_for_config(server, back.number)
        except ServingError as second:
            again += f", not served either: {second}"
        raise ServingError(f"{exc}; {again}") from None
    return published


def restore(configs: EndpointStore, earlier: EndpointConfig, why: str) -> EndpointConfig:
    """Publish ``earlier``'s variants again as a settled config, saying why (a rollback)."""
    restored = earlier.model_copy(update={"reason": f"rollback: {why}", "transitional": False})
    return configs.update(earlier.endpoint, lambda _: restored)
