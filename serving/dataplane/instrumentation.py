"""The server's own counters, per variant, summed across its worker processes.

prometheus_client's multiprocess mode keeps each process's values in memory-mapped files under
``$PROMETHEUS_MULTIPROC_DIR``, and a scrape of any worker sums them all: one ``/metrics`` sees
the whole server, and so do the update alarms that read it (``serving.control.scrapes``).
The server sets that folder before this module is first imported (``server.py``). The names
are ``serving.contract``'s.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from serving import contract

CONTENT_TYPE = CONTENT_TYPE_LATEST
UNROUTED = contract.UNROUTED
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
FLUSH_SECONDS = 0.25  # how stale another worker's counters may be in a scrape
SMALL = 64  # scores summed in Python up to this many (numpy's call costs more below)

INVOCATIONS = Counter(contract.INVOCATIONS, "requests answered, by variant", ["variant"])
ERRORS_4XX = Counter(contract.ERRORS_4XX, "requests refused as bad", ["variant"])
ERRORS_5XX = Counter(contract.ERRORS_5XX, "requests failed by the server", ["variant"])
LATENCY = Histogram(contract.LATENCY, "time from request to response", ["variant"], buckets=BUCKETS)
MODEL_INVOCATIONS = Counter(
    contract.MODEL_INVOCATIONS, "requests that parsed and reached a model", ["variant"]
)
MODEL_ERRORS_5XX = Counter(
    contract.MODEL_ERRORS_5XX, "requests that parsed, then failed in the server", ["variant"]
)
ALARM_LATENCY = Histogram(
    contract.ALARM_LATENCY,
    "time from request to response of parsed requests of at most alarm_max_rows rows",
    ["variant"],
    buckets=BUCKETS,
)
SCORES = Counter(contract.SCORES, "scores answered (one a row)", ["variant"])
SCORE_SUM = Counter(contract.SCORE_SUM, "sum of the scores answered", ["variant"])
MODEL_LOAD = Gauge(
    contract.MODEL_LOAD,
    "time to load and warm up the variant's model",
    ["variant"],
    multiprocess_mode="max",
)
SERVING_CONFIG = Gauge(contract.CONFIG_SERVED, "config served", multiprocess_mode="livemin")
FAILED_CONFIG = Gauge(
    contract.CONFIG_FAILED, "config that failed to load", multiprocess_mode="livemax"
)
READY = Gauge(contract.WORKERS_READY, "workers serving a config", multiprocess_mode="livesum")
WORKER_GAUGES = (contract.CONFIG_SERVED, contract.CONFIG_FAILED, contract.WORKERS_READY)


def config_served(number: int) -> None:
    SERVING_CONFIG.set(number)
    FAILED_CONFIG.set(0)
    READY.set(1)


def config_failed(number: int) -> None:
    FAILED_CONFIG.set(number)


def model_loaded(variant: str, seconds: float) -> None:
    MODEL_LOAD.labels(variant).set(seconds)


@functools.cache
def _series(variant: str) -> tuple[Any, ...]:
    """One variant's children, looked up once: ``labels()`` costs as much as the increment."""
    return tuple(
        metric.labels(variant)
        for metric in (
            INVOCATIONS,
            LATENCY,
            ERRORS_4XX,
            ERRORS_5XX,
            MODEL_INVOCATIONS,
            MODEL_ERRORS_5XX,
            ALARM_LATENCY,
            SCORES,
            SCORE_SUM,
        )
    )


def _no_buckets() -> list[int]:
    return [0] * (len(BUCKETS) + 1)  # +Inf last


@dataclass
class _Pending:
    """One variant's requests since the last flush, in plain Python numbers."""

    count: int = 0
    seconds: float = 0.0
    errors_4xx: int = 0
    errors_5xx: int = 0
    buckets: list[int] = field(default_factory=_no_buckets)
    parsed: int = 0
    parsed_5xx: int = 0
    watched_seconds: float = 0.0
    watched_buckets: list[int] = field(default_factory=_no_buckets)
    scores: int = 0
    score_sum: float = 0.0


# Requests are tallied here and written to the shared files a few times a second: each write
# to a memory-mapped value takes a lock and packs bytes, and the four per request were ~5% of
# the server's CPU at 64 connections.
_pending: dict[str, _Pending] = {}


def observe(
    variant: str,
    status: int,
    seconds: float,
    rows: int = 0,
    alarm_max_rows: int = 0,
    scores: np.ndarray | None = None,
) -> None:
    """Count one answered request of ``rows`` parsed rows (0: it did not parse) and the
    ``scores`` it was answered with; on the event loop, ``flush`` publishes it."""
    pending = _pending.get(variant)
    if pending is None:
        pending = _pending[variant] = _Pending()
    pending.count += 1
    pending.seconds += seconds
    bucket = bisect.bisect_left(BUCKETS, seconds)  # the first bound >= seconds
    pending.buckets[bucket] += 1
    if 400 <= status < 500:
        pending.errors_4xx += 1
    elif status >= 500:
        pending.errors_5xx += 1
    if rows:  # it parsed: the model's doing from here on
        pending.parsed += 1
        if status >= 500:
            pending.parsed_5xx += 1
        if rows <= alarm_max_rows:
            pending.watched_seconds += seconds
            pending.watched_buckets[bucket] += 1
    if scores is not None and scores.ndim == 1:  # a score a row: their mean means something
        pending.scores += len(scores)
        # numpy's sum costs ~1.6 µs whatever the size (3% of a one-row request's CPU);
        # a few Python floats add up ten times faster.
        small = len(scores) <= SMALL
        pending.score_sum += sum(scores.tolist()) if small else float(np.add.reduce(scores))


def flush() -> None:
    """Add the tallied requests to the counters every worker's scrape sums."""
    global _pending
    tallied, _pending = _pending, {}
    for variant, pending in tallied.items():
        series = _series(variant)
        invocations, latency, errors_4xx, errors_5xx, parsed, parsed_5xx, watched, *rest = series
        scores, score_sum = rest
        invocations.inc(pending.count)
        if pending.scores:
            scores.inc(pending.scores)
            score_sum.inc(pending.score_sum)
        _add(latency, pending.seconds, pending.buckets)
        _add(watched, pending.watched_seconds, pending.watched_buckets)
        for counter, count in (
            (errors_4xx, pending.errors_4xx),
            (errors_5xx, pending.errors_5xx),
            (parsed, pending.parsed),
            (parsed_5xx, pending.parsed_5xx),
        ):
            if count:
                counter.inc(count)


def _add(histogram: Any, seconds: float, buckets: list[int]) -> None:
    """Tallied observations into one histogram child. prometheus_client's Histogram takes one
    observation at a time: the tallies go to its sum and bucket values (private attributes;
    tests/serving/test_instrumentation.py checks the exposition they give, so an upgrade that
    moves them fails there)."""
    histogram._sum.inc(seconds)
    for bucket, count in zip(histogram._buckets, buckets, strict=True):
        if count:
            bucket.inc(count)


async def flush_forever(every: float = FLUSH_SECONDS) -> None:
    """The server's flusher: runs on the event loop, like ``observe``, so needs no lock."""
    try:
        while True:
            await asyncio.sleep(every)
            flush()
    finally:
        flush()  # shutting down: publish what is left


def _summed() -> CollectorRegistry:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def exposition() -> bytes:
    """Every worker's counters, summed, in Prometheus' text format."""
    return generate_latest(_summed())


def worker_gauges() -> dict[str, float]:
    """The config gauges over all workers (min served, max failed, how many ready)."""
    return {
        sample.name: sample.value
        for family in _summed().collect()
        if family.name in WORKER_GAUGES
        for sample in family.samples
    }
