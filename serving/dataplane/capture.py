"""Data capture: a share of what the endpoint is asked and answers, recorded off the request
path in SageMaker's capture format (``serving.contract.capture_record``).

A request only decides whether it is sampled and appends what it was sent and answered, with
the time, to this worker's buffer (no I/O, no formatting, no lock the writer holds long). The
records are built by a background task, a chunk at a time between requests: built on the
request path, each cost ~35 µs of a request's CPU in the server (caches cold between requests)
where ~5 µs in a loop. It takes the buffers every ``FLUSH_SECONDS`` or once they hold
``FLUSH_BYTES``, whichever comes first, and writes one object per variant and flush, in a
thread: a slow destination holds that thread, never a request. While
it is slow the buffers grow to ``MAX_BUFFERED`` bytes; past that, and when a write fails,
records are dropped and counted in ``/metrics`` (``skiff_capture_dropped_total``). A config
that changes the capture, and a graceful stop, flush what is buffered first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime

import fsspec
from prometheus_client import Counter
from starlette.concurrency import run_in_threadpool

from core.records.endpoints import DataCapture
from serving import contract

logger = logging.getLogger(__name__)
# At most this many seconds between writes (SKIFF_CAPTURE_FLUSH_SECONDS: tests set it long,
# so that only a stop or a full buffer writes).
FLUSH_SECONDS = float(os.environ.get("SKIFF_CAPTURE_FLUSH_SECONDS", "2"))
FLUSH_BYTES = 4 * 1024 * 1024
MAX_BUFFERED = 64 * 1024 * 1024  # per worker: beyond this, records are dropped (counted)
CHUNK = 64  # records built between two looks at the requests waiting (~0.3 ms)
RECORD_OVERHEAD = 300  # bytes of a record beyond its body and answer (its JSON, its ids)
# What a sampled request leaves: when, what it was sent and answered (bodies, content types:
# the answer's as its media type, as Starlette's Response holds it). Atoms only: the garbage
# collector stops tracking such a tuple at its first look, where each tracked one buffered
# made every collection longer (~8 µs a request at 100%, measured with the collector off).
Sample = tuple[float, bytes, str, bytes, str]
Taken = list[tuple[DataCapture, str, list[Sample]]]  # a capture, a variant, its samples

CAPTURED = Counter(contract.CAPTURED, "records of data capture written", ["variant"])
DROPPED = Counter(contract.CAPTURE_DROPPED, "records of data capture dropped", ["variant"])


class Capture:
    """One worker's data capture for one endpoint."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self.config: DataCapture | None = None
        self._random = random.Random()
        self._lock = threading.Lock()  # the loop appends, the writer's thread swaps
        # (the capture's id: it is unhashable, the variant) → its samples; and the captures.
        self._buffers: dict[tuple[int, str], list[Sample]] = defaultdict(list)
        self._configs: dict[int, DataCapture] = {}
        self._size = 0
        self._due = asyncio.Event()
        self._warned_at = 0.0

    def configure(self, config: DataCapture | None) -> None:
        """Follow a new config's capture. What was buffered under the old one keeps its
        destination and is written by the next flush."""
        if config == self.config:
            return
        self.config = config
        if config is not None:
            self._configs[id(config)] = config
        self._random = random.Random(config.seed if config else None)
        self._due.set()

    def sampled(self) -> bool:
        """Whether this request is recorded (the config's percentage of them)."""
        config = self.config
        return config is not None and self._random.random() * 100 < config.percent

    def record(
        self,
        variant: str,
        body: bytes,
        content_type: str,
        answer: bytes,
        answer_media_type: str,
    ) -> None:
        """Buffer one sampled request (called on the request path: no I/O, no formatting)."""
        config = self.config
        if config is None:
            return
        size = len(body) + len(answer) + RECORD_OVERHEAD
        with self._lock:
            if self._size + size > MAX_BUFFERED:
                DROPPED.labels(variant).inc()
                return
            sample = (time.time(), body, content_type, answer, answer_media_type)
            self._buffers[(id(config), variant)].append(sample)
            self._size += size
            full = self._size >= FLUSH_BYTES
        if full:
            self._due.set()

    async def run(self) -> None:
        """Write the buffers every few seconds, or sooner when they are full; runs until
        cancelled, never dies. The records are built here, on the event loop, a chunk at a
        time between requests; only the writing is a thread's (built in a thread, they cost
        each request the GIL's hand-offs between that thread and the loop)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._due.wait(), FLUSH_SECONDS)
            self._due.clear()
            taken = self._take()
            try:
                objects = []
                for config, variant, samples in taken:
                    chunks = []
                    for start in range(0, len(samples), CHUNK):
                        chunks.append(_records(config, samples[start : start + CHUNK]))
                        await asyncio.sleep(0)  # the requests waiting go first
                    objects.append((config.destination, variant, b"".join(chunks), len(samples)))
            except asyncio.CancelledError:  # a stop while building keeps what was taken
                self._write_all(taken)
                raise
            await run_in_threadpool(self._write, objects)

    def flush(self) -> None:
        """Write what is buffered now (a stop, a test): an object per destination and
        variant."""
        self._write_all(self._take())

    def _write_all(self, taken: Taken) -> None:
        self._write([(c.destination, v, _records(c, s), len(s)) for c, v, s in taken])

    def _take(self) -> Taken:
        with self._lock:
            buffers, self._buffers, self._size = self._buffers, defaultdict(list), 0
            configs = self._configs
            current = {id(self.config): self.config} if self.config is not None else {}
            self._configs = current  # the others are named only by what is taken here
        return [(configs[key], variant, samples) for (key, variant), samples in buffers.items()]

    def _write(self, objects: list[tuple[str, str, bytes, int]]) -> None:
        now = datetime.now(UTC)
        for destination, variant, lines, count in objects:
            url = contract.capture_object_url(destination, self.endpoint, variant, now)
            try:
                with fsspec.open(url, "wb") as f:
                    f.write(lines)
                CAPTURED.labels(variant).inc(count)
            except Exception as exc:  # a destination that fails costs records, not requests
                DROPPED.labels(variant).inc(count)
                if time.monotonic() - self._warned_at > 60:
                    logger.warning("data capture: cannot write %s (dropped): %s", url, exc)
                    self._warned_at = time.monotonic()


def _records(config: DataCapture, samples: list[Sample]) -> bytes:
    """The samples' records, a JSON line each."""
    return b"".join(
        contract.capture_record(config, at, body, sent, answer, _header_value(media_type))
        for at, body, sent, answer, media_type in samples
    )


def _header_value(media_type: str) -> str:
    """The Content-Type header Starlette sends for ``media_type`` (text types get a charset)."""
    if media_type.startswith("text/") and "charset=" not in media_type.lower():
        return f"{media_type}; charset=utf-8"
    return media_type
