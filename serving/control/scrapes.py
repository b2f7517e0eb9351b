"""Reading a server's ``/metrics`` back: one variant's counters, for the update alarms."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from serving import contract


@dataclass(frozen=True)
class VariantCounters:
    """One variant's counters at one moment; subtract two to get a window."""

    invocations: float = 0.0
    errors_5xx: float = 0.0
    buckets: tuple[tuple[float, float], ...] = ()  # (upper bound, cumulative count)

    def __sub__(self, earlier: VariantCounters) -> VariantCounters:
        before = dict(earlier.buckets)
        return VariantCounters(
            self.invocations - earlier.invocations,
            self.errors_5xx - earlier.errors_5xx,
            tuple((le, n - before.get(le, 0.0)) for le, n in self.buckets),
        )

    @property
    def error_rate(self) -> float:
        return self.errors_5xx / self.invocations if self.invocations else 0.0

    @property
    def timed(self) -> float:
        """How many requests the latency buckets hold."""
        return self.buckets[-1][1] if self.buckets else 0.0

    def quantile(self, q: float) -> float:
        """The bucket bound under which a fraction ``q`` of the window's requests finished."""
        total = self.timed
        for bound, count in self.buckets:
            if total and count >= q * total:
                return bound
        return 0.0


# Which series each view reads: every answered request, or what the update alarms watch
# (requests that parsed; latency of those of at most alarm_max_rows rows).
_ALL = (contract.INVOCATIONS, contract.ERRORS_5XX, contract.LATENCY)
_WATCHED = (contract.MODEL_INVOCATIONS, contract.MODEL_ERRORS_5XX, contract.ALARM_LATENCY)


def parse(text: str, watched: bool = False) -> dict[str, VariantCounters]:
    """Variant name → its counters, from a ``/metrics`` scrape: of every answered request,
    or (``watched``) of those the update alarms judge by. A server of an earlier Skiff has no
    watched series: its view of every request is all there is."""
    families = list(text_string_to_metric_families(text))
    names = {family.name for family in families}
    invocations, errors, latency = _WATCHED if watched and _WATCHED[0] in names else _ALL
    found: dict[str, dict] = {}
    for family in families:
        for sample in family.samples:
            variant = sample.labels.get("variant")
            if variant is None:
                continue
            entry = found.setdefault(variant, {"invocations": 0.0, "errors_5xx": 0.0, "b": {}})
            if sample.name == f"{invocations}_total":
                entry["invocations"] = sample.value
            elif sample.name == f"{errors}_total":
                entry["errors_5xx"] = sample.value
            elif sample.name == f"{latency}_bucket":
                entry["b"][float(sample.labels["le"])] = sample.value
    return {
        name: VariantCounters(e["invocations"], e["errors_5xx"], tuple(sorted(e["b"].items())))
        for name, e in found.items()
    }
