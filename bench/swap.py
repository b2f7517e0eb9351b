"""Updates under load: ALL_AT_ONCE, CANARY and LINEAR swaps while wrk keeps 16 connections busy.

    apt-get install wrk
    python bench/swap.py

For each update it prints the requests wrk sent, how many failed (non-2xx or socket errors;
the target is 0), how long the update took, and the time from the first config write to the
first answer from the new variant (a probe asks for that variant by name every 5 ms).
Not part of CI.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.serving import LUA, parse_wrk, train  # noqa: E402
from bench.synthetic import bank_shaped  # noqa: E402
from core.store import Store  # noqa: E402
from flows.approval import deploy_approved as deploy  # noqa: E402
from serving.control import servers  # noqa: E402
from serving.control.deploys import delete  # noqa: E402
from serving.control.rollouts import Alarms, UpdatePolicy  # noqa: E402

UPDATES = [
    (2, UpdatePolicy(strategy="ALL_AT_ONCE", termination_wait_seconds=1)),
    (
        1,
        UpdatePolicy(
            strategy="CANARY", canary_size=0.1, wait_seconds=3, termination_wait_seconds=1
        ),
    ),
    (
        2,
        UpdatePolicy(
            strategy="LINEAR", linear_step=0.34, wait_seconds=1, termination_wait_seconds=1
        ),
    ),
]


def first_answer_from(url: str, variant: str, started: float, found: list[float]) -> None:
    """Record when ``variant`` first answers (a 400 names the variants until it is live)."""
    body = bank_shaped(1, seed=5).drop(columns=["y"]).to_csv(header=False, index=False)
    headers = {"Content-Type": "text/csv", "X-Amzn-SageMaker-Target-Variant": variant}
    with httpx.Client(base_url=url, timeout=10) as client:
        while time.monotonic() - started < 60:
            if client.post("/invocations", content=body, headers=headers).status_code == 200:
                found.append(time.monotonic() - started)
                return
            time.sleep(0.005)


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="skiff-bench-swap-"))
    store = Store(str(folder / "store"))
    store.ensure_layout()
    train(store)
    train(store, seed=4)  # version 2: another model
    data = folder / "single.csv"
    bank_shaped(1, seed=9).drop(columns=["y"]).to_csv(data, header=False, index=False)
    script = folder / "single.lua"
    script.write_text(LUA.format(body=data))
    url = deploy(store, "swap", "bench", 1).endpoint_url
    server = servers.running(store, "swap")
    assert server is not None
    print(f"{'update':12} {'requests':>9} {'failed':>7} {'update s':>9} {'to first answer s':>18}")
    try:
        for version, policy in UPDATES:
            budget = 4 + policy.wait_seconds * len(policy.shares()) + 2
            load = subprocess.Popen(
                [
                    "wrk",
                    "-t1",
                    "-c16",
                    f"-d{budget:.0f}s",
                    "--latency",
                    "--timeout",
                    "10s",
                    "-s",
                    str(script),
                    f"{url}/invocations",
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            time.sleep(1.5)  # load is steady before the update starts
            started, found = time.monotonic(), []
            probe = threading.Thread(
                target=first_answer_from, args=(url, f"v{version}", started, found)
            )
            probe.start()
            deploy(
                store,
                "swap",
                "bench",
                version,
                policy=policy.model_copy(update={"alarms": Alarms(max_p99_ms=10_000)}),
            )
            took = time.monotonic() - started
            probe.join()
            out, _ = load.communicate()
            result = parse_wrk(out)
            failed = result["failed"] + (1 if result["socket_errors"] else 0)
            first = f"{found[0]:.3f}" if found else "never"
            note = f"  ({result['socket_errors']})" if result["socket_errors"] else ""
            print(
                f"{policy.strategy:12} {result['requests']:9d} {failed:7d} {took:9.2f} "
                f"{first:>18}{note}"
            )
    finally:
        delete(store, "swap")


if __name__ == "__main__":
    main()
