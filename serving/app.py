"""The endpoint's ASGI app: SageMaker's container contract over a swappable routing table.

The table (variants, weights, loaded models) is one immutable object. A poller reads the
stored config; when it changes, the new models are loaded and warmed up off the request path,
then the table is replaced in one assignment. Requests in flight finish on the table they
started with; a config that fails to load leaves the old table serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import logging
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from core.errors import (
    BadRequest,
    EndpointNotFound,
    PayloadTooLarge,
    RequestTimeout,
    ServiceUnavailable,
    ServingError,
)
from core.provenance import skiff_release
from core.records.endpoints import EndpointConfig, EndpointStore, Variant
from core.store import Store
from serving import metrics, v2
from serving.batching import Batcher
from serving.deadlines import Deadlines
from serving.http_status import http_status
from serving.models import LoadedModel, load_model
from serving.options import ServerOptions
from serving.parsing import CSV_TYPES, media_type, parse_csv, parse_json

logger = logging.getLogger(__name__)
TARGET_VARIANT = "X-Amzn-SageMaker-Target-Variant"
INVOKED_VARIANT = "X-Amzn-Invoked-Production-Variant"
CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
THREAD_ROWS = 256  # bigger batches predict in a worker thread, off the event loop

# Which config every worker serves: the lowest number any live worker serves, and the highest
# number any worker failed to load. A deploy waits on these, not on one worker's view.
SERVING_CONFIG = metrics.Gauge("skiff_config_number", "config served", multiprocess_mode="livemin")
FAILED_CONFIG = metrics.Gauge(
    "skiff_failed_config_number", "config that failed to load", multiprocess_mode="livemax"
)
# How many workers serve some config: a worker still starting has no gauge file yet, so the
# lowest served number alone would speak only for the workers that have started.
READY = metrics.Gauge(
    "skiff_workers_ready", "workers serving a config", multiprocess_mode="livesum"
)


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


class EndpointState:
    """What one server process holds: the live table and the poller's view of the config."""

    def __init__(self, store: Store, endpoint: str, max_body: int):
        self.store, self.endpoint, self.max_body = store, endpoint, max_body
        self.configs = EndpointStore(store)
        self.table: RoutingTable | None = None
        self.last_error: str | None = None
        self.failed_number: int | None = None
        self._seen: bytes | None = None
        self._cache: dict[tuple[str, int], LoadedModel] = {}

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
            FAILED_CONFIG.set(config.number)
            logger.error("config %d not applied, still serving the old one: %s", config.number, exc)
            return False
        self.table = RoutingTable.build(config, models)  # the swap: one assignment
        self.last_error, self.failed_number = None, None
        SERVING_CONFIG.set(config.number)
        FAILED_CONFIG.set(0)
        READY.set(1)
        live = {(v.model_group, v.model_version) for v in config.variants}
        self._cache = {k: m for k, m in self._cache.items() if k in live}
        logger.info(
            "serving config %d: %s",
            config.number,
            ", ".join(f"{v.name}={v.weight:g}" for v in config.variants),
        )
        return True

    def _load(self, variant: Variant) -> LoadedModel:
        key = (variant.model_group, variant.model_version)
        if key not in self._cache:
            started = time.perf_counter()
            self._cache[key] = load_model(self.store, *key)
            seconds = time.perf_counter() - started
            metrics.MODEL_LOAD.labels(variant.name).set(seconds)
            logger.info("loaded %s v%d in %.0f ms", *key, 1000 * seconds)
        return self._cache[key]


class Routed:
    """Which variant a request went to, once known (for headers and /metrics)."""

    variant: str = metrics.UNROUTED


Handler = Callable[[Request, Routed], Awaitable[Response]]
ErrorShape = Callable[[Exception], Response]


def _status(exc: Exception) -> int:
    status = http_status(exc)
    if status >= 500:
        logger.exception("request failed")
    return status


def _error(exc: Exception) -> JSONResponse:
    """SageMaker's side: the message and the status."""
    status = _status(exc)
    return JSONResponse({"error": str(exc), "status": status}, status_code=status)


def _v2_error(exc: Exception) -> JSONResponse:
    """The Open Inference Protocol's error shape."""
    return JSONResponse({"error": str(exc)}, status_code=_status(exc))


def create_app(
    store: Store, endpoint: str, poll_interval: float = 0.5, options: ServerOptions | None = None
) -> ASGIApp:
    """The endpoint's app (the body limit defaults to SageMaker's 6 MB payload limit)."""
    options = options or ServerOptions()
    state = EndpointState(store, endpoint, options.max_body)
    deadlines = Deadlines(options.request_timeout)
    in_flight = 0

    async def poll() -> None:
        while True:
            try:
                # A local config is a small file: read it on the loop. Handing every poll to a
                # thread stalled requests by up to 25 ms (GIL hand-offs) twice a second.
                if store.is_local:
                    raw = state.changed_config()
                else:
                    raw = await run_in_threadpool(state.changed_config)
                if raw is not None:
                    await run_in_threadpool(state.apply, raw)  # loading: off the loop
            except Exception as exc:  # never let the poller die: the server must stay up
                state.last_error = f"{type(exc).__name__}: {exc}"
                logger.exception("config poll failed")
            await asyncio.sleep(poll_interval)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Everything imported so far lives as long as the process: move it out of the
        # garbage collector's sight. A full collection over it took ~50 ms, a stall that
        # every request in flight waited through (the p99 at 64 connections).
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 50, 100)
        tasks = [
            asyncio.create_task(poll()),
            asyncio.create_task(deadlines.watch()),
            asyncio.create_task(metrics.flush_forever()),
        ]
        yield
        for task in tasks:
            task.cancel()

    async def ping(request: Request) -> Response:
        if state.table is None:
            return JSONResponse({"status": "loading", "error": state.last_error}, status_code=503)
        return Response(status_code=200)

    async def status(request: Request) -> Response:
        table = state.table
        everyone = _worker_configs()
        return JSONResponse(
            {
                "endpoint": endpoint,
                "pid": os.getpid(),
                "config_number": table.config.number if table else None,
                "workers": options.server_workers,
                "workers_ready": int(everyone.get("skiff_workers_ready", 0)),
                "all_workers_config_number": everyone.get("skiff_config_number"),
                "any_worker_failed_config_number": everyone.get("skiff_failed_config_number")
                or None,
                "variants": [v.model_dump() for v in table.config.variants] if table else [],
                "last_error": state.last_error,
                "failed_config_number": state.failed_number,
            }
        )

    def live_table() -> RoutingTable:
        if state.table is None:
            raise ServiceUnavailable("no model loaded yet")
        return state.table

    async def observed(request: Request, handle: Handler, error: ErrorShape) -> Response:
        """Run ``handle``, turn failures into ``error``'s shape, count it for /metrics."""
        nonlocal in_flight
        started, routed = time.perf_counter(), Routed()
        try:
            if in_flight >= options.max_concurrency:  # refuse at once: never an unbounded queue
                raise ServiceUnavailable(
                    f"server busy: {in_flight} requests in flight "
                    f"(max_concurrency {options.max_concurrency})"
                )
            in_flight += 1
            try:
                response = await deadlines.run(handle(request, routed))  # in this task
            except TimeoutError:
                raise RequestTimeout(
                    f"no answer within the {options.request_timeout:g} s request timeout"
                ) from None
            finally:
                in_flight -= 1
        except Exception as exc:
            response = error(exc)
            if routed.variant != metrics.UNROUTED:
                response.headers[INVOKED_VARIANT] = routed.variant
        metrics.observe(routed.variant, response.status_code, time.perf_counter() - started)
        return response

    async def sagemaker(request: Request, routed: Routed) -> Response:
        name = request.path_params.get("endpoint")
        if name is not None and name != endpoint:
            raise EndpointNotFound(f"no endpoint named {name!r} here; this is {endpoint!r}")
        table = live_table()
        kind = media_type(request.headers.get("content-type"))
        body = await _read_body(request, state.max_body)
        variant, model = table.pick(request.headers.get(TARGET_VARIANT))
        routed.variant = variant.name
        if kind in CSV_TYPES:
            rows = parse_csv(body, model.n_features)
        else:
            rows = parse_json(body, model.n_features, model.schema)
        return _scores_response(await table.predict(variant, rows), kind, request, variant.name)

    async def invocations(request: Request) -> Response:
        return await observed(request, sagemaker, _error)

    def v2_pick(table: RoutingTable, request: Request) -> tuple[Variant, LoadedModel]:
        v2.check_model(request.path_params["name"], endpoint)
        if "version" not in request.path_params:
            return table.pick(request.headers.get(TARGET_VARIANT))
        version = v2.parse_version(request.path_params["version"])
        for variant in table.config.variants:
            if variant.model_version == version:
                return variant, table.models[variant.name]
        live = ", ".join(str(v.model_version) for v in table.config.variants)
        raise EndpointNotFound(f"version {version} is not live in {endpoint!r} (live: {live})")

    async def v2_infer_handler(request: Request, routed: Routed) -> Response:
        table = live_table()
        body = await _read_body(request, state.max_body)
        variant, model = v2_pick(table, request)
        routed.variant = variant.name
        rows, request_id = v2.parse_infer(body, model.n_features)
        scores = await table.predict(variant, rows)
        answer = v2.infer_response(endpoint, variant.model_version, scores, request_id)
        return JSONResponse(answer, headers={INVOKED_VARIANT: variant.name})

    async def v2_infer(request: Request) -> Response:
        return await observed(request, v2_infer_handler, _v2_error)

    async def v2_server(request: Request) -> Response:
        return JSONResponse({"name": "skiff", "version": skiff_release(), "extensions": []})

    async def v2_live(request: Request) -> Response:
        return JSONResponse({"live": True})

    async def v2_ready(request: Request) -> Response:
        ready = state.table is not None
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    async def v2_model(request: Request) -> Response:
        try:
            table = live_table()
            variant, model = v2_pick(table, request)
            versions = (
                [variant.model_version]
                if "version" in request.path_params
                else sorted({v.model_version for v in table.config.variants})
            )
            body = v2.metadata(endpoint, versions, model.n_features)
        except Exception as exc:
            return _v2_error(exc)
        if request.url.path.endswith("/ready"):
            body = {"name": endpoint, "ready": True}
        return JSONResponse(body)

    async def prometheus(request: Request) -> Response:
        metrics.flush()  # this worker's counters are current; the others' at most 0.25 s old
        return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)

    app = Starlette(
        routes=[
            Route("/ping", ping, methods=["GET"]),
            Route("/invocations", invocations, methods=["POST"]),
            Route("/endpoints/{endpoint}/invocations", invocations, methods=["POST"]),
            Route("/skiff/status", status, methods=["GET"]),
            Route("/metrics", prometheus, methods=["GET"]),
            Route("/v2", v2_server, methods=["GET"]),
            Route("/v2/health/live", v2_live, methods=["GET"]),
            Route("/v2/health/ready", v2_ready, methods=["GET"]),
            Route("/v2/models/{name}", v2_model, methods=["GET"]),
            Route("/v2/models/{name}/ready", v2_model, methods=["GET"]),
            Route("/v2/models/{name}/versions/{version}", v2_model, methods=["GET"]),
            Route("/v2/models/{name}/versions/{version}/ready", v2_model, methods=["GET"]),
            Route("/v2/models/{name}/infer", v2_infer, methods=["POST"]),
            Route("/v2/models/{name}/versions/{version}/infer", v2_infer, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    fast = FastInvocations(app, invocations)
    token = options.token()
    return BearerAuth(fast, token) if token else fast


def app_from_environment() -> ASGIApp:
    """The app of one worker process of ``serving.server`` (its settings come in the env)."""
    from serving.server import ENV_ENDPOINT, ENV_OPTIONS, ENV_POLL, ENV_STORE

    options = ServerOptions.model_validate_json(os.environ.get(ENV_OPTIONS, "{}"))
    poll = float(os.environ.get(ENV_POLL, "0.5"))
    return create_app(Store(os.environ[ENV_STORE]), os.environ[ENV_ENDPOINT], poll, options)


class FastInvocations:
    """``POST /invocations`` straight to its handler, past Starlette's router and exception
    middleware (the handler turns every failure into a response itself); everything else, and
    the lifespan, goes to the app. The hot path is the only one worth the shortcut."""

    def __init__(self, app: ASGIApp, invocations: Callable[[Request], Awaitable[Response]]):
        self.app, self.invocations = app, invocations

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (scope["method"], scope["path"]) == ("POST", "/invocations"):
            response = await self.invocations(Request(scope, receive))
            await response(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class BearerAuth:
    """Requests must carry ``Authorization: Bearer <token>``; /ping and health stay open (load
    balancers and orchestrators probe them without credentials)."""

    OPEN = ("/ping", "/v2/health/live", "/v2/health/ready")

    def __init__(self, app: ASGIApp, token: str):
        self.app, self.expected = app, f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in self.OPEN:
            given = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
            if not hmac.compare_digest(given, self.expected):
                refusal = JSONResponse(
                    {"error": "missing or wrong bearer token", "status": 401},
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer realm="skiff"'},
                )
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _scores_response(scores: np.ndarray, kind: str, request: Request, variant: str) -> Response:
    headers = {INVOKED_VARIANT: variant}
    if CUSTOM_ATTRIBUTES.lower() in request.headers:
        headers[CUSTOM_ATTRIBUTES] = request.headers[CUSTOM_ATTRIBUTES]
    accept = request.headers.get("accept", "")
    if "text/csv" in accept or (kind in CSV_TYPES and "json" not in accept):
        if len(scores) == 1:  # the common case, without a generator's cost
            text = f"{scores[0]:.6g}\n"
        else:
            text = "\n".join(f"{s:.6g}" for s in scores) + "\n"
        return Response(text, media_type="text/csv", headers=headers)
    return JSONResponse({"predictions": [float(s) for s in scores]}, headers=headers)


WORKER_GAUGES = ("skiff_config_number", "skiff_failed_config_number", "skiff_workers_ready")


def _worker_configs() -> dict[str, float]:
    """The config gauges summed over the workers (min served, max failed)."""
    from prometheus_client import CollectorRegistry, multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return {
        sample.name: sample.value
        for family in registry.collect()
        if family.name in WORKER_GAUGES
        for sample in family.samples
    }


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body of {declared} bytes exceeds the {limit}-byte limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)
