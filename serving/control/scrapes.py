"""Reading a server's ``/metrics`` back: each variant's counters, for the update alarms and
for comparing variants (``skiff endpoints compare``)."""

from __future__ import annotations

from dataclasses import dataclass, fields

import httpx
from prometheus_client.parser import text_string_to_metric_families

from serving import contract
from serving.control.servers import RunningEndpoint


@dataclass(frozen=True)
class VariantCounters:
    """One variant's counters at one moment; subtract two to get a window."""

    invocations: float = 0.0
    errors_5xx: float = 0.0
    buckets: tuple[tuple[float, float], ...] = ()  # (upper bound, cumulative count)
    errors_4xx: float = 0.0
    scores: float = 0.0  # how many scores were answered (one a row)
    score_sum: float = 0.0

    def __sub__(self, earlier: VariantCounters) -> VariantCounters:
        before = dict(earlier.buckets)
        counts = {
            f.name: getattr(self, f.name) - getattr(earlier, f.name)
            for f in fields(self)
            if f.name != "buckets"
        }
        buckets = tuple((le, n - before.get(le, 0.0)) for le, n in self.buckets)
        return VariantCounters(**counts, buckets=buckets)

    @property
    def mean_score(self) -> float | None:
        return self.score_sum / self.scores if self.scores else None

    @property
    def error_rate(self) -> float:
        return self.errors_5xx / self.invocations if self.invocations else 0.0

    @property
    def timed(self) -> float:
        """How many requests the latency buckets hold."""
        return self.buckets[-1][1] if self.buckets else 0.0

    def quantile(self, q: float) -> float:
        """The bucket bound under which a fraction ``q`` of the window's requests finished
        (an upper bound: what an alarm judges by)."""
        total = self.timed
        for bound, count in self.buckets:
            if total and count >= q * total:
                return bound
        return 0.0

    def estimate(self, q: float) -> float | None:
        """The ``q`` quantile, interpolated within its bucket as Prometheus'
        ``histogram_quantile`` does (what people compare); None with no requests. In the
        last, unbounded bucket it is the highest finite bound."""
        total = self.timed
        if not total:
            return None
        wanted, lower, below = q * total, 0.0, 0.0
        for bound, count in self.buckets:
            if count >= wanted:
                if bound == float("inf"):
                    return lower
                inside = count - below
                return lower + (bound - lower) * ((wanted - below) / inside if inside else 1.0)
            lower, below = bound, count
        return lower


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
    counted = {
        f"{invocations}_total": "invocations",
        f"{errors}_total": "errors_5xx",
        f"{contract.ERRORS_4XX}_total": "errors_4xx",
        f"{contract.SCORES}_total": "scores",
        f"{contract.SCORE_SUM}_total": "score_sum",
    }
    found: dict[str, dict] = {}
    buckets: dict[str, dict[float, float]] = {}
    for family in families:
        for sample in family.samples:
            variant = sample.labels.get("variant")
            if variant is None:
                continue
            entry = found.setdefault(variant, {})
            if sample.name in counted:
                entry[counted[sample.name]] = sample.value
            elif sample.name == f"{latency}_bucket":
                buckets.setdefault(variant, {})[float(sample.labels["le"])] = sample.value
    return {
        name: VariantCounters(**e, buckets=tuple(sorted(buckets.get(name, {}).items())))
        for name, e in found.items()
    }


def scrape(server: RunningEndpoint, watched: bool = False) -> dict[str, VariantCounters]:
    """One ``/metrics`` scrape of ``server``, parsed (see ``parse``)."""
    response = httpx.get(f"{server.url}/metrics", timeout=10, **server.http_options())
    response.raise_for_status()
    return parse(response.text, watched)
