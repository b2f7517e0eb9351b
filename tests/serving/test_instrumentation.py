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


def test_alarms_see_only_parsed_requests_and_latency_up_to_the_row_cap():
    """Item 2 of hardening part 1: what clients send never drives an update's alarms."""
    variant = f"watched-{next(_names)}"
    cap = 100
    answered = [
        (0.002, 200, 1),  # parsed, small: watched
        (0.004, 500, 3),  # parsed, then the model failed: a model error, watched
        (9.0, 200, 10_000),  # a huge batch: counted, its latency not watched
        (0.001, 400, 0),  # refused before parsing: a client error only
        (7.0, 408, 0),  # a body that never came: a client error only
        (5.0, 504, 0),  # timed out before it parsed: not the model's doing
    ]
    for seconds, status, rows in answered:
        instrumentation.observe(variant, status, seconds, rows, cap)
    instrumentation.flush()
    every = scrape()[variant]
    assert (every.invocations, every.errors_5xx, every.timed) == (6, 2, 6)
    watched = scrapes.parse(generate_latest(REGISTRY).decode(), watched=True)[variant]
    assert (watched.invocations, watched.errors_5xx, watched.timed) == (3, 1, 2)
    assert watched.error_rate == 1 / 3 and watched.quantile(0.99) == 0.005


def test_a_scrape_of_an_earlier_server_without_watched_series_reads_every_request():
    earlier = (
        'skiff_invocations_total{variant="v1"} 4.0\n'
        'skiff_invocation_5xx_errors_total{variant="v1"} 1.0\n'
        'skiff_model_latency_seconds_bucket{le="0.01",variant="v1"} 4.0\n'
        'skiff_model_latency_seconds_bucket{le="+Inf",variant="v1"} 4.0\n'
    )
    v1 = scrapes.parse(earlier, watched=True)["v1"]
    assert (v1.invocations, v1.errors_5xx, v1.timed) == (4, 1, 4)
