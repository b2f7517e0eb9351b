"""Without PREFECT_API_URL a run starts Prefect's temporary server; it ends with the run,
however the run ends, and never holds the console's pipe (hardening 2, item 11)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import psutil
import pytest

from tests.helpers import ROOT, wait_for

pytestmark = pytest.mark.slow


def test_a_killed_run_takes_its_temporary_server_with_it(archive, tmp_path):
    env = os.environ | {"PYTHONPATH": str(ROOT), "PREFECT_HOME": str(tmp_path / "home")}
    env.pop("PREFECT_API_URL", None)  # no server named: the run starts its own
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flows.bank_marketing",
            "--source",
            str(archive),
            "--store",
            str(tmp_path / "s"),
            "--algorithm",
            "tests.byo_algorithms:Slow",
            "--max-runtime",
            "60",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    family, kids = psutil.Process(run.pid), []
    try:
        while b"sleeping" not in run.stdout.readline():  # the job trains: the server is up
            assert run.poll() is None, "the run ended early"
        kids = family.children(recursive=True)
        servers = [p for p in kids if "uvicorn" in p.cmdline()]
        assert len(servers) == 1
        run.send_signal(signal.SIGKILL)  # as a segfault would end it: no cleanup at all
        run.communicate(timeout=30)  # the pipe closes: nothing of the run holds it open
        wait_for(
            lambda: not servers[0].is_running() or servers[0].status() == psutil.STATUS_ZOMBIE,
            30,
            "the temporary server to end",
        )
    finally:
        run.kill()
        for p in kids:  # the job's runner, which goes on by design (tests/backends/test_runner.py)
            if p.is_running():
                p.kill()
