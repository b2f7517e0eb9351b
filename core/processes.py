"""Child processes: the environment that lets them import Skiff, and ending them.

Every process Skiff starts (a job's runner, an endpoint server, the Dask workers of a cluster
it creates) runs Skiff's code or code beside it (bring-your-own algorithms), so it gets the
parent's import path.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time


def import_path() -> str:
    """This process's ``sys.path`` as a ``PYTHONPATH`` value."""
    return os.pathsep.join(p for p in sys.path if p)


def child_env(**extra: str) -> dict[str, str]:
    """Our environment, with our import path (and ``extra``), for a child process."""
    return os.environ | {"PYTHONPATH": import_path(), **extra}


def alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (an exited child of ours is reaped on the way)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return False
    except ChildProcessError:  # not our child: ask the kernel
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def end_process(process: subprocess.Popen | int, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; returns once the process has exited.

    ``process`` is a child we started (a ``Popen``) or the pid of one we found (a server
    started by another command).
    """
    if isinstance(process, subprocess.Popen):
        if process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        return
    try:
        os.kill(process, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while alive(process):
        if time.monotonic() > deadline:
            os.kill(process, signal.SIGKILL)
            deadline = time.monotonic() + 5
        time.sleep(0.05)
