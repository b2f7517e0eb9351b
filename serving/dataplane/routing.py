"""The routing table: an endpoint's variants, their loaded models and traffic weights.

One immutable object: a hot swap builds a new table and replaces the old one in one
assignment, so a request in flight finishes on the table it started with.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
from starlette.concurrency import run_in_threadpool

from core.errors import BadRequest, EndpointNotFound
from core.records.endpoints import EndpointConfig, Variant
from serving.dataplane.batching import Batcher
from serving.dataplane.loading import LoadedModel

THREAD_ROWS = 256  # bigger batches predict in a worker thread, off the event loop


@dataclass(frozen=True)
class RoutingTable:
    config: EndpointConfig
    models: dict[str, LoadedModel]  # variant name → model
    batchers: dict[str, Batcher]  # variant name → its micro-batcher
    _cumulative: list[float] = field(default_factory=list)

    @classmethod
    def build(cls, config: EndpointConfig, models: dict[str, LoadedModel]) -> RoutingTable:
        weights = np.cumsum([v.weight for v in config.variants])
        batchers = {name: Batcher(model) for name, model in models.items()}
        return cls(config, models, batchers, list(weights / weights[-1]))

    async def predict(self, variant: Variant, rows: np.ndarray) -> np.ndarray:
        """Small requests join the variant's micro-batch; big ones predict in a thread."""
        if len(rows) >= THREAD_ROWS:
            return await run_in_threadpool(self.models[variant.name].predict, rows)
        return await self.batchers[variant.name].predict(rows)

    def pick(self, target: str | None) -> tuple[Variant, LoadedModel]:
        """The variant named ``target``, or one drawn by weight when there is none."""
        if target:
            for variant in self.config.variants:
                if variant.name == target:
                    return variant, self.models[variant.name]
            names = ", ".join(v.name for v in self.config.variants)
            raise BadRequest(f"unknown target variant {target!r}; variants: {names}")
        r = random.random()
        for variant, edge in zip(self.config.variants, self._cumulative, strict=True):
            if r < edge:
                return variant, self.models[variant.name]
        variant = self.config.variants[-1]
        return variant, self.models[variant.name]

    def pick_version(self, version: int) -> tuple[Variant, LoadedModel]:
        """The variant serving registered version ``version``."""
        for variant in self.config.variants:
            if variant.model_version == version:
                return variant, self.models[variant.name]
        live = ", ".join(str(v.model_version) for v in self.config.variants)
        raise EndpointNotFound(
            f"version {version} is not live in {self.config.endpoint!r} (live: {live})"
        )

    def versions(self) -> list[int]:
        return sorted({v.model_version for v in self.config.variants if v.model_version})
