"""The servers ``bench.serving_speed`` compares Skiff with, on the same stack (Starlette on uvicorn
with uvloop and httptools, one process):

- ``naive``: what one writes first: parse the CSV body, one ``inplace_predict`` per request.
- ``floor``: no model at all; reads the body and answers a constant: the HTTP stack's cost.

    python -m bench.baseline_servers naive --model model.ubj --port 8081
"""

from __future__ import annotations

import argparse
import io

import numpy as np
import pandas as pd
import uvicorn
import xgboost as xgb
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def naive_app(model_path: str) -> Starlette:
    booster = xgb.Booster(model_file=model_path)
    booster.set_param({"nthread": 1})

    async def invocations(request: Request) -> Response:
        body = await request.body()
        if body.count(b"\n") > 64:
            rows = pd.read_csv(io.BytesIO(body), header=None).to_numpy(np.float32)
        else:
            rows = np.array([line.split(b",") for line in body.split()], dtype=np.float32)
        scores = booster.inplace_predict(rows)
        return Response("\n".join(f"{s:.6g}" for s in scores) + "\n", media_type="text/csv")

    return Starlette(routes=[Route("/invocations", invocations, methods=["POST"])])


def floor_app() -> Starlette:
    async def invocations(request: Request) -> Response:
        await request.body()
        return Response("0.5\n", media_type="text/csv")

    return Starlette(routes=[Route("/invocations", invocations, methods=["POST"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["naive", "floor"])
    parser.add_argument("--model")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = naive_app(args.model) if args.kind == "naive" else floor_app()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
