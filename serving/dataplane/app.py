"""The endpoint's ASGI app, assembled: the data plane, the protocols over it, Skiff's own
routes, and the middleware in front. Each piece lives in its own module; this one only wires
them and runs the background tasks (the config poller, the deadline watchdog, the counters'
flusher) for as long as the app runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp

from core.store import Store
from serving.dataplane import instrumentation
from serving.dataplane.admin import AdminAPI
from serving.dataplane.middleware import BearerAuth, FastInvocations, Guard
from serving.dataplane.plane import DataPlane
from serving.dataplane.sagemaker import SageMakerAPI
from serving.dataplane.v2 import V2API
from serving.options import ServerOptions


def create_app(
    store: Store, endpoint: str, poll_interval: float = 0.5, options: ServerOptions | None = None
) -> ASGIApp:
    """The endpoint's app (the body limit defaults to SageMaker's 6 MB payload limit)."""
    options = options or ServerOptions()
    plane, guard = DataPlane(store, endpoint), Guard(options)
    sagemaker = SageMakerAPI(plane, guard)
    v2 = V2API(plane, guard)
    admin = AdminAPI(plane, options.server_workers)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Everything imported so far lives as long as the process: move it out of the
        # garbage collector's sight. A full collection over it took ~50 ms, a stall that
        # every request in flight waited through (the p99 at 64 connections).
        # The config's models are loaded before the worker accepts a connection (uvicorn
        # listens once this startup ends): a worker started beside others, or in place of
        # one that died, takes no traffic it would answer "no model loaded yet".
        await plane.poll()
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 50, 100)
        background = (
            plane.follow(poll_interval),
            guard.deadlines.watch(),
            instrumentation.flush_forever(),
            plane.capture.run(),
        )
        tasks = [asyncio.create_task(work) for work in background]
        yield
        for task in tasks:
            task.cancel()
        await run_in_threadpool(plane.capture.flush)  # a graceful stop keeps what it captured

    app = Starlette(routes=[*sagemaker.routes(), *v2.routes(), *admin.routes()], lifespan=lifespan)
    fast = FastInvocations(app, sagemaker.invocations)
    token = options.token()
    return BearerAuth(fast, token) if token else fast


def app_from_environment() -> ASGIApp:
    """The app of one worker process of ``serving.dataplane.server`` (settings in the env)."""
    from serving.dataplane.server import ENV_ENDPOINT, ENV_OPTIONS, ENV_POLL, ENV_STORE

    options = ServerOptions.model_validate_json(os.environ.get(ENV_OPTIONS, "{}"))
    poll = float(os.environ.get(ENV_POLL, "0.5"))
    return create_app(Store(os.environ[ENV_STORE]), os.environ[ENV_ENDPOINT], poll, options)
