"""What an endpoint's server and the commands that control it agree on, across the process
boundary: the state file a server leaves in the runtime folder, the status document it answers
at ``GET /skiff/status``, the names of its counters in ``GET /metrics``, and SageMaker's
headers. Each is stated here once; both sides read and write it through these models.

A server started by an earlier Skiff wrote and answers the same shapes, so the commands of a
newer one still find, watch and stop it (``tests/core/test_legacy_store.py`` reads an old
server's).
"""

from __future__ import annotations

import base64
import random
import time
import uuid
from datetime import datetime

import orjson
from pydantic import BaseModel

from core.records.endpoints import DataCapture, Variant
from serving.options import ServerOptions

STATE_FILE = "state.json"  # in the endpoint's runtime folder, while the server runs
LOG_FILE = "server.log"

TARGET_VARIANT = "X-Amzn-SageMaker-Target-Variant"
INVOKED_VARIANT = "X-Amzn-Invoked-Production-Variant"
CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"

# Counters, per variant, summed over the server's worker processes.
UNROUTED = "-"  # the variant label of a request refused before a variant was chosen
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
# The scores a variant answered, and their sum: its mean score (A/B comparisons). Only models
# that answer one score a row (binary classification, regression) are tallied.
SCORES = "skiff_scores"
SCORE_SUM = "skiff_score_sum"
# Which config the workers serve: the lowest number any live worker serves, the highest any
# failed to load, and how many serve one at all (a worker still starting has no gauge yet).
CONFIG_SERVED = "skiff_config_number"
CONFIG_FAILED = "skiff_failed_config_number"
WORKERS_READY = "skiff_workers_ready"
CAPTURED = "skiff_capture_records"  # data capture's records written, per variant
CAPTURE_DROPPED = "skiff_capture_dropped"  # and dropped (a full buffer, a failing destination)


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


# -- data capture: SageMaker's record format and object layout ---------------------------------
# Records are built by the capture's writer, a batch at a time: their parts cheaply (a cached
# second, a fast random id, one orjson call), about 5 µs where the plain way took 21.
_random = random.Random()
_second: list = [0, ""]  # the last whole second seen, and its ISO text
_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))  # a UUID's version and variant bits
_VERSION_4 = (0x4000 << 64) | (0x8000 << 48)  # version 4, RFC 4122's variant


def _part(config: DataCapture, data: bytes, content_type: str, mode: str) -> dict:
    kind = content_type.split(";")[0].strip().lower()
    encoding = "CSV" if kind in config.csv_types else "JSON" if kind in config.json_types else ""
    try:
        text = data.decode() if encoding else None
    except UnicodeDecodeError:
        text = None
    if text is None:
        text, encoding = base64.b64encode(data).decode(), "BASE64"
    return {"observedContentType": content_type, "mode": mode, "data": text, "encoding": encoding}


def _inference_time(now: float) -> str:
    second = int(now)
    if second != _second[0]:
        _second[:] = [second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))]
    return f"{_second[1]}.{int((now - second) * 1000):03d}Z"


def _event_id() -> str:
    """A random (version 4) UUID, from a fast generator: ids need to be unique, not secret."""
    h = "%032x" % (_random.getrandbits(128) & _CLEAR | _VERSION_4)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def capture_record(
    config: DataCapture,
    at: float,
    body: bytes,
    content_type: str,
    answer: bytes,
    answer_type: str,
) -> bytes:
    """One request's record (``at``: when it was answered, a Unix time), a JSON line in
    SageMaker's capture format::

    {"captureData": {"endpointInput": {"observedContentType": ..., "mode": "INPUT",
     "data": ..., "encoding": "CSV"}, "endpointOutput": {...}},
     "eventMetadata": {"eventId": ..., "inferenceTime": "2026-12-03T10:00:00.123Z"},
     "eventVersion": "0"}
    """
    data = {}
    if config.capture_input:
        data["endpointInput"] = _part(config, body, content_type, "INPUT")
    if config.capture_output:
        data["endpointOutput"] = _part(config, answer, answer_type, "OUTPUT")
    metadata = {"eventId": _event_id(), "inferenceTime": _inference_time(at)}
    record = {"captureData": data, "eventMetadata": metadata, "eventVersion": "0"}
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)


def capture_folder(destination: str, endpoint: str, variant: str, hour: datetime) -> str:
    """``<destination>/<endpoint>/<variant>/yyyy/mm/dd/hh``, as SageMaker lays captures out."""
    return f"{destination.rstrip('/')}/{endpoint}/{variant}/{hour:%Y/%m/%d/%H}"


def capture_object_url(destination: str, endpoint: str, variant: str, at: datetime) -> str:
    """A new capture object's URL: its folder, then ``mm-ss-mmm-<uuid>.jsonl``."""
    name = f"{at:%M-%S}-{at.microsecond // 1000:03d}-{uuid.uuid4().hex[:8]}.jsonl"
    return f"{capture_folder(destination, endpoint, variant, at)}/{name}"
