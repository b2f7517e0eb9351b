"""What a job's runner keeps in hand itself, wherever it runs: its log, its heartbeat, its
max runtime and stop requests. A job belongs to its runner, as a SageMaker training job does,
not to whoever launched it: with the launcher gone (killed, its machine lost), the runner
still stops at its max runtime or when asked, and never dies of the launcher's closed pipe.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Callable

from core.clock import now
from core.records.channel import for_people, untimed
from core.records.jobs import HEARTBEAT_SECONDS, JobStore, Secondary, TrainingJob


class JobLog:
    """The job's log: printed as it goes (to whoever launched the runner) and saved whole to
    the store every few seconds (for everyone else)."""

    def __init__(self, jobs: JobStore, name: str, every: float = 2.0):
        self.jobs, self.name, self.every = jobs, name, every
        self.lines: list[str] = []
        self._saved_at = 0.0
        self._lock = threading.Lock()

    def __call__(self, message: str) -> None:
        line = f"{now()} {message}"
        with self._lock:
            self.lines.append(line)
        try:
            print(line, flush=True)
        except OSError:  # the launcher is gone, and its pipe with it: the store has the log
            _stop_printing()
        if time.monotonic() - self._saved_at > self.every:
            self.save()

    def save(self) -> None:
        with self._lock:
            text = "\n".join(self.lines) + "\n"
        self.jobs.write_log(self.name, text)
        self._saved_at = time.monotonic()


def relayed(line: str, total: int | None = None) -> str:
    """A runner's log line as a launcher shows it in a log of its own (which stamps it
    again): without its time, a round as people read it (``channel.for_people``)."""
    return for_people(untimed(line), total)


def _stop_printing() -> None:
    """Point standard output and error at /dev/null, for Python and for the C libraries."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        os.dup2(devnull, fd)
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - lives as the process


Ending = Callable[[Secondary, str], None]


class Watch(threading.Thread):
    """Beats the job's heartbeat, and ends the job (``end(secondary, why)``, which does not
    return) at its ``deadline`` (a Unix time: its max runtime after its creation), or when a
    stop is requested."""

    def __init__(
        self,
        jobs: JobStore,
        spec: TrainingJob,
        deadline: float,
        log: JobLog,
        end: Ending,
        every: float = 1.0,
    ):
        super().__init__(daemon=True, name="skiff-job-watch")
        self.jobs, self.spec, self.log, self.end, self.every = jobs, spec, log, end, every
        self.deadline = deadline
        self.who = f"runner pid {os.getpid()} on {socket.gethostname()}"
        self.done = threading.Event()

    def run(self) -> None:
        beat_at = float("-inf")  # the first beat at once: the runner has taken over
        while not self.done.is_set():
            if time.monotonic() - beat_at >= HEARTBEAT_SECONDS:
                self._quietly(self.jobs.beat, self.spec.name, self.who)
                self._quietly(self.log.save)
                beat_at = time.monotonic()
            if time.time() > self.deadline:
                limit = self.spec.max_runtime_seconds
                self.end(
                    Secondary.MAX_RUNTIME_EXCEEDED,
                    f"MaxRuntimeExceeded: ran longer than {limit:g} s",
                )
            if self._quietly(self.jobs.stop_requested, self.spec.name):
                self.end(Secondary.STOPPED, "stop requested")
            self.done.wait(self.every)

    def _quietly(self, call: Callable[..., object], *arguments: object) -> object:
        try:  # a store that does not answer for a moment is not a reason to stop the job
            return call(*arguments)
        except Exception:
            return None
