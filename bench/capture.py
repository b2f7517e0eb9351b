"""What data capture costs an endpoint: one server, its capture switched between three ways.

    python -m bench.capture [--duration 4] [--repeat 6] [--connections 16]

One endpoint of a bank-shaped model (one worker), its config switched between no capture,
capture at 0% and capture at 100% (to a local folder): the same process each time, so no
difference between servers is measured as capture's. Each way is loaded with single-record CSV
requests from ``--connections`` kept-alive connections (an asyncio client in this process,
which pins itself to the last core and the servers to the others), for ``--duration``
seconds; the three are measured one after another, ``--repeat`` times (the order rotated each time,
so that none is always first), and each ratio comes from one repetition (this machine's
speed drifts by tens of percent over minutes). It prints
requests/s and the ratios to the endpoint without capture, and counts the records written.
Not part of CI.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.serving_speed import cpu_seconds, pin, train
from bench.synthetic import bank_shaped
from core.records.endpoints import DataCapture, EndpointStore
from core.store import Store
from flows.approval import deploy_approved as deploy
from serving.control import rollouts, servers
from serving.control.deploys import delete


async def _connection(host: str, port: int, request: bytes, until: float, done: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    answered = 0
    while time.monotonic() < until:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        if not head.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"the endpoint answered {head.splitlines()[0]!r}")
        answered += 1
    writer.close()
    done.append(answered)


def load(
    url: str, body: bytes, connections: int, seconds: float, pid: int = 0
) -> tuple[float, float]:
    """Requests per second from ``connections`` kept-alive connections for ``seconds``, and
    the server's (``pid``'s) CPU microseconds per request."""
    host, port = url.removeprefix("http://").split(":")
    request = (
        f"POST /invocations HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/csv\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    done: list[int] = []

    async def run() -> None:
        until = time.monotonic() + seconds
        await asyncio.gather(
            *(_connection(host, int(port), request, until, done) for _ in range(connections))
        )

    cpu = cpu_seconds(pid) if pid else 0.0
    started = time.monotonic()
    asyncio.run(run())
    elapsed, answered = time.monotonic() - started, max(sum(done), 1)
    used = (cpu_seconds(pid) - cpu) if pid else 0.0
    return answered / elapsed, 1e6 * used / answered


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.capture", description=__doc__)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--repeat", type=int, default=6)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="skiff-bench-capture-") as tmp:
        folder = Path(tmp)
        store = Store(str(folder / "store"))
        store.ensure_layout()
        train(store)
        body = bank_shaped(1, seed=11).drop(columns="y").to_csv(header=False, index=False)
        ways = {
            "no capture": None,
            "capture 0%": DataCapture(destination=str(folder / "zero"), percent=0),
            "capture 100%": DataCapture(destination=str(folder / "all"), percent=100),
        }
        url = deploy(store, "bench-capture", "bench", 1).endpoint_url
        running = servers.running(store, "bench-capture")
        assert running is not None
        pin(running.pid)
        configs = EndpointStore(store)

        def switch(capture: DataCapture | None) -> None:
            """The same server, its capture changed by a new config (no model reload)."""
            config = configs.current("bench-capture")
            changed = config.model_copy(update={"capture": capture, "reason": "bench"})
            rollouts.publish(configs, changed, running)

        try:
            last = (os.cpu_count() or 1) - 1
            os.sched_setaffinity(0, {last})  # the client on the last core, the servers not
            load(url, body.encode(), args.connections, 1.0)  # warm up
            runs: list[dict[str, float]] = []
            cpus: list[dict[str, float]] = []
            names = list(ways)
            for rep in range(args.repeat):
                order = names[rep % len(names) :] + names[: rep % len(names)]  # rotated
                measured = {}
                for name in order:
                    switch(ways[name])
                    measured[name] = load(url, body.encode(), args.connections, args.duration,
                                          running.pid)  # fmt: skip
                runs.append({n: m[0] for n, m in measured.items()})
                cpus.append({n: m[1] for n, m in measured.items()})
        finally:
            delete(store, "bench-capture")  # a graceful stop: the buffers are written
        records = sum(len(p.read_text().splitlines()) for p in (folder / "all").rglob("*.jsonl"))
        print(f"\nrequests/s at {args.connections} connections, single-record CSV, one worker:")
        for name in ways:
            values = ", ".join(f"{r[name]:,.0f}" for r in runs)
            print(
                f"  {name:13} median {statistics.median(r[name] for r in runs):>8,.0f}  ({values})"
            )
        for name in ("capture 0%", "capture 100%"):
            ratios = sorted(r[name] / r["no capture"] for r in runs)
            shown = ", ".join(f"{x:.3f}" for x in ratios)
            print(f"  {name} / no capture: median {statistics.median(ratios):.3f} ({shown})")
        print("server CPU µs per request:")
        for name in ways:
            print(f"  {name:13} median {statistics.median(c[name] for c in cpus):>6.0f}")
        print(f"  records written at 100%: {records:,} (target: cost at most 10% of the rps)")


if __name__ == "__main__":
    main()
