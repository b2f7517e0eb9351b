"""Reading data capture back: the records an endpoint's servers wrote (``serving.contract``'s
format and layout), newest last, for ``skiff endpoints capture``."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import fsspec
import orjson

from core.errors import ServingError
from core.records.endpoints import DataCapture
from serving.contract import capture_folder

_SPAN = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
MAX_HOURS = 24 * 31  # folders looked at, at most: a month of hours


def parse_span(text: str) -> timedelta:
    """``90s``, ``15m``, ``1h``, ``2d`` as a time span.

    Raises:
        ServingError: anything else, saying what is expected.
    """
    found = _SPAN.match(text.strip())
    if not found:
        raise ServingError(f"--since {text!r}: expected a number and s, m, h or d (e.g. 1h)")
    return timedelta(**{_UNITS[found[2]]: float(found[1])})


def _decoded(part: dict[str, Any] | None) -> str:
    if not part:
        return ""
    if part.get("encoding") == "BASE64":
        return base64.b64decode(part["data"]).decode("utf-8", "replace")
    return str(part.get("data", ""))


def read_records(
    capture: DataCapture, endpoint: str, since: timedelta, variant: str | None = None
) -> list[dict[str, Any]]:
    """The records captured for ``endpoint`` (one variant, or all) within ``since``, oldest
    first: each its time, variant, event id, and the input and output as text."""
    fs, root = fsspec.core.url_to_fs(capture.destination)
    base = f"{root.rstrip('/')}/{endpoint}"
    try:
        variants = [variant] if variant else sorted(p.rsplit("/", 1)[-1] for p in fs.ls(base))
    except FileNotFoundError:
        return []
    now = datetime.now(UTC)
    start = now - since
    hours = min(int(since.total_seconds() // 3600) + 2, MAX_HOURS)
    found = []
    for name in variants:
        for back in range(hours - 1, -1, -1):
            hour = now - timedelta(hours=back)
            folder = capture_folder(root, endpoint, name, hour)
            try:
                objects = sorted(fs.ls(folder, detail=False))
            except FileNotFoundError:
                continue
            for path in objects:
                for line in fs.cat_file(path).splitlines():
                    record = orjson.loads(line)
                    at = datetime.fromisoformat(record["eventMetadata"]["inferenceTime"])
                    if at < start:
                        continue
                    data = record["captureData"]
                    found.append(
                        {
                            "time": at.isoformat(timespec="milliseconds"),
                            "variant": name,
                            "event_id": record["eventMetadata"]["eventId"],
                            "input": _decoded(data.get("endpointInput")),
                            "output": _decoded(data.get("endpointOutput")),
                        }
                    )
    return sorted(found, key=lambda r: r["time"])
