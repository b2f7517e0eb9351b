"""The endpoint as one server process holds it: the data plane, independent of HTTP.

It follows the endpoint's stored config. When the config changes, the new models are loaded
and warmed up off the request path, then the routing table is replaced in one assignment;
requests in flight finish on the table they started with, and a config that fails to load
leaves the old table serving (and says why in the status). The protocols (``sagemaker``,
``v2``) ask it for the live table, pick a variant and predict.
"""

from __future__ import annotations

import asyncio
import logging
import time

from starlette.concurrency import run_in_threadpool

from core.errors import EndpointNotFound, ServiceUnavailable, ServingError
from core.records.endpoints import EndpointConfig, EndpointStore, Variant
from core.store import Store
from serving.dataplane import instrumentation
from serving.dataplane.capture import Capture
from serving.dataplane.loading import LoadedModel, load_variant
from serving.dataplane.routing import RoutingTable

logger = logging.getLogger(__name__)


class DataPlane:
    """One endpoint's live routing table, the models it holds, and the config it follows."""

    def __init__(self, store: Store, endpoint: str):
        self.store, self.endpoint = store, endpoint
        self.configs = EndpointStore(store)
        self.table: RoutingTable | None = None
        self.last_error: str | None = None
        self.failed_number: int | None = None
        self._seen: bytes | None = None
        self._cache: dict[tuple[str, ...], LoadedModel] = {}
        self.capture = Capture(endpoint)

    def live(self) -> RoutingTable:
        """The table requests use now.

        Raises:
            ServiceUnavailable: no config has been loaded yet.
        """
        if self.table is None:
            raise ServiceUnavailable("no model loaded yet")
        return self.table

    def changed_config(self) -> bytes | None:
        """The stored config's bytes if they differ from the last ones seen (a cheap read)."""
        try:
            raw = self.configs.current_bytes(self.endpoint)
        except EndpointNotFound:
            return None
        return None if raw == self._seen else raw

    def apply(self, raw: bytes) -> bool:
        """Load the config's models (seconds, maybe) and swap the table; False if it failed."""
        self._seen = raw
        config = EndpointConfig.model_validate_json(raw)
        try:
            models = {v.name: self._load(v) for v in config.variants}
        except ServingError as exc:
            self.last_error, self.failed_number = str(exc), config.number
            instrumentation.config_failed(config.number)
            logger.error("config %d not applied, still serving the old one: %s", config.number, exc)
            return False
        self.table = RoutingTable.build(config, models)  # the swap: one assignment
        self.capture.configure(config.capture)
        self.last_error, self.failed_number = None, None
        instrumentation.config_served(config.number)
        live = {v.key for v in config.variants}
        self._cache = {k: m for k, m in self._cache.items() if k in live}
        weights = ", ".join(f"{v.name}={v.weight:g}" for v in config.variants)
        logger.info("serving config %d: %s", config.number, weights)
        return True

    async def poll(self) -> None:
        """Apply the stored config if it changed; a failure is noted, never raised."""
        try:
            # A local config is a small file: read it on the loop. Handing every poll to a
            # thread stalled requests by up to 25 ms (GIL hand-offs) twice a second.
            if self.store.is_local:
                raw = self.changed_config()
            else:
                raw = await run_in_threadpool(self.changed_config)
            if raw is not None:
                await run_in_threadpool(self.apply, raw)  # loading: off the loop
        except Exception as exc:  # the server must stay up: say why, poll again
            self.last_error = f"{type(exc).__name__}: {exc}"
            logger.exception("config poll failed")

    async def follow(self, poll_interval: float) -> None:
        """Poll the stored config and apply each change; runs until cancelled, never dies."""
        while True:
            await asyncio.sleep(poll_interval)
            await self.poll()

    def _load(self, variant: Variant) -> LoadedModel:
        key = variant.key
        if key not in self._cache:
            started = time.perf_counter()
            self._cache[key] = load_variant(self.store, variant)
            seconds = time.perf_counter() - started
            instrumentation.model_loaded(variant.name, seconds)
            logger.info("loaded %s in %.0f ms", variant.source, 1000 * seconds)
        return self._cache[key]
