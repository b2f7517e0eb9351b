"""Request timeouts kept by one watchdog task.

``asyncio.timeout`` arms a timer for every request and disarms it after: about 5% of the
endpoint's CPU per single-record request at 64 connections (py-spy). Here a request only
notes its deadline in a dict; one task looks every ``tick`` seconds for requests past theirs
and cancels them. A request so times out up to ``tick`` late.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


class Deadlines:
    """Every awaited ``run`` ends within ``timeout`` (+ ``tick``) seconds or raises TimeoutError,
    while ``watch`` runs."""

    def __init__(self, timeout: float, tick: float | None = None):
        self.timeout = timeout
        self.tick = tick if tick is not None else min(0.25, timeout / 4)
        self._due: dict[asyncio.Task, float] = {}
        self._expired: set[asyncio.Task] = set()

    async def run(self, awaitable: Awaitable[T], timeout: float | None = None) -> T:
        """Await ``awaitable`` in this task; TimeoutError once it has taken ``timeout`` (by
        default the one given above). Runs nest: an inner one ends by the earlier deadline,
        and its TimeoutError is the one raised."""
        task = asyncio.current_task()
        assert task is not None
        outer = self._due.get(task)
        due = time.monotonic() + (self.timeout if timeout is None else timeout)
        self._due[task] = due if outer is None else min(due, outer)
        try:
            return await awaitable
        except asyncio.CancelledError:
            # Ours (and no one else's, such as a client that went away): a timeout.
            if task in self._expired and task.uncancel() == 0:
                raise TimeoutError from None
            raise
        finally:
            if outer is None:
                del self._due[task]
            else:
                self._due[task] = outer
            self._expired.discard(task)

    async def watch(self) -> None:
        """Cancel the requests past their deadline; runs until cancelled."""
        while True:
            await asyncio.sleep(self.tick)
            now = time.monotonic()
            for task, due in list(self._due.items()):
                if due <= now and task not in self._expired:
                    self._expired.add(task)
                    task.cancel()
