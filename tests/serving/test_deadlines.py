"""The endpoint's request timeouts: one watchdog task instead of a timer per request."""

from __future__ import annotations

import asyncio
import time

import pytest

from serving.dataplane.deadlines import Deadlines


def _with_watchdog(deadlines: Deadlines, body):
    async def main():
        watcher = asyncio.create_task(deadlines.watch())
        try:
            return await body()
        finally:
            watcher.cancel()

    return asyncio.run(main())


def test_prompt_work_returns_and_late_work_times_out_within_a_tick():
    deadlines = Deadlines(0.2, tick=0.05)

    async def body():
        assert await deadlines.run(asyncio.sleep(0, result=7)) == 7
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await deadlines.run(asyncio.sleep(30))
        return time.monotonic() - started

    took = _with_watchdog(deadlines, body)
    assert 0.2 <= took < 2, took
    assert not deadlines._due and not deadlines._expired  # nothing left behind


def test_a_cancel_from_elsewhere_stays_a_cancel():
    deadlines = Deadlines(30, tick=0.05)

    async def body():
        task = asyncio.create_task(deadlines.run(asyncio.sleep(30)))
        await asyncio.sleep(0.05)
        task.cancel()  # as when a client goes away
        with pytest.raises(asyncio.CancelledError):
            await task

    _with_watchdog(deadlines, body)


def test_a_nested_run_ends_by_the_earlier_deadline_and_the_outer_one_holds():
    deadlines = Deadlines(30, tick=0.05)

    async def body():
        async def inner_then_more():
            with pytest.raises(TimeoutError):  # the inner, shorter deadline
                await deadlines.run(asyncio.sleep(30), timeout=0.1)
            await asyncio.sleep(0.2)  # the outer one (30 s) still stands
            return "outer finished"

        assert await deadlines.run(inner_then_more()) == "outer finished"
        short = Deadlines(0.1, tick=0.05)
        watcher = asyncio.create_task(short.watch())
        try:
            with pytest.raises(TimeoutError):  # an inner run cannot outlast the outer deadline
                await short.run(short.run(asyncio.sleep(30), timeout=30))
        finally:
            watcher.cancel()
        assert not short._due and not short._expired

    _with_watchdog(deadlines, body)
    assert not deadlines._due and not deadlines._expired
