"""Skiff's own routes on an endpoint's server: ``GET /skiff/status`` (what the workers serve,
``serving.contract.ServerStatus``: deploys and rollouts wait on it) and ``GET /metrics``
(Prometheus' text format, summed over the workers: the update alarms read it)."""

from __future__ import annotations

import os

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from serving import contract
from serving.contract import ServerStatus
from serving.dataplane import instrumentation
from serving.dataplane.plane import DataPlane


class AdminAPI:
    def __init__(self, plane: DataPlane, workers: int):
        self.plane, self.workers = plane, workers

    def routes(self) -> list[Route]:
        return [
            Route("/skiff/status", self.status, methods=["GET"]),
            Route("/metrics", self.metrics, methods=["GET"]),
        ]

    def server_status(self) -> ServerStatus:
        plane, table = self.plane, self.plane.table
        everyone = instrumentation.worker_gauges()
        return ServerStatus(
            endpoint=plane.endpoint,
            pid=os.getpid(),
            config_number=table.config.number if table else None,
            workers=self.workers,
            workers_ready=int(everyone.get(contract.WORKERS_READY, 0)),
            all_workers_config_number=everyone.get(contract.CONFIG_SERVED),
            any_worker_failed_config_number=everyone.get(contract.CONFIG_FAILED) or None,
            variants=table.config.variants if table else [],
            last_error=plane.last_error,
            failed_config_number=plane.failed_number,
        )

    async def status(self, request: Request) -> Response:
        return JSONResponse(self.server_status().model_dump())

    async def metrics(self, request: Request) -> Response:
        instrumentation.flush()  # this worker's counters are current; others' at most 0.25 s old
        return Response(instrumentation.exposition(), media_type=instrumentation.CONTENT_TYPE)
