"""An endpoint's variants side by side, from its server's own counters: what an A/B test is
judged by (``skiff endpoints compare``).

One scrape gives each variant's figures since the server started; with a window, two scrapes
that far apart give the figures of the requests in between.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from core.records.endpoints import EndpointConfig
from serving.contract import UNROUTED
from serving.control import scrapes
from serving.control.servers import RunningEndpoint


@dataclass(frozen=True)
class VariantFigures:
    variant: str
    model: str  # what it serves, for people ("bank-marketing:3"); "(not live)" if dropped
    share: float  # of the traffic, by the current config's weights
    requests: int
    errors_4xx: int
    errors_5xx: int
    p50_ms: float | None  # interpolated within the latency histogram's buckets
    p99_ms: float | None
    mean_score: float | None  # over every score answered (one a row)

    def as_dict(self) -> dict:
        return asdict(self)


def figures(
    config: EndpointConfig, counters: dict[str, scrapes.VariantCounters]
) -> list[VariantFigures]:
    """The config's variants in its order, then any others the counters still hold (dropped
    since the server started)."""
    shares = config.shares()
    live = {v.name: (v.source, shares[v.name]) for v in config.variants}
    dropped = sorted(set(counters) - set(live) - {UNROUTED})
    rows = []
    for name in [*live, *dropped]:
        source, share = live.get(name, ("(not live)", 0.0))
        c = counters.get(name, scrapes.VariantCounters())
        p50, p99 = c.estimate(0.5), c.estimate(0.99)
        rows.append(
            VariantFigures(
                variant=name,
                model=source,
                share=share,
                requests=int(c.invocations),
                errors_4xx=int(c.errors_4xx),
                errors_5xx=int(c.errors_5xx),
                p50_ms=None if p50 is None else 1000 * p50,
                p99_ms=None if p99 is None else 1000 * p99,
                mean_score=c.mean_score,
            )
        )
    return rows


def compare(
    server: RunningEndpoint,
    config: EndpointConfig,
    window: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[VariantFigures]:
    """Each variant's figures since the server started, or over the next ``window`` seconds."""
    if window is None:
        return figures(config, scrapes.scrape(server))
    before = scrapes.scrape(server)
    sleep(window)
    after = scrapes.scrape(server)
    return figures(
        config, {name: c - before.get(name, scrapes.VariantCounters()) for name, c in after.items()}
    )
