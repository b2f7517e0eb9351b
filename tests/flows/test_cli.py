"""The ``skiff`` command on a store holding one real training job and its registered model."""

from __future__ import annotations

import json

import pytest

from backends.local import LocalBackend
from core.store import Store
from flows.cli import main
from flows.registration import register
from tests.helpers import make_job


@pytest.fixture
def trained(store: Store, tiny_channels) -> str:
    job = make_job(store, tiny_channels, name="cli-job")
    LocalBackend().run(job, store)
    register(store, "tiny", job.name, threshold=None)
    return job.name


def run(capsys, store: Store, *args: str) -> tuple[int, str, str]:
    code = main(["--store", store.root, *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_jobs_commands(capsys, store, trained):
    code, out, _ = run(capsys, store, "jobs", "list")
    assert code == 0 and "cli-job" in out and "Completed" in out
    code, out, _ = run(capsys, store, "jobs", "describe", "cli-job")
    # Issue 23, item 6: a summary for people (and the record with --json).
    assert out.startswith("training job cli-job: Completed\n") and "\ntransitions:\n" in out
    assert "validation_auc" in out and len(out.splitlines()) < 60
    code, out, _ = run(capsys, store, "jobs", "describe", "cli-job", "--json")
    described = json.loads(out)
    assert described["status"] == "Completed" and described["spec"]["label"] == "y"
    assert described["started_at"] < described["ended_at"]
    code, out, _ = run(capsys, store, "jobs", "logs", "cli-job")
    assert "InProgress/Training" in out
    code, out, _ = run(capsys, store, "jobs", "stop", "cli-job")
    assert "already ended Completed" in out


def test_unknown_job_is_an_error(capsys, store):
    code, _, err = run(capsys, store, "jobs", "describe", "ghost")
    assert code == 1 and "no training job named 'ghost'" in err


def test_models_commands(capsys, store, trained):
    code, out, _ = run(capsys, store, "models", "list")
    assert code == 0 and "PendingManualApproval" in out and "cli-job" in out
    code, out, _ = run(capsys, store, "models", "approve", "1", "--group", "tiny", "--reason", "ok")
    assert out.strip() == "tiny version 1: Approved"
    code, out, _ = run(capsys, store, "models", "reject", "1", "--group", "tiny")
    code, out, _ = run(capsys, store, "models", "describe", "1", "--group", "tiny")
    assert out.startswith("tiny version 1 (Rejected)\n  training job: cli-job\n"), out
    assert "\napproval:\n" in out and len(out.splitlines()) < 60
    code, out, _ = run(capsys, store, "models", "describe", "1", "--group", "tiny", "--json")
    described = json.loads(out)
    assert described["approval_status"] == "Rejected"
    assert [c["status"] for c in described["approval_history"]] == [
        "PendingManualApproval",
        "Approved",
        "Rejected",
    ]
    code, _, err = run(capsys, store, "models", "approve", "9", "--group", "tiny")
    assert code == 1 and "has no version 9 (versions: 1)" in err


def test_nothing_missing_passes_silently(capsys, store, tmp_path):
    """Hardening 2, item 16 (and 15's one-line errors): what is missing is named, exit 1."""
    code, out, err = run(capsys, store, "jobs", "logs", "nosuch")
    assert (code, out) == (1, "") and "no training job named 'nosuch'" in err
    code, _, err = run(capsys, store, "endpoints", "invoke", "nosuch", "--body", "{}")
    assert code == 1 and "no endpoint named 'nosuch' (endpoints: none)" in err
    for root, why in [
        (str(tmp_path / "never-made"), "no Skiff store at"),
        ("/dev/null", "no Skiff store at /dev/null"),
        ("nonexistent-proto://x", "cannot use 'nonexistent-proto://x' as a store"),
    ]:
        for area in ("jobs", "models", "endpoints"):
            code = main(["--store", root, area, "list"])
            err = capsys.readouterr().err
            assert code == 1 and why in err and err.count("\n") == 1, (root, area, err)
    assert not (tmp_path / "never-made").exists()


def test_bad_values_and_broken_pipes_end_in_one_line(capsys, store, trained, tmp_path):
    """Item 15: an option's bad value, a name no job can have, a reader that stops reading."""
    code, _, err = run(capsys, store, "endpoints", "deploy", "x", "1", "--canary-size", "1.5")
    assert code == 2 and err == "skiff: error: canary_size: Input should be less than 1\n"
    code, _, err = run(capsys, store, "jobs", "describe", "a" * 300)
    assert code == 1 and err.count("\n") == 1 and "job name 'aaa" in err
    import subprocess
    import sys

    from tests.helpers import ROOT

    piped = subprocess.run(
        f"{sys.executable} -m flows.cli --store {store.root} jobs describe cli-job --json | head -c 10",
        shell=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert piped.stdout == '{\n  "spec":'[:10] and piped.stderr == ""


def test_help_texts_are_plain_text():
    """Issue 23, item 7: no reST quoting from the docstrings the help quotes."""
    import argparse
    import re

    from flows.bank_marketing import build_parser
    from flows.cli import build_parser as skiff_parser

    def helps(parser: argparse.ArgumentParser):
        yield parser.prog, parser.format_help()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    yield from helps(sub)

    shown = dict(helps(skiff_parser())) | dict(helps(build_parser([])))
    assert len(shown) > 30
    marked = {prog: re.findall(r"``[^`]*``|:[a-z]+:`", text) for prog, text in shown.items()}
    assert not {prog: found for prog, found in marked.items() if found}
