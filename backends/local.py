"""The local backend: the job runs in a child process on this machine."""

from __future__ import annotations

import collections
import contextlib
import contextvars
import logging
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from algorithms.watch import relayed
from backends.base import BackendOptions, TrainingBackend
from backends.warm import RunnerProcess, WarmRunners
from core.processes import child_env, end_process
from core.records.channel import planned_rounds
from core.records.jobs import (
    HEARTBEAT_SECONDS,
    JobStatus,
    JobStore,
    Secondary,
    Status,
    TrainingJob,
)
from core.records.transforms import TransformJob, TransformStatus, TransformStore

logger = logging.getLogger(__name__)
BACKSTOP_SECONDS = 15.0  # after its runner should have stopped a job itself


class LocalOptions(BackendOptions):
    """The local backend's options: only ``threads`` (0 or unset: every core)."""


class LocalBackend(TrainingBackend):
    """Runs ``python -m algorithms.run`` in a child process, as a remote machine would.

    A child process (rather than a thread) gives a clean kill at the max runtime or on a stop
    request, and keeps a crashing algorithm from taking the caller down. The child shares the
    caller's process group, so a Ctrl-C or a cancelled flow run ends it too.

    Args:
        options: ``LocalOptions`` (or ``threads=`` as a keyword).
        poll_interval: seconds between checks of the child, the clock and stop requests.
    """

    name: ClassVar[str] = "local"
    Options: ClassVar[type[BackendOptions]] = LocalOptions

    def __init__(
        self, options: BackendOptions | None = None, *, poll_interval: float = 0.2, **given: Any
    ):
        super().__init__(options, **given)
        self.poll_interval = poll_interval
        self._warm: WarmRunners | None = None
        self._outputs: Path | None = None

    def warm_preload(self) -> tuple[str, ...]:
        """Modules the warm runners import beside the runner's stack (none here)."""
        return ()

    def expect_many_jobs(self) -> None:
        """Fork each job's runner from a warm process (``backends.warm``), from now on."""
        if self._warm is None:
            self._warm = WarmRunners(self.warm_preload())
            self._outputs = Path(tempfile.mkdtemp(prefix="skiff-runners-"))

    def close(self) -> None:
        if self._warm is not None:
            self._warm.close()
            self._warm = None
        if self._outputs is not None:
            shutil.rmtree(self._outputs, ignore_errors=True)
            self._outputs = None
        super().close()

    def _start_runner(
        self, job: TrainingJob | TransformJob, jobs: JobStore, module: str = "algorithms.run"
    ) -> subprocess.Popen | RunnerProcess:
        if self._warm is not None and self._outputs is not None and module == "algorithms.run":
            return self._warm.spawn(jobs.spec_url(job.name), self._outputs / f"{job.name}.out")
        return subprocess.Popen(
            [sys.executable, "-m", module, jobs.spec_url(job.name)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=child_env(),
            text=True,
        )

    def prepare(self, job: TrainingJob) -> TrainingJob:
        resources = job.resources.under({"threads": self.options.threads or 0})
        return job.model_copy(update={"resources": resources})

    def prepare_transform(self, job: TransformJob) -> TransformJob:
        resources = job.resources.under({"threads": self.options.threads or 0})
        return job.model_copy(update={"resources": resources})

    def execute_transform(self, job: TransformJob, jobs: TransformStore) -> TransformStatus:
        return self.execute(job, jobs, module="serving.batch.run")  # type: ignore[return-value]

    def execute(
        self, job: TrainingJob | TransformJob, jobs: JobStore, module: str = "algorithms.run"
    ) -> JobStatus:
        """Run the job's runner (``module``) in a child process and watch it to its end."""
        started = time.monotonic()
        proc = self._start_runner(job, jobs, module)
        tail: collections.deque[str] = collections.deque(maxlen=20)
        reader = None
        if isinstance(proc, subprocess.Popen):
            # The relay runs in a copy of our context, so a Prefect run's logger sees it.
            context = contextvars.copy_context()
            reader = threading.Thread(
                target=context.run,
                args=(_relay, proc, job.name, planned_rounds(job), tail),
                daemon=True,
            )
            reader.start()
        try:
            stop = self._wait(proc, job, jobs, started)
        except BaseException:
            _end(proc)
            self._record_stop(jobs, job.name, Secondary.STOPPED, "interrupted")
            raise
        if reader is not None:
            reader.join(timeout=5)
        else:  # a warm runner's output is in its file: relayed once it is over
            for line in proc.lines():
                tail.append(line)
                logger.info("[%s] %s", job.name, relayed(line, planned_rounds(job)))
        if stop is not None:
            return self._record_stop(jobs, job.name, *stop)
        # Still not over: the runner died before it could say why.
        reason = f"{jobs.KIND} process exited with code {proc.returncode}: " + " | ".join(tail)
        return jobs.end(job.name, Status.FAILED, Secondary.FAILED, reason)

    def _wait(
        self,
        proc: subprocess.Popen | RunnerProcess,
        job: TrainingJob | TransformJob,
        jobs: JobStore,
        started: float,
    ) -> tuple[Secondary, str] | None:
        """Wait for the child, beating the job's heartbeat beside it. The runner stops itself
        at its max runtime or when asked (``algorithms/watch.py``); this stops a runner that
        did not, ``BACKSTOP_SECONDS`` later, and says why."""
        next_check = asked_at = beat_at = 0.0
        while proc.poll() is None:
            elapsed = time.monotonic() - started
            if elapsed > job.max_runtime_seconds + BACKSTOP_SECONDS:
                _end(proc)
                return Secondary.MAX_RUNTIME_EXCEEDED, (
                    f"MaxRuntimeExceeded: ran longer than {job.max_runtime_seconds:g} s"
                )
            if elapsed >= next_check:  # store reads and writes: not every poll
                next_check = elapsed + 1.0
                if elapsed - beat_at >= HEARTBEAT_SECONDS:
                    jobs.stand_in(job.name)
                    beat_at = elapsed
                if not asked_at and jobs.stop_requested(job.name):
                    asked_at = elapsed
                if asked_at and elapsed - asked_at > BACKSTOP_SECONDS:
                    _end(proc)
                    return Secondary.STOPPED, "stop requested"
            # Wakes as soon as the child exits (a tuning job's next trial waits on it).
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(self.poll_interval)
        return None

    @staticmethod
    def _record_stop(jobs: JobStore, name: str, secondary: Secondary, message: str) -> JobStatus:
        return jobs.end(name, Status.STOPPED, secondary, message)


def _end(proc: subprocess.Popen | RunnerProcess) -> None:
    end_process(proc if isinstance(proc, subprocess.Popen) else proc.pid)


def _relay(
    proc: subprocess.Popen, name: str, total: int | None, tail: collections.deque[str]
) -> None:
    """Pass the child's output on to our log, keeping the last lines for a failure reason."""
    assert proc.stdout is not None
    with proc.stdout:
        for line in proc.stdout:
            line = line.rstrip()
            tail.append(line)
            logger.info("[%s] %s", name, relayed(line, total))
