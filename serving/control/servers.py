"""Endpoint servers on this machine: start one detached, find it, watch it, stop it.

A server runs in its own session with its output in a log file under the runtime folder, so
it outlives the flow run that started it (a cancelled Prefect run kills its process group) and
never holds a caller's stdout open. Its pid and URL live in the runtime folder (the state file
of ``serving.contract``), never in the store.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from pydantic import ConfigDict, ValidationError

from core.errors import OptionsConflict, ServingError
from core.processes import alive, child_env, end_process
from core.records.endpoints import EndpointStore
from core.runtime import endpoint_folder, endpoint_folders
from core.store import Store
from serving.contract import LOG_FILE, STATE_FILE, ServerState, ServerStatus
from serving.options import ServerOptions

SERVER = "serving.dataplane.server"  # the module a server process runs


class RunningEndpoint(ServerState):
    """A server running on this machine: what its state file says, its log, its token."""

    model_config = ConfigDict(frozen=True)

    log: Path
    token: str | None = None

    @property
    def name(self) -> str:
        return self.endpoint

    def http_options(self) -> dict[str, Any]:
        """httpx keyword arguments that reach this server: its token and certificate."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        verify = ssl.create_default_context(cafile=self.certfile) if self.certfile else True
        return {"headers": headers, "verify": verify}


def running(store: Store, name: str) -> RunningEndpoint | None:
    """The server of endpoint ``name`` if one runs on this machine."""
    folder = endpoint_folder(store.root, name)
    try:
        state = ServerState.model_validate_json((folder / STATE_FILE).read_bytes())
    except (FileNotFoundError, ValidationError):
        return None
    if not alive(state.pid):
        return None
    token = ServerOptions(auth_token_file=state.auth_token_file).token()
    return RunningEndpoint(**state.model_dump(), log=folder / LOG_FILE, token=token)


def running_all(store: Store) -> list[RunningEndpoint]:
    found = (running(store, name) for name in endpoint_folders(store.root))
    return [r for r in found if r is not None]


def start(
    store: Store,
    name: str,
    host: str = "127.0.0.1",
    port: int | None = None,
    timeout: float = 60.0,
    poll_interval: float = 0.5,
    options: ServerOptions | None = None,
) -> RunningEndpoint:
    """Start the server of a stored endpoint (or return the one already running).

    ``port`` None: the port it had at its last start on this machine (its URL stays what its
    clients know), else a free one; 0: a free one. A server already running is returned as
    it is, unless options are asked for (set explicitly, on ``options``, or a ``port``) that
    it does not have: then nothing is ignored.

    Raises:
        EndpointNotFound: no config is stored under ``name``.
        OptionsConflict: it runs with other options than those asked for (names them).
        ServingError: the port is taken, or the server did not become ready (the message
            holds its log's tail).
    """
    EndpointStore(store).current(name)  # must exist: start brings back a stored endpoint
    if (existing := running(store, name)) is not None:
        _check_same(existing, port, options)
        return existing
    last = _last_port(store, name)
    if port is None and last is not None:
        _check_free(host, last, f"endpoint {name!r}'s port at its last start")
        port = last
    elif port:
        _check_free(host, port, "the port asked for")
    proc = spawn(store, name, host, port or 0, poll_interval, options)
    log_path = endpoint_folder(store.root, name) / LOG_FILE
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServingError(f"endpoint {name!r} failed to start: {_tail(log_path)}")
        endpoint = running(store, name)
        status = status_of(endpoint) if endpoint is not None else None
        if endpoint is not None and status is not None and status.serves(1):
            # A restart of this endpoint comes back on this port.
            _port_file(store, name).write_text(endpoint.url.rsplit(":", 1)[1])
            return endpoint
        if status is not None and status.rejected(1):
            stop(store, name)
            raise ServingError(
                f"endpoint {name!r} cannot serve its config "
                f"{status.any_worker_failed_config_number:g}: {status.last_error}"
            )
        time.sleep(0.1)
    stop(store, name)
    raise ServingError(f"endpoint {name!r} not ready after {timeout:g} s: {_tail(log_path)}")


LAST_PORT = "last-port"  # in the endpoint's runtime folder: the port its last start had


def _port_file(store: Store, name: str) -> Path:
    return endpoint_folder(store.root, name) / LAST_PORT


def _last_port(store: Store, name: str) -> int | None:
    try:
        return int(_port_file(store, name).read_text())
    except (FileNotFoundError, ValueError):
        return None


def forget_port(store: Store, name: str) -> None:
    _port_file(store, name).unlink(missing_ok=True)


def _check_free(host: str, port: int, what: str) -> None:
    """Refuse a port another process listens on, naming it (the server would only log it).

    Raises:
        ServingError: the port is taken.
    """
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ServingError(
                f"port {port} ({what}) on {host} is taken: {exc.strerror}; free it, or start "
                "with --port 0 for a new one"
            ) from None


def spawn(
    store: Store,
    name: str,
    host: str = "127.0.0.1",
    port: int = 0,
    poll_interval: float = 0.5,
    options: ServerOptions | None = None,
) -> subprocess.Popen:
    """Start the endpoint's server process, detached, and return at once (``start`` waits
    until it serves; SageMaker's CreateEndpoint answers while it is still Creating)."""
    folder = endpoint_folder(store.root, name)
    folder.mkdir(parents=True, exist_ok=True)
    log_path, state_path = folder / LOG_FILE, folder / STATE_FILE
    state_path.unlink(missing_ok=True)
    command = [
        sys.executable,
        "-m",
        SERVER,
        "--store",
        store.root,
        "--endpoint",
        name,
        "--host",
        host,
        "--port",
        str(port),
        "--state-file",
        str(state_path),
        "--poll-interval",
        str(poll_interval),
        "--options",
        (options or ServerOptions()).model_dump_json(),
    ]
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=child_env(),
            start_new_session=True,
        )


def _check_same(server: RunningEndpoint, port: int, options: ServerOptions | None) -> None:
    asked = options.differences(server.server_options()) if options is not None else {}
    running_port = int(server.url.rsplit(":", 1)[1])
    if port and port != running_port:
        asked["port"] = (port, running_port)
    if asked:
        shown = "; ".join(f"{k}: asked {a!r}, it has {h!r}" for k, (a, h) in asked.items())
        raise OptionsConflict(
            f"endpoint {server.name!r} already runs (pid {server.pid}) with other options: "
            f"{shown}. Stop it first (skiff endpoints stop {server.name}), then start it again"
        )


def status_of(endpoint: RunningEndpoint) -> ServerStatus | None:
    """What the server says it serves, or None when it does not answer (yet)."""
    try:
        response = httpx.get(f"{endpoint.url}/skiff/status", timeout=5, **endpoint.http_options())
        return ServerStatus.model_validate_json(response.content)
    except (httpx.HTTPError, ValidationError):
        return None


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def stop(store: Store, name: str, timeout: float = 20.0) -> bool:
    """Stop the endpoint's server if it runs; return whether one was running."""
    endpoint = running(store, name)
    if endpoint is None:
        return False
    end_process(endpoint.pid, grace=timeout)
    (endpoint_folder(store.root, name) / STATE_FILE).unlink(missing_ok=True)
    return True


def wait_for_config(endpoint: RunningEndpoint, number: int, timeout: float = 60.0) -> None:
    """Wait until the server serves config ``number``.

    Raises:
        ServingError: the server could not apply it (its reason), or did not in time.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = status_of(endpoint)
        if status is not None and status.serves(number):
            return
        if status is not None and status.rejected(number):
            reason = status.last_error or f"see {endpoint.log}"
            raise ServingError(f"endpoint {endpoint.name!r} rejected config {number}: {reason}")
        time.sleep(0.05)
    raise ServingError(f"endpoint {endpoint.name!r} did not apply config {number} in {timeout:g} s")
