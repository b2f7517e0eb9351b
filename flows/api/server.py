"""The ``skiff api`` server: AWS JSON 1.1 (``POST /`` with ``X-Amz-Target: SageMaker.<Op>``),
each request checked (signature, shape), dispatched to its operation, and answered in
SageMaker's shapes and errors. A failure inside an operation is a 500 in AWS's shape
(``InternalFailure``), logged with its traceback; the server stays up.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core.errors import SkiffError
from flows.api import (
    endpoint_updates,
    endpoints,
    hosting,
    logs,
    packages,
    search,
    tags,
    training,
    transforms,
    tuning,
)
from flows.api.auth import verify
from flows.api.context import ApiContext
from flows.api.errors import ApiError, internal, invalid
from flows.api.runtime import Forwarder, runtime_error
from flows.api.shapes import check_request, operation

logger = logging.getLogger(__name__)
Operation = Callable[[ApiContext, dict[str, Any]], dict[str, Any]]
OPERATIONS: dict[str, Operation] = {
    **training.OPERATIONS,
    **hosting.OPERATIONS,
    **endpoints.OPERATIONS,
    **endpoint_updates.OPERATIONS,
    **tags.OPERATIONS,
    **packages.OPERATIONS,
    **search.OPERATIONS,
    **tuning.OPERATIONS,
    **transforms.OPERATIONS,
}
# X-Amz-Target's prefix → the service (botocore's name for its model) and its operations.
SERVICES: dict[str, tuple[str, dict[str, Operation]]] = {
    "SageMaker": ("sagemaker", OPERATIONS),
    "Logs_20140328": ("logs", logs.OPERATIONS),  # what SageMaker code reads of CloudWatch Logs
}
MAX_BODY = 5 * 1024 * 1024
JSON_11 = "application/x-amz-json-1.1"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _answer(body: dict[str, Any], status: int = 200) -> Response:
    headers = {"x-amzn-RequestId": str(uuid.uuid4())}
    return JSONResponse(body, status_code=status, headers=headers, media_type=JSON_11)


def make_app(ctx: ApiContext, credentials: dict[str, str] | None = None) -> Starlette:
    """The ASGI app. ``credentials`` (access key id → secret): every request must be signed
    with one; None: any signature is accepted (the server is loopback only then)."""

    async def control_plane(request: Request) -> Response:
        try:
            body = await request.body()
            if len(body) > MAX_BODY:
                raise invalid(f"the request body is over {MAX_BODY} bytes")
            if credentials is not None:
                headers = {k.lower(): v for k, v in request.headers.items()}
                verify(credentials, "POST", str(request.url), headers, body)
            target = request.headers.get("x-amz-target", "")
            prefix, _, name = target.partition(".")
            if prefix not in SERVICES or not name:
                raise ApiError("UnknownOperationException", f"unknown X-Amz-Target {target!r}")
            service, operations = SERVICES[prefix]
            model = operation(name, service)  # the service's, or UnknownOperationException
            handler = operations.get(name)
            if handler is None:
                raise invalid(
                    f"{name} is not supported by Skiff; supported: {', '.join(sorted(operations))}"
                )
            try:
                params = json.loads(body or b"{}")
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
                raise ApiError("SerializationException", f"the body is not JSON: {exc}") from None
            params = check_request(model, params)
            return _answer(await run_in_threadpool(handler, ctx, params))
        except ApiError as exc:
            return _answer(exc.body(), exc.status)
        except SkiffError as exc:  # a store that does not answer, a record that cannot be read
            logger.warning("%s: %s", request.headers.get("x-amz-target"), exc)
            return _answer(internal(str(exc)).body(), 500)
        except Exception as exc:
            logger.exception("%s failed", request.headers.get("x-amz-target"))
            return _answer(internal(f"{type(exc).__name__}: {exc}").body(), 500)

    forwarder = Forwarder(ctx)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await forwarder.close()  # the kept-alive connections to endpoint servers

    async def invoke_endpoint(request: Request) -> Response:
        """SageMaker's runtime (InvokeEndpoint), on the same port."""
        body = await request.body()
        if len(body) > MAX_BODY:
            return runtime_error("ValidationError", f"the body is over {MAX_BODY} bytes", 413)
        if credentials is not None:
            headers = {k.lower(): v for k, v in request.headers.items()}
            try:
                verify(credentials, "POST", str(request.url), headers, body)
            except ApiError as exc:
                return runtime_error(exc.code, exc.message, exc.status)
        return await forwarder.invoke(request, body)

    async def ping(request: Request) -> Response:
        return Response("ok\n", media_type="text/plain")

    return Starlette(
        routes=[
            Route("/", control_plane, methods=["POST"]),
            Route("/endpoints/{name}/invocations", invoke_endpoint, methods=["POST"]),
            Route("/ping", ping, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
