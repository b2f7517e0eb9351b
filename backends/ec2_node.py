"""What a training job's instances run: ``python -m backends.ec2_node driver|worker SPEC_URL``.

driver
    Starts a Dask scheduler and a Dask worker on this instance, publishes the scheduler's
    address (this instance's private address) to ``jobs/<name>/cluster/scheduler.json`` in the
    store, waits until every instance's worker has joined, and runs the job there (the same
    ``JobRunner`` as ``python -m algorithms.run --scheduler``). At the end it shuts the cluster
    down, so the workers on other instances exit at once.
worker
    Waits for the published address, then runs a Dask worker until the scheduler goes away
    (plus its death timeout).

Nothing here needs the launcher: instances find each other through the store, and the
launcher follows the job through the store's status file. The user data
(``backends.ec2_userdata``) powers the instance off whatever this returns.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from algorithms.run import JobRunner
from core.clock import now
from core.errors import SkiffError
from core.processes import end_process
from core.records.jobs import JobStatus, JobStore, Secondary, Status, split_spec_url
from core.store import Store

METADATA = "http://169.254.169.254/latest"


def cluster_key(name: str) -> str:
    """Where the driver publishes its scheduler's address."""
    return JobStore.key(name, "cluster", "scheduler.json")


def node_host() -> str:
    """This instance's private address: ``$SKIFF_NODE_HOST``, else the metadata service's
    ``local-ipv4`` (IMDSv2: a session token first)."""
    if host := os.environ.get("SKIFF_NODE_HOST"):
        return host
    token_request = urllib.request.Request(
        f"{METADATA}/api/token",
        method="PUT",
        headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"},
    )
    with urllib.request.urlopen(token_request, timeout=5) as response:
        token = response.read().decode()
    address_request = urllib.request.Request(
        f"{METADATA}/meta-data/local-ipv4", headers={"X-aws-ec2-metadata-token": token}
    )
    with urllib.request.urlopen(address_request, timeout=5) as response:
        return response.read().decode().strip()


def _dask(command: str, *arguments: str) -> subprocess.Popen:
    module = f"distributed.cli.dask_{command}"
    return subprocess.Popen([sys.executable, "-m", module, *arguments, "--no-dashboard"])


def start_scheduler(host: str, folder: Path, timeout: float = 60) -> tuple[subprocess.Popen, str]:
    """A scheduler on ``host`` and a port it picks; returns it and its address."""
    file = folder / "scheduler.json"
    proc = _dask("scheduler", "--host", host, "--port", "0", "--scheduler-file", str(file))
    deadline = time.monotonic() + timeout
    while (address := _published_address(file)) is None:
        if proc.poll() is not None or time.monotonic() > deadline:
            end_process(proc)
            raise SkiffError(f"the Dask scheduler did not start on {host} within {timeout:g} s")
        time.sleep(0.1)
    return proc, address


def _published_address(file: Path) -> str | None:
    """The address in the scheduler's file, once it is there whole: Dask writes it in place,
    so a reader can find it empty or half-written."""
    try:
        return json.loads(file.read_text())["address"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return None


def start_worker(address: str, host: str, death_timeout: float) -> subprocess.Popen:
    return _dask("worker", address, "--host", host, "--death-timeout", f"{death_timeout:g}")


def wait_for_workers(address: str, count: int, timeout: float) -> int:
    """Wait until ``count`` workers have joined; return how many did."""
    from distributed import Client

    from algorithms.dask_client import workers_within

    with Client(address, timeout=30, set_as_default=False) as client:
        return workers_within(client, count, timeout)


def shut_cluster_down(address: str) -> None:
    """Ask the scheduler to close, and with it every worker (best effort)."""
    from distributed import Client

    with contextlib.suppress(Exception), Client(address, timeout=10) as client:
        client.shutdown()


def run_driver(spec_url: str, instances: int, start_timeout: float, death_timeout: float) -> int:
    root, name = split_spec_url(spec_url)
    runner = JobRunner(Store(root), name)
    try:
        status = _drive(runner, node_host(), instances, start_timeout, death_timeout)
    except BaseException as exc:
        # Failing here, before or around the runner, would otherwise leave the launcher only
        # "the driver instance is terminated" to report: record what went wrong.
        if not runner.status.status.terminal:
            runner.record_end(exc, context="on the driver instance: ")
        raise
    return 0 if status.status == Status.COMPLETED else 1


def _drive(
    runner: JobRunner, host: str, instances: int, start_timeout: float, death_timeout: float
) -> JobStatus:
    """Start the cluster, wait for every instance's worker, then run the job on it."""
    with tempfile.TemporaryDirectory(prefix="skiff-") as tmp, contextlib.ExitStack() as stack:
        scheduler, address = start_scheduler(host, Path(tmp))
        stack.callback(end_process, scheduler)
        stack.callback(end_process, start_worker(address, host, death_timeout))
        stack.callback(shut_cluster_down, address)  # runs first: workers elsewhere exit now
        runner.use_scheduler(address)
        runner.store.write_json(
            cluster_key(runner.spec.name), {"address": address, "host": host, "at": now()}
        )
        runner.move(
            Status.IN_PROGRESS,
            Secondary.STARTING,
            f"scheduler at {address}: waiting for {instances} workers",
        )
        joined = wait_for_workers(address, instances, start_timeout)
        if joined < instances:
            reason = (
                f"only {joined} of {instances} instances' workers joined the scheduler "
                f"within {start_timeout:g} s"
            )
            runner.move(Status.FAILED, Secondary.FAILED, reason, failure_reason=reason)
            return runner.status
        return runner.run()


def run_worker(spec_url: str, start_timeout: float, death_timeout: float) -> int:
    root, name = split_spec_url(spec_url)
    store = Store(root)
    jobs = JobStore(store)
    host = node_host()
    deadline = time.monotonic() + start_timeout
    while not store.exists(cluster_key(name)):
        if time.monotonic() > deadline or jobs.status(name).status.terminal:
            print(f"no scheduler for job {name} within {start_timeout:g} s", flush=True)
            return 1
        time.sleep(1)
    address = store.read_json(cluster_key(name))["address"]
    worker = start_worker(address, host, death_timeout)
    try:
        return worker.wait()
    finally:
        end_process(worker)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backends.ec2_node", description=__doc__)
    parser.add_argument("role", choices=["driver", "worker"])
    parser.add_argument("spec_url", help="URL of the job's job.json in the store")
    parser.add_argument("--instances", type=int, default=1, help="workers to wait for (driver)")
    parser.add_argument("--start-timeout", type=float, default=600)
    parser.add_argument("--death-timeout", type=float, default=60)
    args = parser.parse_args(argv)
    # ``timeout`` in the user data sends SIGTERM: unwind, so the child processes stop too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.role == "driver":
        return run_driver(args.spec_url, args.instances, args.start_timeout, args.death_timeout)
    return run_worker(args.spec_url, args.start_timeout, args.death_timeout)


if __name__ == "__main__":
    sys.exit(main())
