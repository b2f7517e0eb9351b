"""The endpoint's counters: requests are tallied per worker and published on flush."""

from __future__ import annotations

import itertools
import math

from prometheus_client import REGISTRY, generate_latest

from serving.control import scrapes
from serving.dataplane import instrumentation

_names = itertools.count()


def scrape() -> dict[str, scrapes.VariantCounters]:
    return scrapes.parse(generate_latest(REGISTRY).decode())


def test_tallied_requests_reach_the_counters_and_buckets_on_flush():
    variant = f"tally-{next(_names)}"
    answered = [(0.0005, 200), (0.003, 200), (0.003, 404), (0.005, 200), (20.0, 500)]
    for seconds, status in answered:
        instrumentation.observe(variant, status, seconds)
    assert variant not in scrape()  # nothing published before the flush

    instrumentation.flush()
    counters = scrape()[variant]
    assert (counters.invocations, counters.errors_5xx) == (5, 1)
    cumulative = dict(counters.buckets)
    # A bucket counts the requests at or under its bound, as Histogram.observe would.
    assert (cumulative[0.001], cumulative[0.0025], cumulative[0.005]) == (1, 1, 4)
    assert (cumulative[10.0], cumulative[math.inf]) == (4, 5)
    text = generate_latest(REGISTRY).decode()
    assert f'skiff_invocation_4xx_errors_total{{variant="{variant}"}} 1.0' in text
    assert f'skiff_model_latency_seconds_sum{{variant="{variant}"}} 20.0115' in text

    instrumentation.observe(variant, 200, 0.002)
    instrumentation.flush()
    assert scrape()[variant].invocations == 6  # added to, not replaced
    instrumentation.flush()  # nothing new: nothing changes
    assert scrape()[variant].invocations == 6
