"""Prefect's temporary server, for a command run without ``PREFECT_API_URL``, tied to it.

Prefect starts one itself when no server is named, as a child process that inherits the
console and outlives a run that crashes (a segfault, ``kill -9``), keeping the caller's pipe
open so that whoever waits for the run's output waits forever. Started here instead, before
the flow, it is the same server Prefect would have started (its own singleton, which Prefect
then reuses), with two differences: it writes to a log file in the runtime folder rather
than the console, and the kernel ends it when this process ends, however it ends (Linux's
``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
from typing import Any

from core.runtime import runtime_root

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child, between fork and exec
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class _Popen:
    """``subprocess`` as Prefect's server module sees it while the server starts: its Popen
    ties the child to us and sends its output to ``log``."""

    def __init__(self, log: Any):
        self.log = log

    def __getattr__(self, name: str) -> Any:
        return getattr(subprocess, name)

    def Popen(self, *args: Any, **kwargs: Any) -> subprocess.Popen:
        kwargs |= {"stdout": self.log, "stderr": subprocess.STDOUT, "stdin": subprocess.DEVNULL}
        if sys.platform.startswith("linux"):
            kwargs["preexec_fn"] = _die_with_parent
        return subprocess.Popen(*args, **kwargs)


def start_if_needed() -> str:
    """Start the temporary server now, tied to this process, unless a server is named; the
    API URL of the server in use (for child processes, which would start their own)."""
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

    if PREFECT_API_URL.value():
        return PREFECT_API_URL.value()
    # Only now: the server's modules take 2 s to import, for nothing when a server is named.
    from prefect.server.api import server as prefect_server

    folder = runtime_root()
    folder.mkdir(parents=True, exist_ok=True)
    temporary = prefect_server.SubprocessASGIServer()  # the one Prefect itself would use
    with open(folder / "prefect-temporary-server.log", "ab") as log:
        original, prefect_server.subprocess = prefect_server.subprocess, _Popen(log)
        try:
            temporary.start(timeout=PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
        finally:
            prefect_server.subprocess = original
    return temporary.api_url
