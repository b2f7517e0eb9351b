"""A warm runner: ``python -m algorithms.warm [MODULE ...]``, a process that imports the job
runner's stack once (pandas, pyarrow, xgboost: about half a second of CPU; and the modules
named) and then forks a fresh runner for each job it is asked for, so that many short jobs (a
tuning job's trials) do not each pay it.

Each forked runner is ``algorithms.run`` exactly as ``python -m algorithms.run`` would run it:
a process of its own, its output in a file, its job its own (stop requests, max runtime,
heartbeat, as every runner). The protocol is JSON lines: on standard input
``{"id": 1, "spec_url": URL, "output": PATH}``; on standard output ``{"ready": pid}`` once,
``{"id": 1, "pid": 1234}`` for each runner, ``{"pid": 1234, "code": 0}`` when one exits. The
process has no threads of its own, so forking it is safe; it ends when its input closes and
its runners have exited.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sys
import traceback
from typing import Any


def _preload(modules: list[str]) -> None:
    """The runner's stack, and ``modules`` (the dask backend's client, for its trials)."""
    import importlib

    import pyarrow.parquet  # noqa: F401
    import xgboost  # noqa: F401

    import algorithms.run
    import algorithms.xgboost  # noqa: F401

    for module in modules:
        importlib.import_module(module)


def _runner(spec_url: str, output: str) -> None:
    """In the forked child: point its output at ``output`` and run the job; never returns."""
    code = 1
    try:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        sys.stdin = open(os.devnull)  # noqa: SIM115 - lives as the process
        sys.stdout = os.fdopen(1, "w", buffering=1)
        sys.stderr = os.fdopen(2, "w", buffering=1)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        from algorithms import run

        code = run.main([spec_url])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()  # nothing left in the buffer for a fork to copy


def main(argv: list[str] | None = None) -> int:
    _preload(sys.argv[1:] if argv is None else argv)
    _say({"ready": os.getpid()})
    stdin, pending, open_input, running = sys.stdin.fileno(), b"", True, set()
    while open_input or running:
        readable = [stdin] if open_input else []
        ready, _, _ = select.select(readable, [], [], 0.05)
        if ready:
            data = os.read(stdin, 65536)
            open_input = bool(data)
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    _runner(request["spec_url"], request["output"])
                running.add(pid)
                _say({"id": request["id"], "pid": pid})
        while running:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            running.discard(pid)
            _say({"pid": pid, "code": os.waitstatus_to_exitcode(status)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
