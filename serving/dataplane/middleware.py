"""What stands between a request and the data plane: authentication, limits and deadlines.

- ``BearerAuth``: requests carry ``Authorization: Bearer <token>`` (health probes stay open);
- ``Guard``: every inference request runs inside it: refused at once past the concurrency
  limit (never an unbounded queue), cut off at the request timeout, its failure turned into
  the protocol's error shape, and counted for ``/metrics`` under the variant it reached; its
  body is read through ``Guard.body``: a 413 past the size limit before it is all read, a 408
  past the body timeout;
- ``FastInvocations``: ``POST /invocations``, the hot path, straight to its handler.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable

import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from core.errors import BodyTimeout, PayloadTooLarge, RequestTimeout, ServiceUnavailable
from serving.contract import INVOKED_VARIANT
from serving.dataplane import instrumentation
from serving.dataplane.deadlines import Deadlines
from serving.http_status import http_status
from serving.options import ServerOptions

logger = logging.getLogger(__name__)


class Routed:
    """Which variant a request went to, once known (for headers and /metrics), how many
    rows it held once parsed (0 until then: only parsed requests count for the alarms), and
    the scores it was answered with (a variant's mean score, in /metrics)."""

    variant: str = instrumentation.UNROUTED
    rows: int = 0
    scores: np.ndarray | None = None


Handler = Callable[[Request, Routed], Awaitable[Response]]
ErrorShape = Callable[[Exception, int], Response]


def status_of(exc: Exception) -> int:
    """The HTTP status of a failure; a server fault (5xx) is logged with its traceback."""
    status = http_status(exc)
    if status >= 500:
        logger.exception("request failed")
    return status


class Guard:
    """The limits and deadline every inference request runs under, and its counting."""

    def __init__(self, options: ServerOptions):
        self.options = options
        shortest = min(options.request_timeout, options.body_timeout)
        self.deadlines = Deadlines(options.request_timeout, tick=min(0.25, shortest / 4))
        self.in_flight = 0

    async def run(self, request: Request, handle: Handler, error: ErrorShape) -> Response:
        """``handle`` the request; any failure becomes ``error``'s shape; count the answer."""
        started, routed = time.perf_counter(), Routed()
        try:
            limit = self.options.max_concurrency
            if self.in_flight >= limit:
                raise ServiceUnavailable(
                    f"server busy: {self.in_flight} requests in flight (max_concurrency {limit})"
                )
            self.in_flight += 1
            try:
                response = await self.deadlines.run(handle(request, routed))  # in this task
            except TimeoutError:
                raise RequestTimeout(
                    f"no answer within the {self.options.request_timeout:g} s request timeout"
                ) from None
            finally:
                self.in_flight -= 1
        except Exception as exc:
            response = error(exc, status_of(exc))
            if routed.variant != instrumentation.UNROUTED:
                response.headers[INVOKED_VARIANT] = routed.variant
            if isinstance(exc, PayloadTooLarge | BodyTimeout):
                # The body was not read to its end: the connection is mid-request, close it.
                response.headers["Connection"] = "close"
        seconds = time.perf_counter() - started
        cap = self.options.alarm_max_rows
        instrumentation.observe(
            routed.variant, response.status_code, seconds, routed.rows, cap, routed.scores
        )
        return response

    async def body(self, request: Request) -> bytes:
        """The request's body: a 413 as soon as it is over the size limit, a 408 if it has
        not all arrived by the body timeout (or the request timeout, if that comes first)."""
        try:
            return await self.deadlines.run(
                read_body(request, self.options.max_body), self.options.body_timeout
            )
        except TimeoutError:
            limit = min(self.options.body_timeout, self.options.request_timeout)
            raise BodyTimeout(f"the request's body did not arrive within {limit:g} s") from None


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body; a 413 as soon as it is known to be over ``limit`` bytes."""
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
