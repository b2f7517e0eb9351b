"""Every benchmark starts as documented (``python -m bench.<name>``): its ``--help`` answers.
The benchmarks themselves take minutes and run by hand, not here."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import ROOT

BENCHMARKS = sorted(
    p.stem for p in (ROOT / "bench").glob("*.py") if p.stem not in ("__init__", "synthetic")
)


def test_every_benchmark_is_listed():
    assert BENCHMARKS == [
        "api",
        "baseline_servers",
        "capture",
        "pipeline",
        "serving_speed",
        "swap",
        "training",
        "transform",
        "tuning",
    ]


@pytest.mark.parametrize("name", BENCHMARKS)
def test_a_benchmark_answers_help(name):
    proc = subprocess.run(
        [sys.executable, "-m", f"bench.{name}", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage:" in proc.stdout
