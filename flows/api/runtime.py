"""SageMaker's runtime on ``skiff api``'s port: ``POST /endpoints/<name>/invocations``
(InvokeEndpoint) forwarded to that endpoint's server on this machine, over kept-alive
connections, its answer and headers passed back. Errors are the runtime's: ValidationError
for an unknown endpoint or a body the server refuses (with the server's message), ModelError
when the model fails.
"""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from flows.api.context import ApiContext
from serving.control import servers
from serving.control.servers import RunningEndpoint

# What the client says that the endpoint must hear, and what it answers that must come back.
REQUEST_HEADERS = (
    "content-type",
    "accept",
    "x-amzn-sagemaker-target-variant",
    "x-amzn-sagemaker-custom-attributes",
    "x-amzn-sagemaker-inference-id",
)
RECHECK_SECONDS = 1.0
ANSWER_HEADERS = (
    "content-type",
    "x-amzn-invoked-production-variant",
    "x-amzn-sagemaker-custom-attributes",
)


def runtime_error(code: str, message: str, status: int, **extra: Any) -> Response:
    """An error as botocore's rest-json parser reads it: the code in ``x-amzn-ErrorType``."""
    return JSONResponse(
        {"message": message, **extra}, status_code=status, headers={"x-amzn-ErrorType": code}
    )


class Forwarder:
    """One connection pool per endpoint, to the server that runs it now (a pool to a server
    that has since stopped or been replaced is closed)."""

    def __init__(self, ctx: ApiContext):
        self.ctx = ctx
        self._clients: dict[str, tuple[str, aiohttp.ClientSession]] = {}  # name → (server, pool)
        self._servers: dict[str, tuple[RunningEndpoint | None, float]] = {}

    async def _server(self, name: str) -> RunningEndpoint | None:
        """The endpoint's server, looked up at most every RECHECK_SECONDS (a lookup reads its
        state file and checks its pid: too slow to do for every request)."""
        server, checked = self._servers.get(name, (None, 0.0))
        if server is None or time.monotonic() - checked > RECHECK_SECONDS:
            server = await run_in_threadpool(servers.running, self.ctx.store, name)
            self._servers[name] = (server, time.monotonic())
        return server

    async def _client(self, name: str, server: RunningEndpoint) -> aiohttp.ClientSession:
        key = f"{server.url} {server.pid}"
        held, client = self._clients.get(name, ("", None))
        if client is not None and held == key:
            return client
        if client is not None:
            await client.close()
        options = server.http_options()
        client = aiohttp.ClientSession(
            base_url=server.url,
            headers=options["headers"],
            connector=aiohttp.TCPConnector(limit=64, ssl=options["verify"]),
            timeout=aiohttp.ClientTimeout(total=70, connect=5),
            skip_auto_headers=("User-Agent",),
        )
        self._clients[name] = (key, client)
        return client

    async def invoke(self, request: Request, body: bytes) -> Response:
        name = request.path_params["name"]
        headers = {h: v for h in REQUEST_HEADERS if (v := request.headers.get(h)) is not None}
        for attempt in (1, 2):  # a server looked up a moment ago may have stopped since
            server = await self._server(name)
            if server is None:
                return runtime_error(
                    "ValidationError",
                    f"Endpoint {name} of account {self.ctx.account} not found.",
                    400,
                )
            try:
                client = await self._client(name, server)
                async with client.post(
                    f"/endpoints/{name}/invocations", data=body, headers=headers
                ) as answer:
                    content = await answer.read()
                break
            except (aiohttp.ClientError, TimeoutError) as exc:
                self._servers.pop(name, None)  # stopped, or restarted: look it up again
                if attempt == 2 or not isinstance(exc, aiohttp.ClientConnectionError):
                    return runtime_error(
                        "ModelError", f"endpoint {name}'s server did not answer: {exc!r}", 424
                    )
        passed = {h: v for h in ANSWER_HEADERS if (v := answer.headers.get(h)) is not None}
        code = answer.status
        if code < 400:
            return Response(content, status_code=code, headers=passed)
        message = _message(content)
        if code < 500 and code not in (408, 424):
            return runtime_error("ValidationError", message, 400)
        return runtime_error(
            "ModelError",
            f'Received server error ({code}) from model with message "{message}".',
            424,
            OriginalStatusCode=code,
            OriginalMessage=message,
        )

    async def close(self) -> None:
        for _, client in self._clients.values():
            await client.close()


def _message(content: bytes) -> str:
    try:
        found = json.loads(content)
        if isinstance(found, dict):
            return str(found.get("message") or found.get("error") or found)
    except (ValueError, UnicodeDecodeError):
        pass
    return content.decode("utf-8", "replace")[:1000]
