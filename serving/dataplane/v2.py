"""The Open Inference Protocol V2 (REST) over the data plane, beside SageMaker's API.

``<name>`` in the paths is the endpoint's name; ``<v>`` a registered version live in it. A
request without a version goes to a variant drawn by weight, as ``/invocations`` does. Errors
have the spec's shape, ``{"error": "..."}``, with a 4xx for anything the client got wrong.

The infer request carries one input tensor of shape ``[rows, features]`` (FP32, FP64 or an
integer type; ``data`` flat in row-major order, or nested); the response has one output,
``predict``, of shape ``[rows]`` and datatype FP64: the positive class's probability.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core.errors import BadRequest, EndpointNotFound
from core.provenance import skiff_release
from core.records.endpoints import Variant
from serving.contract import INVOKED_VARIANT, TARGET_VARIANT
from serving.dataplane.loading import LoadedModel
from serving.dataplane.middleware import Guard, Routed, status_of
from serving.dataplane.parsing import FLOAT32_MAX, load_json
from serving.dataplane.plane import DataPlane
from serving.dataplane.routing import RoutingTable

MAX_VERSION_DIGITS = 18  # more than any registry will hold; int() of 5000 digits is refused
NUMERIC = {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64",
           "UINT8", "UINT16", "UINT32", "UINT64", "BOOL"}  # fmt: skip


def check_model(name: str, endpoint: str) -> None:
    if name != endpoint:
        raise EndpointNotFound(f"no model named {name!r}; this server serves {endpoint!r}")


def metadata(endpoint: str, versions: list[int], n_features: int) -> dict[str, Any]:
    return {
        "name": endpoint,
        "versions": [str(v) for v in versions],
        "platform": "skiff-xgboost",
        "inputs": [{"name": "features", "datatype": "FP32", "shape": [-1, n_features]}],
        "outputs": [{"name": "predict", "datatype": "FP64", "shape": [-1]}],
    }


def parse_version(text: str) -> int:
    # ASCII digits only (str.isdigit also takes "²", which int() refuses), and few of them.
    if not (text.isascii() and text.isdigit()) or len(text) > MAX_VERSION_DIGITS:
        shown = text if len(text) <= 40 else f"{text[:40]}… ({len(text)} characters)"
        raise BadRequest(f"model version must be a positive integer, not {shown!r}")
    return int(text)


def parse_infer(body: bytes, n_features: int) -> tuple[np.ndarray, str | None]:
    """The request's rows (float32, ``[rows, n_features]``) and its ``id``."""
    request = load_json(body)
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
        raise BadRequest('an infer request is a JSON object with an "inputs" list')
    if len(request["inputs"]) != 1:
        raise BadRequest(f"expected one input tensor, got {len(request['inputs'])}")
    tensor = request["inputs"][0]
    if not isinstance(tensor, dict) or not {"name", "shape", "datatype", "data"} <= set(tensor):
        raise BadRequest('the input tensor needs "name", "shape", "datatype" and "data"')
    datatype, shape = tensor["datatype"], tensor["shape"]
    if not isinstance(datatype, str) or datatype not in NUMERIC:
        raise BadRequest(f"datatype {datatype!r} is not supported; send FP32, FP64 or INT*")
    if (
        not isinstance(shape, list)
        or len(shape) != 2
        or not all(type(d) is int and d >= 0 for d in shape)  # not True, not 2.0
    ):
        raise BadRequest(f"shape must be [rows, {n_features}], got {shape!r}")
    if shape[1] != n_features:
        raise BadRequest(f"expected {n_features} features per row, got shape {shape}")
    if shape[0] == 0:
        raise BadRequest(f"shape {shape} has no rows: send at least one")
    flat = _flatten(tensor["data"])
    if len(flat) != shape[0] * shape[1]:
        raise BadRequest(f"shape {shape} needs {shape[0] * shape[1]} values, got {len(flat)}")
    try:
        values = np.asarray(flat, dtype=np.float64)
    except (TypeError, ValueError):
        values = np.array([_as_float(x) for x in flat], dtype=np.float64)
    bad = ~np.isfinite(values) | (np.abs(values) > FLOAT32_MAX)
    if bad.any():
        i = int(np.argmax(bad))
        row, column = divmod(i, shape[1])
        raise BadRequest(
            f"row {row + 1}, column {column + 1}: {flat[i]!r} is not a finite float32 number"
        )
    rows = values.astype(np.float32).reshape(shape)
    request_id = request.get("id")
    return rows, str(request_id) if request_id is not None else None


def _as_float(value: Any) -> float:
    """A number, or NaN for anything else (reported with its position by the caller)."""
    return float(value) if isinstance(value, int | float) else math.nan


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        raise BadRequest('"data" must be a list of numbers (flat or nested)')
    if all(not isinstance(x, list) for x in data):
        return data
    flat: list[Any] = []
    for x in data:
        flat.extend(_flatten(x) if isinstance(x, list) else [x])
    return flat


def infer_response(
    endpoint: str, version: int | str, scores: np.ndarray, request_id: str | None
) -> dict[str, Any]:
    response: dict[str, Any] = {
        "model_name": endpoint,
        "model_version": str(version),
        "outputs": [
            {"name": "predict", "datatype": "FP64", "shape": [len(scores)], "data": scores.tolist()}
        ],
    }
    if request_id is not None:
        response["id"] = request_id
    return response


def error(exc: Exception, status: int) -> JSONResponse:
    """The Open Inference Protocol's error shape."""
    return JSONResponse({"error": str(exc)}, status_code=status)


class V2API:
    """The Open Inference Protocol's handlers for one endpoint's data plane."""

    def __init__(self, plane: DataPlane, guard: Guard):
        self.plane, self.guard = plane, guard

    def routes(self) -> list[Route]:
        model = "/v2/models/{name}"
        version = f"{model}/versions/{{version}}"
        return [
            Route("/v2", self.server, methods=["GET"]),
            Route("/v2/health/live", self.live, methods=["GET"]),
            Route("/v2/health/ready", self.ready, methods=["GET"]),
            *(
                Route(path, self.model, methods=["GET"])
                for path in (model, f"{model}/ready", version, f"{version}/ready")
            ),
            *(Route(f"{path}/infer", self.infer, methods=["POST"]) for path in (model, version)),
        ]

    def _pick(self, table: RoutingTable, request: Request) -> tuple[Variant, LoadedModel]:
        check_model(request.path_params["name"], self.plane.endpoint)
        if "version" not in request.path_params:
            return table.pick(request.headers.get(TARGET_VARIANT))
        return table.pick_version(parse_version(request.path_params["version"]))

    async def server(self, request: Request) -> Response:
        return JSONResponse({"name": "skiff", "version": skiff_release(), "extensions": []})

    async def live(self, request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(self, request: Request) -> Response:
        ready = self.plane.table is not None
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    async def model(self, request: Request) -> Response:
        endpoint = self.plane.endpoint
        try:
            table = self.plane.live()
            variant, model = self._pick(table, request)
            versions = (
                [variant.model_version] if "version" in request.path_params else table.versions()
            )
            body = metadata(endpoint, versions, model.n_features)
        except Exception as exc:
            return error(exc, status_of(exc))
        if request.url.path.endswith("/ready"):
            body = {"name": endpoint, "ready": True}
        return JSONResponse(body)

    async def infer(self, request: Request) -> Response:
        return await self.guard.run(request, self._infer, error)

    async def _infer(self, request: Request, routed: Routed) -> Response:
        table = self.plane.live()
        body = await self.guard.body(request)
        variant, model = self._pick(table, request)
        routed.variant = variant.name
        rows, request_id = parse_infer(body, model.n_features)
        routed.rows = len(rows)
        scores = routed.scores = await table.predict(variant, rows)
        version = variant.model_version or variant.name  # a hosted model has no number
        answer = infer_response(self.plane.endpoint, version, scores, request_id)
        return JSONResponse(answer, headers={INVOKED_VARIANT: variant.name})
