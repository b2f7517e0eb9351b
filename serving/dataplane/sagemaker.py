"""SageMaker's container API over the data plane: ``GET /ping`` and ``POST /invocations``
(also ``/endpoints/<name>/invocations``, the path of SageMaker's InvokeEndpoint).

CSV bodies are encoded feature rows; JSON bodies are rows or raw records (``parsing``). The
answer is CSV (one score a line; comma-joined on one line for a hosted model whose image
answered so) or ``{"predictions": [...]}``, chosen by ``Accept``, else by the content type.
``X-Amzn-SageMaker-Target-Variant`` picks a variant and ``X-Amzn-SageMaker-Custom-Attributes``
is echoed. Errors are ``{"error": ..., "status": ...}``.
"""

from __future__ import annotations

import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core.errors import EndpointNotFound
from serving.contract import CUSTOM_ATTRIBUTES, INVOKED_VARIANT, TARGET_VARIANT
from serving.dataplane.answers import csv_scores
from serving.dataplane.middleware import Guard, Routed
from serving.dataplane.parsing import CSV_TYPES, media_type, parse_csv, parse_json
from serving.dataplane.plane import DataPlane


def error(exc: Exception, status: int) -> JSONResponse:
    """SageMaker's side: the message and the status."""
    return JSONResponse({"error": str(exc), "status": status}, status_code=status)


class SageMakerAPI:
    """The handlers of SageMaker's container API for one endpoint's data plane."""

    def __init__(self, plane: DataPlane, guard: Guard):
        self.plane, self.guard = plane, guard

    def routes(self) -> list[Route]:
        return [
            Route("/ping", self.ping, methods=["GET"]),
            Route("/invocations", self.invocations, methods=["POST"]),
            Route("/endpoints/{endpoint}/invocations", self.invocations, methods=["POST"]),
        ]

    async def ping(self, request: Request) -> Response:
        if self.plane.table is None:
            body = {"status": "loading", "error": self.plane.last_error}
            return JSONResponse(body, status_code=503)
        return Response(status_code=200)

    async def invocations(self, request: Request) -> Response:
        return await self.guard.run(request, self._invoke, error)

    async def _invoke(self, request: Request, routed: Routed) -> Response:
        name = request.path_params.get("endpoint")
        if name is not None and name != self.plane.endpoint:
            raise EndpointNotFound(
                f"no endpoint named {name!r} here; this is {self.plane.endpoint!r}"
            )
        table = self.plane.live()
        sent = request.headers.get("content-type")
        kind = media_type(sent)
        body = await self.guard.body(request)
        variant, model = table.pick(request.headers.get(TARGET_VARIANT))
        routed.variant = variant.name
        if kind in CSV_TYPES:
            rows = parse_csv(body, model.n_features)
        else:
            rows = parse_json(body, model.n_features, model.schema)
        routed.rows = len(rows)
        scores = routed.scores = await table.predict(variant, rows)
        response = scores_response(scores, kind, request, variant.name, model.csv_separator)
        capture = self.plane.capture
        if capture.config is not None and capture.sampled():  # off unless configured
            capture.record(variant.name, body, sent or kind, response.body, response.media_type)
        return response


def scores_response(
    scores: np.ndarray, kind: str, request: Request, variant: str, separator: str = "\n"
) -> Response:
    """The scores as CSV (``separator`` between them: one a line, or the older images' commas)
    or JSON."""
    headers = {INVOKED_VARIANT: variant}
    if CUSTOM_ATTRIBUTES.lower() in request.headers:
        headers[CUSTOM_ATTRIBUTES] = request.headers[CUSTOM_ATTRIBUTES]
    accept = request.headers.get("accept", "")
    if "text/csv" in accept or (kind in CSV_TYPES and "json" not in accept):
        return Response(csv_scores(scores, separator), media_type="text/csv", headers=headers)
    return JSONResponse({"predictions": scores.tolist()}, headers=headers)
