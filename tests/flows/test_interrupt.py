"""Ctrl-C, or a cancelled Prefect run (SIGTERM to the run's process group), while training:
the job ends Stopped and no training process is left behind."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from core.records.jobs import JobStore, Secondary, Status
from core.store import Store
from tests.helpers import job_pid, pipeline_process, wait_for


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_run_stops_its_job(prefect_server, archive, tmp_path, sig):
    store_url = str(tmp_path / "store")
    arguments = f"--source {archive} --store {store_url} --job-name interrupted"
    proc = pipeline_process(
        prefect_server,
        tmp_path,
        f"{arguments} --algorithm tests.byo_algorithms:Slow",
        wait=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, as a terminal or a Prefect worker gives
    )
    jobs = JobStore(Store(store_url))

    def training() -> bool:
        try:
            return jobs.status("interrupted").secondary_status == Secondary.TRAINING
        except Exception:
            return False

    try:
        wait_for(training, 120, "the job to start training", every=0.2)
        os.killpg(proc.pid, sig)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    status = jobs.status("interrupted")
    assert status.status == Status.STOPPED
    with pytest.raises(ProcessLookupError):
        os.kill(job_pid(jobs, "interrupted"), 0)
