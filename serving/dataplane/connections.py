"""The endpoint's HTTP connections: uvicorn's httptools protocol with the limits it lacks.

uvicorn's httptools protocol reads headers for as long as a client sends them (httptools
keeps a header's value in memory until it ends: a 100 MB header took ~190 MB of the server
and stalled every other request for seconds), waits forever for a new connection's first
byte, and has no deadline for a request's line and headers. Here:

- the request line and headers are refused past ``max_header`` bytes with a 431 (counted as
  they arrive, so a header that never ends is refused as soon as it is too long);
- they must arrive within ``header_timeout`` seconds of the read that brought their first
  bytes, else a 408 (the timer is armed only for headers that take more than one read);
- a new connection that sends nothing for ``idle_timeout`` seconds is closed (between
  requests uvicorn's keep-alive timeout already applies).

The body's own deadline is the app's (``middleware.Guard.body``): it knows the request.
Everything else is uvicorn's, untouched: this is the hot path of every request.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectionLimits:
    max_header: int  # bytes of request line and headers
    header_timeout: float
    idle_timeout: float


class _HeadersTooLarge(Exception):
    """Raised from a parser callback to stop parsing the request (httptools re-raises it as
    its own error, with this one as the context)."""


class LimitedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a header size limit and header and idle timeouts."""

    def __init__(self, *args: Any, limits: ConnectionLimits, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.limits = limits
        self._reading_headers = True  # a request's line and headers are what comes next
        self._begun = False  # and some of them have come
        self._header_bytes = 0
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # uvicorn arms this timer only after a response; the first byte cancels it.
        self.timeout_keep_alive_task = self.loop.call_later(
            self.limits.idle_timeout, self.timeout_keep_alive_handler
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # uvicorn's, with the header count and the 431 (its own catches the parser's errors
        # as a 400, the one it refuses too-large headers with among them).
        if self._reading_headers:
            self._header_bytes += len(data)
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _HeadersTooLarge):
                self._too_large()
            else:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._reading_headers and self._begun:  # a request's headers, not all here yet
            if self._header_bytes > self.limits.max_header:
                self._too_large()
            elif self._header_timer is None:
                # Armed only now: most requests come whole in one read and never need it.
                timeout = self.limits.header_timeout
                self._header_timer = self.loop.call_later(timeout, self._too_slow)

    # Parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._begun = True

    def on_headers_complete(self) -> None:
        # Exact, once they are all here: the count above may include a body's first bytes.
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.limits.max_header:
            raise _HeadersTooLarge
        self._reading_headers, self._header_bytes = False, 0
        self._stop_header_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_headers, self._begun, self._header_bytes = True, False, 0

    # Refusals
    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_large(self) -> None:
        limit = self.limits.max_header
        self._refuse(431, f"request line and headers exceed the {limit}-byte limit")

    def _too_slow(self) -> None:
        self._header_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            self.transport.close()  # a pipelined request stalled behind an answer being sent
            return
        timeout = self.limits.header_timeout
        self._refuse(408, f"request headers not received within {timeout:g} s")

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` with Skiff's error shape, and close the connection."""
        if self.transport.is_closing():
            return
        logger.warning("refused a connection's request (%d): %s", status, message)
        body = json.dumps({"error": message, "status": status}).encode()
        head = [
            STATUS_LINE[status],
            *(name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers),
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()
