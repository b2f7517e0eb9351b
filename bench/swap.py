"""Updates under load: ALL_AT_ONCE, CANARY and LINEAR swaps while wrk keeps 16 connections busy.

    apt-get install wrk
    python -m bench.swap

For each update it prints the requests wrk sent, how many failed (non-2xx or socket errors;
the target is 0), how long the update took, and the time from the first config write to the
first answer from the new variant (a probe asks for that variant by name every 5 ms).
Not part of CI.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.serving_speed import LUA, parse_wrk, train, wrk_command
from bench.synthetic import bank_shaped
from core.store import Store
from flows.approval import deploy_approved as deploy
from serving.control import servers
from serving.control.deploys import delete
from serving.control.rollouts import Alarms, UpdatePolicy

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
    argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    ).parse_args()
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
            command = wrk_command(url, script, connections=16, seconds=budget)
            load = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
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
