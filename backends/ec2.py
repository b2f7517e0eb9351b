"""The ec2 backend: a SageMaker-style training job on EC2 instances that exist only for it.

It launches a driver instance (Dask scheduler, a Dask worker and the training driver) and
N-1 worker instances, whose user data (``backends.ec2_userdata``) runs
``python -m backends.ec2_node``. Instances find each other through the store, and this
side follows the job through the store's status file and DescribeInstances: the machine
running the flow never needs to reach into the VPC.

Guarantee: when ``execute`` returns or raises, every instance tagged with the job's id has
been told to terminate and none is left pending, running or stopped, on success, failure,
max runtime, a stop request, Ctrl-C or SIGTERM (a cancelled Prefect run: SIGKILL follows
30 s later, so teardown retries for at most 20 s), a lost instance and a failed launch. Instances
also end themselves if this process dies (see ``ec2_userdata``), and ``skiff ec2 reap``
terminates whatever is past its deadline.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any, ClassVar

from botocore.exceptions import BotoCoreError, ClientError

from algorithms.watch import relayed
from backends.base import BackendOptions, TrainingBackend
from backends.ec2_fleet import Fleet, describe_error, ec2_client
from backends.ec2_options import Ec2Options, Ec2Settings, config_file, resolve_settings
from backends.ec2_userdata import GRACE_SECONDS, Role, user_data
from core.errors import BackendError, Interrupted
from core.records.jobs import (
    HEARTBEAT_SECONDS,
    JobResources,
    JobStatus,
    JobStore,
    Secondary,
    Status,
    TrainingJob,
)

logger = logging.getLogger(__name__)

RUNNING = ("pending", "running")
End = tuple[Status, Secondary, str]


class SignalGuard:
    """SIGTERM and SIGINT become exceptions in the main thread, as before (the previous
    handler runs: Prefect's raises its TerminationSignal, Python's raises KeyboardInterrupt),
    except that inside ``deferred()`` they wait until the block ends (so an instance being
    launched is never left unknown), and once ``tearing_down`` they are only logged (so a
    second Ctrl-C cannot cut the teardown short).
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.previous: dict[int, Any] = {}
        self.deferring = self.tearing_down = False
        self.pending: int | None = None

    def __enter__(self) -> SignalGuard:
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        else:
            logger.warning(
                "not in the main thread: SIGTERM and Ctrl-C are left to the "
                "handlers already installed"
            )
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.tearing_down:
            logger.warning("%s: already terminating the job's instances", name)
        elif self.deferring:
            logger.warning("%s: stopping as soon as the launch call returns", name)
            self.pending = signum
        else:
            self._interrupt(signum, frame)

    def _interrupt(self, signum: int, frame: FrameType | None) -> None:
        previous = self.previous.get(signum)
        if previous == signal.SIG_IGN:
            return
        if callable(previous):
            previous(signum, frame)
        raise Interrupted(signal.Signals(signum).name)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        self.deferring = True
        try:
            yield
        finally:
            self.deferring = False
        if self.pending is not None:
            self._interrupt(self.pending, None)


class Ec2Backend(TrainingBackend):
    """Runs jobs on EC2 instances launched for them.

    Args:
        options: ``Ec2Options`` (or their fields as keywords); what they leave unset comes
            from ``SKIFF_EC2_*`` or the config file, read here (``Ec2Settings``).
        poll_interval: seconds between checks of the status file and the instances.
        teardown_timeout: seconds to confirm that every instance is terminating.
        collective_timeout: seconds an xgboost collective may wait on a peer.
    """

    name: ClassVar[str] = "ec2"
    Options: ClassVar[type[BackendOptions]] = Ec2Options  # type: ignore[assignment]

    def __init__(
        self,
        options: BackendOptions | None = None,
        *,
        poll_interval: float = 2.0,
        teardown_timeout: float = 20.0,
        collective_timeout: float = JobResources().collective_timeout,
        **given: Any,
    ):
        super().__init__(options, **given)
        given_here = self.options.model_dump(exclude={"threads"}, exclude_none=True)
        self.settings: Ec2Settings = resolve_settings(**given_here)
        if not self.settings.ami:
            raise BackendError(
                f"the ec2 backend needs an AMI: --ami, SKIFF_EC2_AMI or 'ami' in {config_file()}"
            )
        self.poll_interval, self.teardown_timeout = poll_interval, teardown_timeout
        self.collective_timeout = collective_timeout

    def prepare(self, job: TrainingJob) -> TrainingJob:
        local = [
            url for url in [job.output_url, *job.channels.values()] if not url.startswith("s3://")
        ]
        if local:
            raise BackendError(
                f"the ec2 backend needs an s3:// store: instances cannot read {local[0]}"
            )
        s = self.settings
        launch = {
            "job_id": f"{job.name}-{secrets.token_hex(4)}",
            "instance_type": s.instance_type,
            "instance_count": s.instance_count,
            "ami": s.ami,
            "region": self.region(),
            "spot": s.spot,
            "collective_timeout": self.collective_timeout,
        }
        return job.model_copy(update={"resources": job.resources.under(launch)})

    def region(self) -> str:
        import boto3

        region = self.settings.region or boto3.session.Session().region_name
        if not region:
            raise BackendError(
                "no AWS region: give --region, SKIFF_EC2_REGION or AWS_DEFAULT_REGION"
            )
        return region

    def execute(self, job: TrainingJob, jobs: JobStore) -> JobStatus:
        res = job.resources
        launch_by = datetime.now(UTC) + timedelta(
            seconds=job.max_runtime_seconds + GRACE_SECONDS + self.settings.worker_start_timeout
        )
        fleet = Fleet(ec2_client(res.region), res.job_id, job.name, self.settings, launch_by)
        with SignalGuard() as guard:
            try:
                end = self._launch_and_follow(job, jobs, fleet, guard)
            except BackendError as exc:
                end = Status.FAILED, Secondary.FAILED, str(exc)
            except BaseException as exc:
                guard.tearing_down = True
                interrupted = Status.STOPPED, Secondary.STOPPED, f"interrupted ({exc!r})"
                self._teardown(fleet, jobs, job.name, interrupted)
                raise
            guard.tearing_down = True
            return self._teardown(fleet, jobs, job.name, end)

    def _launch_and_follow(
        self, job: TrainingJob, jobs: JobStore, fleet: Fleet, guard: SignalGuard
    ) -> End | None:
        started = time.monotonic()
        count, spec_url = self.settings.instance_count, jobs.spec_url(job.name)
        with guard.deferred():
            driver = fleet.launch("driver", 1, self.user_data("driver", job, spec_url))
            launched = dict.fromkeys(driver, "driver")
            if count > 1:
                workers = fleet.launch("worker", count - 1, self.user_data("worker", job, spec_url))
                launched |= dict.fromkeys(workers, "worker")
        jobs.store.write_json(
            JobStore.key(job.name, "cluster", "instances.json"),
            {"job_id": fleet.job_id, "instances": launched},
        )
        return self._follow(job, jobs, fleet, started)

    def user_data(self, role: Role, job: TrainingJob, spec_url: str) -> str:
        """The boot script of the job's ``role`` instances (after ``prepare``)."""
        s = self.settings
        return user_data(
            role,
            job_id=job.resources.job_id,
            spec_url=spec_url,
            region=job.resources.region,
            python=s.remote_python,
            max_runtime=job.max_runtime_seconds,
            instance_count=s.instance_count,
            worker_start_timeout=s.worker_start_timeout,
            worker_death_timeout=s.worker_death_timeout,
        )

    def _follow(self, job: TrainingJob, jobs: JobStore, fleet: Fleet, started: float) -> End | None:
        """Wait for the driver's terminal status; say why the job must end otherwise."""
        shown, beat_at = 0, 0.0
        while True:
            if jobs.status(job.name).status.terminal:
                return None
            if time.monotonic() - beat_at >= HEARTBEAT_SECONDS:  # until the driver's runner's
                jobs.stand_in(job.name)
                beat_at = time.monotonic()
            if time.monotonic() - started > job.max_runtime_seconds:
                return (
                    Status.STOPPED,
                    Secondary.MAX_RUNTIME_EXCEEDED,
                    (f"MaxRuntimeExceeded: ran longer than {job.max_runtime_seconds:g} s"),
                )
            if jobs.stop_requested(job.name):
                return Status.STOPPED, Secondary.STOPPED, "stop requested"
            try:
                lost = [i for i in fleet.instances() if i.state not in RUNNING]
            except (ClientError, BotoCoreError) as exc:  # throttled, say: look again next time
                logger.warning("describing the job's instances: %s", describe_error(exc))
                lost = []
            if lost and not jobs.status(job.name).status.terminal:  # ended while we looked?
                return (
                    Status.FAILED,
                    Secondary.FAILED,
                    "; ".join(
                        f"{i.role} instance {i.id} is {i.state}"
                        + (f": {i.reason}" * bool(i.reason))
                        for i in lost
                    ),
                )
            shown = _relay_log(jobs, job.name, shown)
            time.sleep(self.poll_interval)

    def _teardown(self, fleet: Fleet, jobs: JobStore, name: str, end: End | None) -> JobStatus:
        """Terminate every instance of the job, then record how the job ended."""
        try:
            seen = fleet.terminate(self.teardown_timeout)
            left = [i.id for i in seen if i.alive]
        except BackendError as exc:  # AWS never answered: the survivors are unknown
            seen, left = [], [f"unknown ({exc})"]
        terminated = {i.id: i.role for i in seen if not i.alive}
        if left:
            logger.error(
                "instances of job %s may still be alive after %g s: %s; run `skiff ec2 "
                "reap --job-id %s`",
                name,
                self.teardown_timeout,
                ", ".join(left),
                fleet.job_id,
            )
        status = jobs.status(name)
        if end is not None and not status.status.terminal:
            status = status.moved(*end, failure_reason=end[2])
        info = status.info | {
            "instances": terminated,
            "job_id": fleet.job_id,
            "instances_left_alive": left,
        }
        status = status.model_copy(update={"info": info})
        jobs.write_status(status)
        return status


def _relay_log(jobs: JobStore, name: str, shown: int) -> int:
    """Pass the job log's new lines (the driver saves it every few seconds) to our log."""
    text = jobs.log(name)
    for line in text[shown:].splitlines():
        logger.info("[%s] %s", name, relayed(line))
    return len(text)
