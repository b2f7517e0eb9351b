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

import httpx
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
    """One connection pool per endpoint server, kept while that server runs."""

    def __init__(self, ctx: ApiContext):
        self.ctx = ctx
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._servers: dict[str, tuple[RunningEndpoint | None, float]] = {}

    async def _server(self, name: str) -> RunningEndpoint | None:
        """The endpoint's server, looked up at most every RECHECK_SECONDS (a lookup reads its
        state file and checks its pid: too slow to do for every request)."""
        server, checked = self._servers.get(name, (None, 0.0))
        if server is None or time.monotonic() - checked > RECHECK_SECONDS:
            server = await run_in_threadpool(servers.running, self.ctx.store, name)
            self._servers[name] = (server, time.monotonic())
        return server

    def _client(self, server: RunningEndpoint) -> httpx.AsyncClient:
        key = f"{server.url} {server.pid}"
        if key not in self._clients:
            options = server.http_options()
            self._clients[key] = httpx.AsyncClient(
                base_url=server.url,
                headers=options["headers"],
                verify=options["verify"],
                timeout=httpx.Timeout(70.0, connect=5.0),
                limits=httpx.Limits(max_keepalive_connections=64),
            )
        return self._clients[key]

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
                answer = await self._client(server).post(
                    f"/endpoints/{name}/invocations", content=body, headers=headers
                )
                break
            except httpx.HTTPError as exc:
                self._servers.pop(name, None)  # stopped, or restarted: look it up again
                if attempt == 2 or not isinstance(exc, httpx.ConnectError):
                    return runtime_error(
                        "ModelError", f"endpoint {name}'s server did not answer: {exc!r}", 424
                    )
        passed = {h: v for h in ANSWER_HEADERS if (v := answer.headers.get(h)) is not None}
        if answer.status_code < 400:
            return Response(answer.content, status_code=answer.status_code, headers=passed)
        message = _message(answer)
        if answer.status_code < 500 and answer.status_code not in (408, 424):
            return runtime_error("ValidationError", message, 400)
        return runtime_error(
            "ModelError",
            f'Received server error ({answer.status_code}) from model with message "{message}".',
            424,
            OriginalStatusCode=answer.status_code,
            OriginalMessage=message,
        )

    async def close(self) -> None:
        for client in self._clients.values():
            await client.aclose()


def _message(answer: httpx.Response) -> str:
    try:
        found = json.loads(answer.content)
        if isinstance(found, dict):
            return str(found.get("message") or found.get("error") or found)
    except (ValueError, UnicodeDecodeError):
        pass
    return answer.text[:1000]
