"""Shared fixtures: the real archive, a loopback HTTP server, a real Prefect server, and small
synthetic datasets for fast backend tests."""

from __future__ import annotations

import functools
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import flows  # noqa: F401  (sets Prefect's defaults before anything imports prefect)
from core.store import Store
from tests.helpers import ARCHIVE, free_port, start_logged, wait_for, write_channels


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Markers from what a test uses: the Prefect server (slow, every time: flow runs), the
    AWS stand-in, a Dask cluster."""
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if "prefect_server" in used:
            item.add_marker(pytest.mark.prefect)
            item.add_marker(pytest.mark.slow)
        if "aws" in used:
            item.add_marker(pytest.mark.aws)


@pytest.fixture(scope="session", autouse=True)
def runtime_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Endpoint pids, URLs and logs go to a temp folder; no test may leave a server running."""
    folder = tmp_path_factory.mktemp("runtime")
    os.environ["SKIFF_RUNTIME"] = str(folder)
    yield folder
    leftovers = []
    for state in folder.glob("endpoints/*/state.json"):
        pid = json.loads(state.read_text())["pid"]
        try:
            os.kill(pid, signal.SIGKILL)
            leftovers.append(state.parent.name)
        except ProcessLookupError:
            pass
    assert not leftovers, f"tests left endpoint servers running: {leftovers}"


@pytest.fixture(scope="session")
def archive() -> Path:
    if not ARCHIVE.exists():
        pytest.fail(f"the bank-marketing archive is missing: {ARCHIVE} (set SKIFF_TEST_ARCHIVE)")
    return ARCHIVE


@pytest.fixture(scope="session")
def csv_bytes(archive: Path) -> bytes:
    from flows.data import extract_member

    return extract_member(archive.read_bytes(), "bank-additional-full.csv", str(archive))


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(str(tmp_path / "store"))
    s.ensure_layout()
    return s


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def http_root(
    tmp_path_factory: pytest.TempPathFactory, archive: Path
) -> Iterator[tuple[Path, str]]:
    """A loopback HTTP server over a folder holding the archive; yields (folder, base URL)."""
    folder = tmp_path_factory.mktemp("http")
    (folder / "bank-additional.zip").write_bytes(archive.read_bytes())
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real ``prefect server start`` for the whole session, on a free loopback port.

    Yields its API URL, which is also set for this process and for subprocesses.
    """
    import httpx
    from prefect.settings import PREFECT_API_URL, temporary_settings

    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = os.environ | {
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": url,
        # Schedules become runs within seconds (default: a 60 s loop).
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "1",
        # What deploy/serve.sh's server does: logs streamed to --watch (off by default).
        "PREFECT_SERVER_LOGS_STREAM_OUT_ENABLED": "true",
        "PREFECT_SERVER_LOGS_STREAM_PUBLISHING_ENABLED": "true",
    }
    command = [sys.executable, *["-m", "prefect", "server", "start", "--host", "127.0.0.1"]]
    proc = start_logged([*command, "--port", str(port)], home / "server.log", env)

    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"prefect server exited: {(home / 'server.log').read_text()}")
        try:
            return httpx.get(f"{url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(healthy, 180, "the Prefect server", every=0.5)
        os.environ["PREFECT_API_URL"] = url
        with temporary_settings(updates={PREFECT_API_URL: url}):
            yield url
    finally:
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=10)  # send queued logs while the server still listens
        os.environ.pop("PREFECT_API_URL", None)
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def aws() -> Iterator[str]:
    """moto in server mode on a free loopback port: the stand-in for AWS (S3 and EC2).

    The standard AWS environment points at it (``AWS_ENDPOINT_URL``, dummy credentials), so
    boto3, s3fs and every subprocess reach it exactly as they would reach AWS. Yields its URL.
    """
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    env = {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield url
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()


@pytest.fixture
def bucket(aws: str, request: pytest.FixtureRequest) -> str:
    """A new, empty bucket on the stand-in; yields ``s3://<bucket>``."""
    import re

    import boto3

    name = (
        re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower())[:50].strip("-")
        + "-"
        + (os.urandom(3).hex())
    )
    boto3.client("s3").create_bucket(Bucket=name)
    return f"s3://{name}"


@pytest.fixture
def tiny_channels(store: Store) -> dict[str, str]:
    return write_channels(store, "tiny", 2000, seed=1)
