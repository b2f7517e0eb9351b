"""A job belongs to its runner, not to whoever launched it (hardening 2, item 10): with its
launcher gone the runner stops at its max runtime or when asked, survives the launcher's
closed pipe, and beats a heartbeat; a job whose heartbeat stopped is lost, and reaped. Its
live channel (rounds, log, heartbeat) is readable while it runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta

import pytest

from core.records.channel import JobFeed, read_rounds
from core.records.jobs import JobStore, Secondary, Status
from flows.cli import main as skiff
from tests.helpers import ROOT, job_pid, make_job, wait_for

pytestmark = pytest.mark.slow


def runner(jobs: JobStore, name: str) -> subprocess.Popen:
    """``python -m algorithms.run`` with no launcher: in a session of its own, its output to a
    pipe that nobody reads and that is closed at once (as a killed launcher's would be)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "algorithms.run", jobs.spec_url(name)],
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    proc.stdout.close()
    return proc


def waiting(store, channels, release, **changes):
    """A job that trains until ``release`` exists, recorded, with its runner started alone."""
    jobs = JobStore(store)
    job = make_job(
        store,
        channels,
        algorithm="tests.byo_algorithms:Waits",
        hyperparameters={"release": str(release)},
        **changes,
    )
    jobs.create(job)
    return jobs, job, runner(jobs, job.name)


def training(jobs: JobStore, name: str):
    return lambda: jobs.status(name).secondary_status == Secondary.TRAINING


def ended(jobs: JobStore, name: str):
    return lambda: (s := jobs.status(name)).status.terminal and s


@pytest.mark.parametrize("why", ["max runtime", "stop request"])
def test_without_its_launcher_the_runner_stops_the_job_itself(store, tiny_channels, tmp_path, why):
    limit = 5 if why == "max runtime" else 300
    jobs, job, proc = waiting(store, tiny_channels, tmp_path / "never", max_runtime_seconds=limit)
    try:
        wait_for(training(jobs, job.name), 60, "training")
        if why == "stop request":
            assert skiff(["--store", store.root, "jobs", "stop", job.name]) == 0
        status = wait_for(ended(jobs, job.name), 60, "the runner to end the job")
        proc.wait(timeout=30)
    finally:
        proc.kill()
    expected = Secondary.MAX_RUNTIME_EXCEEDED if why == "max runtime" else Secondary.STOPPED
    assert (status.status, status.secondary_status) == (Status.STOPPED, expected)
    assert read_rounds(jobs, job.name)  # it reported rounds while it ran
    with pytest.raises(ProcessLookupError):
        os.kill(job_pid(jobs, job.name), 0)


def test_a_killed_launcher_leaves_a_runner_that_finishes_the_job(store, tiny_channels, tmp_path):
    """kill -9 of the process that launched the job: its runner, writing to the dead
    launcher's pipe, neither dies of it nor runs on unseen; the job completes."""
    jobs, release = JobStore(store), tmp_path / "release"
    job = make_job(
        store,
        tiny_channels,
        algorithm="tests.byo_algorithms:Waits",
        hyperparameters={"release": str(release)},
    )
    launcher_code = textwrap.dedent(f"""
        from backends.local import LocalBackend
        from core.records.jobs import TrainingJob
        from core.store import Store
        job = TrainingJob.model_validate_json({job.model_dump_json()!r})
        LocalBackend().run(job, Store({store.root!r}))
    """)
    launcher = subprocess.Popen(
        [sys.executable, "-c", launcher_code],
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(
            lambda: job.name in jobs.names() and len(read_rounds(jobs, job.name)) > 3,
            60,
            "the job to be training",
        )
        launcher.send_signal(signal.SIGKILL)
        launcher.wait(timeout=10)
        # The runner goes on (it logs every 50 ms into the closed pipe), then is released.
        count = len(read_rounds(jobs, job.name))
        wait_for(lambda: len(read_rounds(jobs, job.name)) > count + 10, 30, "more rounds")
        release.touch()
        status = wait_for(ended(jobs, job.name), 60, "the job to end")
    finally:
        os.killpg(launcher.pid, signal.SIGKILL) if launcher.poll() is None else None
    assert status.status == Status.COMPLETED, status.failure_reason


def test_a_job_whose_heartbeat_stopped_is_lost_and_reaped(capsys, store, tiny_channels, tmp_path):
    jobs, job, proc = waiting(store, tiny_channels, tmp_path / "never")
    wait_for(training(jobs, job.name), 60, "training")
    wait_for(lambda: jobs.heartbeat(job.name).by.startswith("runner pid"), 30, "its heartbeat")
    proc.send_signal(signal.SIGKILL)  # its machine gone: nothing records anything any more
    proc.wait(timeout=10)
    beat = jobs.heartbeat(job.name)
    assert beat and beat.by.startswith("runner pid")
    # As its heartbeat is a minute later (the wait is not what is tested):
    old = beat.model_copy(update={"at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()})
    jobs.publish(jobs.key(job.name, "heartbeat.json"), old)

    assert skiff(["--store", store.root, "jobs", "list"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if job.name in line)
    assert "Lost" in row and "InProgress" not in row
    assert skiff(["--store", store.root, "jobs", "describe", job.name, "--json"]) == 0
    assert "no heartbeat for 6" in json.loads(capsys.readouterr().out)["lost"]
    assert skiff(["--store", store.root, "jobs", "reap"]) == 0
    assert f"{job.name}: lost: no heartbeat for" in capsys.readouterr().out
    status = jobs.status(job.name)
    assert status.status == Status.FAILED and status.failure_reason.startswith("lost: ")
    assert jobs.lost(status) is None  # over, now


def test_a_follower_sees_each_round_while_the_job_trains(capsys, store, tiny_channels, tmp_path):
    release = tmp_path / "release"
    jobs, job, proc = waiting(store, tiny_channels, release)
    try:
        feed, seen = JobFeed(jobs, job.name), []

        def more_rounds() -> bool:
            update = feed.poll()
            seen.extend(update.rounds)
            return len(seen) >= 10 and not update.over

        wait_for(more_rounds, 60, "rounds while it trains")
        assert [r["round"] for r in seen] == list(range(len(seen)))  # each once, in order
        release.touch()
        wait_for(ended(jobs, job.name), 60, "the job to end")
        assert skiff(["--store", store.root, "jobs", "logs", job.name, "--follow"]) == 0
        out = capsys.readouterr().out
        assert "round 1: train_auc 0.5000" in out and "Completed/Completed" in out
        rounds = [line for line in out.splitlines() if line.startswith("round ")]
        assert rounds == [f"round {i + 1}: train_auc 0.5000" for i in range(len(rounds))]
    finally:
        proc.kill()
