"""The local backend's warm runners (after ``expect_many_jobs()``): one
``python -m algorithms.warm`` per backend, which forks each job's runner from a process that
has already imported the training stack. For many short jobs (a tuning job's trials) it
saves each one about half a second of CPU; the runner itself is the same, and so is the job.

``RunnerProcess`` is what the local backend waits on and ends, as it does a ``Popen``.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
from pathlib import Path

from core.errors import BackendError
from core.processes import alive, child_env

START_TIMEOUT = 60.0


class WarmRunners:
    """Starts the warm process on first use; ``spawn`` asks it for a runner. Thread-safe."""

    def __init__(self, preload: tuple[str, ...] = ()) -> None:
        self.preload = preload  # modules the warm process imports beside the runner's stack
        self._proc: subprocess.Popen | None = None
        self._ids = itertools.count(1)
        self._lock = threading.Lock()  # one start, one request at a time
        self._said = threading.Condition()
        self._answers: dict[int, int] = {}  # request id → pid
        self._codes: dict[int, int] = {}  # pid → exit code
        self._ready = False

    def _start(self) -> subprocess.Popen:
        self._ready = False  # a new process (the last one, if any, is gone): until it says so
        proc = subprocess.Popen(
            [sys.executable, "-m", "algorithms.warm", *self.preload],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=child_env(),
            text=True,
        )
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()
        with self._said:
            if not self._said.wait_for(
                lambda: self._ready or proc.poll() is not None, START_TIMEOUT
            ):
                proc.kill()
                raise BackendError(f"the warm runner did not start within {START_TIMEOUT:g} s")
        if not self._ready:
            raise BackendError(f"the warm runner exited at start (code {proc.returncode})")
        return proc

    def _read(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            said = json.loads(line)
            with self._said:
                if "ready" in said:
                    self._ready = True
                elif "code" in said:
                    self._codes[said["pid"]] = said["code"]
                else:
                    self._answers[said["id"]] = said["pid"]
                self._said.notify_all()
        with self._said:
            self._said.notify_all()  # it is gone: waiters look for themselves

    def gone(self) -> bool:
        return self._proc is None or self._proc.poll() is not None

    def spawn(self, spec_url: str, output: Path) -> RunnerProcess:
        """A new runner for the job at ``spec_url``, its output going to ``output``."""
        with self._lock:
            if self.gone():
                self._proc = self._start()
            request = next(self._ids)
            assert self._proc.stdin is not None
            message = {"id": request, "spec_url": spec_url, "output": str(output)}
            self._proc.stdin.write(json.dumps(message) + "\n")
            self._proc.stdin.flush()
            with self._said:
                self._said.wait_for(lambda: request in self._answers or self.gone(), 30)
                pid = self._answers.pop(request, None)
        if pid is None:
            raise BackendError("the warm runner did not start the job's runner")
        return RunnerProcess(self, pid, output)

    def exit_code(self, pid: int, timeout: float | None) -> int | None:
        """The runner's exit code once it has exited (waiting up to ``timeout``), else None.
        A runner whose warm process is gone is judged by the kernel (code -1: unknown)."""
        with self._said:
            self._said.wait_for(lambda: pid in self._codes or self.gone(), timeout)
            if pid in self._codes:
                return self._codes[pid]
        if not self.gone():
            return None  # it reports every exit: not yet
        return None if alive(pid) else -1

    def close(self) -> None:
        """Let the warm process end (it does once its runners have exited)."""
        with self._lock:
            if self._proc is not None and self._proc.stdin is not None:
                self._proc.stdin.close()
            self._proc = None


class RunnerProcess:
    """A warm runner's forked job runner, as the local backend uses a ``Popen``."""

    def __init__(self, runners: WarmRunners, pid: int, output: Path):
        self.runners, self.pid, self.output = runners, pid, output
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.runners.exit_code(self.pid, 0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self.returncode = self.runners.exit_code(self.pid, timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired("algorithms.warm runner", timeout or 0)
        return self.returncode

    def lines(self) -> list[str]:
        """What it printed (its log lines, a traceback)."""
        try:
            return self.output.read_text(errors="replace").splitlines()
        except OSError:
            return []
