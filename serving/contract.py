"""What an endpoint's server and the commands that control it agree on, across the process
boundary: the state file a server leaves in the runtime folder, the status document it answers
at ``GET /skiff/status``, the names of its counters in ``GET /metrics``, and SageMaker's
headers. Each is stated here once; both sides read and write it through these models.

A server started by an earlier Skiff wrote and answers the same shapes, so the commands of a
newer one still find, watch and stop it (``tests/core/test_legacy_store.py`` reads an old
server's).
"""

from __future__ import annotations

from pydantic import BaseModel

from core.records.endpoints import Variant
from serving.options import ServerOptions

STATE_FILE = "state.json"  # in the endpoint's runtime folder, while the server runs
LOG_FILE = "server.log"

TARGET_VARIANT = "X-Amzn-SageMaker-Target-Variant"
INVOKED_VARIANT = "X-Amzn-Invoked-Production-Variant"
CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"

# Counters, per variant, summed over the server's worker processes.
INVOCATIONS = "skiff_invocations"
ERRORS_4XX = "skiff_invocation_4xx_errors"
ERRORS_5XX = "skiff_invocation_5xx_errors"
LATENCY = "skiff_model_latency_seconds"
# What the update alarms judge a variant by: its model's failures, not what clients send.
# Requests that parsed (client errors never reach the model), their 5xx, and the latency of
# those of at most ``ServerOptions.alarm_max_rows`` rows.
MODEL_INVOCATIONS = "skiff_model_invocations"
MODEL_ERRORS_5XX = "skiff_model_5xx_errors"
ALARM_LATENCY = "skiff_alarm_latency_seconds"
MODEL_LOAD = "skiff_model_load_seconds"
# Which config the workers serve: the lowest number any live worker serves, the highest any
# failed to load, and how many serve one at all (a worker still starting has no gauge yet).
CONFIG_SERVED = "skiff_config_number"
CONFIG_FAILED = "skiff_failed_config_number"
WORKERS_READY = "skiff_workers_ready"


class ServerState(BaseModel):
    """The state file: how to reach a running server, and how to stop it."""

    pid: int
    url: str
    store: str
    endpoint: str
    started_at: str
    auth_token_file: str | None = None
    certfile: str | None = None  # a self-signed server's certificate: what clients trust
    # Every option it runs with (a server of an earlier Skiff did not say; its token file and
    # certificate, above, are then all that is known).
    options: ServerOptions | None = None

    def server_options(self) -> ServerOptions:
        """What the server runs with, as far as its state file says (for an earlier Skiff's
        server: its token file and certificate, the rest taken as the defaults)."""
        if self.options is not None:
            return self.options
        known = {"auth_token_file": self.auth_token_file, "certfile": self.certfile}
        return ServerOptions.model_construct(**known)  # as stored: nothing to check again


class ServerStatus(BaseModel):
    """``GET /skiff/status``: what the answering worker serves, and what all workers do."""

    endpoint: str
    pid: int
    config_number: int | None = None
    workers: int = 1
    workers_ready: int = 0
    all_workers_config_number: float | None = None
    any_worker_failed_config_number: float | None = None
    variants: list[Variant] = []
    last_error: str | None = None
    failed_config_number: int | None = None

    def serves(self, number: int) -> bool:
        """Every worker process serves config ``number`` or a later one (not just those
        that have started)."""
        return (
            self.workers_ready >= self.workers and (self.all_workers_config_number or 0) >= number
        )

    def rejected(self, number: int) -> bool:
        """Some worker failed to load config ``number`` or a later one."""
        return (self.any_worker_failed_config_number or 0) >= number
