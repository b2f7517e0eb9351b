"""The server's own counters, per variant, summed across its worker processes.

prometheus_client's multiprocess mode keeps each process's values in memory-mapped files under
``$PROMETHEUS_MULTIPROC_DIR``, and a scrape of any worker sums them all: one ``/metrics`` sees
the whole server, and so do the update alarms that read it. The server sets that folder before
this module is first imported (``serving/server.py``).
"""

from __future__ import annotations

import asyncio
import bisect
import functools
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.parser import text_string_to_metric_families

CONTENT_TYPE = CONTENT_TYPE_LATEST
UNROUTED = "-"  # the variant label of a request refused before a variant was chosen
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

INVOCATIONS = Counter("skiff_invocations", "requests answered, by variant", ["variant"])
ERRORS_4XX = Counter("skiff_invocation_4xx_errors", "requests refused as bad", ["variant"])
ERRORS_5XX = Counter("skiff_invocation_5xx_errors", "requests failed by the server", ["variant"])
LATENCY = Histogram(
    "skiff_model_latency_seconds", "time from request to response", ["variant"], buckets=BUCKETS
)
MODEL_LOAD = Gauge(
    "skiff_model_load_seconds",
    "time to load and warm up the variant's model",
    ["variant"],
    multiprocess_mode="max",
)


FLUSH_SECONDS = 0.25  # how stale another worker's counters may be in a scrape


@functools.cache
def _series(variant: str) -> tuple[Any, Any, Any, Any]:
    """One variant's children, looked up once: ``labels()`` costs as much as the increment."""
    return (
        INVOCATIONS.labels(variant),
        LATENCY.labels(variant),
        ERRORS_4XX.labels(variant),
        ERRORS_5XX.labels(variant),
    )


@dataclass
class _Pending:
    """One variant's requests since the last flush, in plain Python numbers."""

    count: int = 0
    seconds: float = 0.0
    errors_4xx: int = 0
    errors_5xx: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))  # +Inf last


# Requests are tallied here and written to the shared files a few times a second: each write
# to a memory-mapped value takes a lock and packs bytes, and the four per request were ~5% of
# the server's CPU at 64 connections.
_pending: dict[str, _Pending] = {}


def observe(variant: str, status: int, seconds: float) -> None:
    """Count one answered request (on the event loop; ``flush`` publishes it)."""
    pending = _pending.get(variant)
    if pending is None:
        pending = _pending[variant] = _Pending()
    pending.count += 1
    pending.seconds += seconds
    pending.buckets[bisect.bisect_left(BUCKETS, seconds)] += 1  # the first bound >= seconds
    if 400 <= status < 500:
        pending.errors_4xx += 1
    elif status >= 500:
        pending.errors_5xx += 1


def flush() -> None:
    """Add the tallied requests to the counters every worker's scrape sums."""
    global _pending
    tallied, _pending = _pending, {}
    for variant, pending in tallied.items():
        invocations, latency, errors_4xx, errors_5xx = _series(variant)
        invocations.inc(pending.count)
        # prometheus_client's Histogram takes one observation at a time: add the tallies to
        # its sum and bucket values (private attributes; tests/test_metrics.py checks the
        # exposition they give, so an upgrade that moves them fails there).
        latency._sum.inc(pending.seconds)
        for bucket, count in zip(latency._buckets, pending.buckets, strict=True):
            if count:
                bucket.inc(count)
        if pending.errors_4xx:
            errors_4xx.inc(pending.errors_4xx)
        if pending.errors_5xx:
            errors_5xx.inc(pending.errors_5xx)


async def flush_forever(every: float = FLUSH_SECONDS) -> None:
    """The server's flusher: runs on the event loop, like ``observe``, so needs no lock."""
    try:
        while True:
            await asyncio.sleep(every)
            flush()
    finally:
        flush()  # shutting down: publish what is left


def exposition() -> bytes:
    """Every worker's counters, summed, in Prometheus' text format."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)


# -- reading them back (the update alarms) ---------------------------------------------------
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

    def quantile(self, q: float) -> float:
        """The bucket bound under which a fraction ``q`` of the window's requests finished."""
        total = self.buckets[-1][1] if self.buckets else 0.0
        for bound, count in self.buckets:
            if total and count >= q * total:
                return bound
        return 0.0


def parse(text: str) -> dict[str, VariantCounters]:
    """Variant name → its counters, from a ``/metrics`` scrape."""
    found: dict[str, dict] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            variant = sample.labels.get("variant")
            if variant is None:
                continue
            entry = found.setdefault(variant, {"invocations": 0.0, "errors_5xx": 0.0, "b": {}})
            if sample.name == "skiff_invocations_total":
                entry["invocations"] = sample.value
            elif sample.name == "skiff_invocation_5xx_errors_total":
                entry["errors_5xx"] = sample.value
            elif sample.name == "skiff_model_latency_seconds_bucket":
                entry["b"][float(sample.labels["le"])] = sample.value
    return {
        name: VariantCounters(e["invocations"], e["errors_5xx"], tuple(sorted(e["b"].items())))
        for name, e in found.items()
    }
