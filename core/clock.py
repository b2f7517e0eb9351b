"""Timestamps as every record stores them: UTC, ISO 8601, to the millisecond."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> str:
    """The current time, e.g. ``2026-12-01T21:36:39.123+00:00``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")
