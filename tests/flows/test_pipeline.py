"""The bank-marketing flow from download to register, on the real archive served over loopback
HTTP, against one real Prefect server for the whole session."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import httpx
import pytest

from core.records.endpoints import EndpointStore
from core.records.jobs import JobStore
from core.records.registry import Approval, ModelRegistry
from core.store import Store
from flows.bank_marketing import bank_marketing, main
from flows.cli import main as cli
from tests.helpers import pipeline_process, task_states

SHA = "e689f38cc6bd689f64f031e7a1fbe0849aabb7ad57544fc75068e30129bbd514"


@pytest.fixture
def source(http_root) -> str:
    return f"{http_root[1]}/bank-additional.zip"


def test_end_to_end_all_eight_steps(prefect_server, source, tmp_path):
    """download → ... → evaluate in a process of its own; the endpoint outlives that process."""
    store_url, summary_file = str(tmp_path / "store"), tmp_path / "summary.json"
    arguments = (
        f"--source {source} --sha256 {SHA} --store {store_url} --summary-json {summary_file}"
    )
    proc = pipeline_process(prefect_server, tmp_path, arguments)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(summary_file.read_text())
    metrics = summary["metrics"]
    assert metrics["auc"] >= 0.79 and metrics["error_rate"] <= 0.105, metrics
    assert 0 < metrics["recall"] < 1 and 0 < metrics["precision"] < 1
    assert f"curl -s {summary['endpoint_url']}/invocations" in proc.stdout
    store = Store(store_url)
    evaluation = json.loads(Path(summary["evaluation_url"]).read_text())
    assert evaluation["rows"] == 4119 and evaluation["metrics"]["auc"] == metrics["auc"]
    for png in evaluation["plots"].values():
        assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        keys = [
            "bank-marketing-report",
            "bank-marketing-metrics",
            "bank-marketing-model",
            "bank-marketing-endpoint",
            "bank-marketing-evaluation",
        ]
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys))
        )
    assert {a.key for a in found} == set(keys)
    # Issue 23, item 1: pictures in the UI, as PNG data: images inside markdown artifacts.
    shown = {a.key: a.data for a in found}
    pictures = {key: data_pngs(text) for key, text in shown.items() if isinstance(text, str)}
    assert len(pictures["bank-marketing-evaluation"]) == 3  # ROC, precision-recall, confusion
    assert len(pictures["bank-marketing-report"]) == 1  # the training curve
    assert f"Model file: `{store_url}" in shown["bank-marketing-model"]
    assert "endpoint served this version at" not in shown["bank-marketing-report"]
    assert (
        store.read_json("registry/bank-marketing/1/evaluation.json")["metrics"]["auc"]
        == (metrics["auc"])
    )  # kept with the version (item 4): the next report compares with it

    # The flow's process has ended; its endpoint still answers, until deleted.
    url = summary["endpoint_url"]
    assert httpx.get(f"{url}/ping").status_code == 200
    assert cli(["--store", store_url, "endpoints", "delete", "bank-marketing"]) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/ping")
    assert not EndpointStore(store).exists("bank-marketing")


def data_pngs(markdown: str) -> list[bytes]:
    """The PNG pictures a markdown artifact shows as data: images, decoded (each checked)."""
    found = re.findall(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", markdown)
    pngs = [base64.b64decode(b) for b in found]
    assert all(png[:8] == b"\x89PNG\r\n\x1a\n" for png in pngs)
    return pngs


DATA_STEPS = ["download archive", "clean and encode", "split random", "publish"]


def test_reruns_skip_cached_steps_and_retrain_only_on_new_hyperparameters(
    prefect_server, source, tmp_path
):
    store_url = str(tmp_path / "store")
    options = {
        "source": source,
        "sha256": SHA,
        "store": store_url,
        "until": "register",
        "xgboost": {"num_round": 20},
    }

    def run(**changes):
        state = bank_marketing(**(options | changes), return_state=True)
        states = task_states(state.state_details.flow_run_id)
        return state.result(), states

    first, states = run()
    assert first["job_status"] == "Completed"
    assert first["model_version"] == 1 and first["approval_status"] == "Approved"
    assert set(states.values()) == {"Completed"} and len(states) == 6, states
    store = Store(store_url)
    manifest = store.read_json(f"datasets/{first['dataset_id']}/manifest.json")
    assert {k: v["rows"] for k, v in manifest["splits"].items()} == {
        "train": 28831,
        "validation": 8238,
        "test": 4119,
    }
    version = ModelRegistry(store).get("bank-marketing", 1)
    assert version.job_name == first["job_name"] and version.dataset_id == first["dataset_id"]
    assert "job" in version.feature_schema["columns"][1]["name"]
    assert list((tmp_path / "store/cache").iterdir())  # results kept as JSON in the store
    for record in (tmp_path / "store/cache").iterdir():
        assert json.loads(record.read_text())["metadata"]["serializer"]["type"] == "json"

    # Same inputs and code: data steps and training come from the cache; register runs and
    # finds the version it made before.
    second, states = run()
    assert [states[s] for s in [*DATA_STEPS, "train xgboost on local"]] == ["Cached"] * 5
    assert states["register in bank-marketing"] == "Completed"
    assert second["job_name"] == first["job_name"] and second["model_version"] == 1
    assert JobStore(store).names() == [first["job_name"]]

    # New hyperparameters: the data stays cached, training reruns, a second version appears.
    third, states = run(xgboost={"num_round": 25})
    assert [states[s] for s in DATA_STEPS] == ["Cached"] * 4
    assert states["train xgboost on local"] == "Completed"
    assert third["model_version"] == 2 and third["job_name"] != first["job_name"]

    # --refresh reruns everything; the same model registers as the same version.
    fourth, states = run(refresh=True)
    assert set(states.values()) == {"Completed"}, states
    assert fourth["job_name"] not in (first["job_name"], third["job_name"])
    assert fourth["model_version"] == 1
    assert store.read_json(f"datasets/{first['dataset_id']}/manifest.json") == manifest


def test_command_line_until_and_summary_in_a_subprocess(prefect_server, source, tmp_path):
    summary = tmp_path / "summary.json"
    arguments = f"--source {source} --store {tmp_path / 'store'} --until upload --split time"
    proc = pipeline_process(prefect_server, tmp_path, f"{arguments} --summary-json {summary}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(summary.read_text())
    assert data["dataset_id"] and data["job_name"] is None and data["model_version"] is None
    assert "dataset:" in proc.stdout
    assert JobStore(Store(str(tmp_path / "store"))).names() == []


def test_failed_training_fails_the_run_and_says_why(prefect_server, source, tmp_path):
    summary = tmp_path / "summary.json"
    code = main(
        [
            "--source",
            source,
            "--store",
            str(tmp_path / "store"),
            "--algorithm",
            "tests.byo_algorithms:Failing",
            "--summary-json",
            str(summary),
        ]
    )
    assert code == 1
    data = json.loads(summary.read_text())
    assert data["job_status"] == "Failed"
    assert "boom: the data is cursed" in data["error"]
    assert ModelRegistry(Store(str(tmp_path / "store"))).versions("bank-marketing") == []


def test_pending_version_is_registered_but_not_deployed(prefect_server, source, tmp_path):
    summary = bank_marketing(source=source, store=str(tmp_path / "s"), approval_threshold=0.99)
    assert summary["approval_status"] == Approval.PENDING
    assert "not deployed; approve it with 'skiff models approve'" in summary["not_deployed"]
    assert "endpoint_url" not in summary
    assert not EndpointStore(Store(str(tmp_path / "s"))).exists("bank-marketing")


def test_delete_endpoint_at_the_end_of_the_run(prefect_server, source, tmp_path):
    summary = bank_marketing(
        source=source, store=str(tmp_path / "s"), delete_endpoint=True, eval_batch_size=5000
    )
    assert summary["endpoint_deleted"] and summary["metrics"]["auc"] >= 0.79
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{summary['endpoint_url']}/ping")

    # An endpoint that served before the run is updated, never deleted (hardening 2, item 17).
    options = {"source": source, "store": str(tmp_path / "s"), "eval_batch_size": 5000}
    serving = bank_marketing(**options)
    try:
        again = bank_marketing(**options, delete_endpoint=True)
        assert (
            not again.get("endpoint_deleted") and "served before this run" in again["endpoint_kept"]
        )
        assert httpx.get(f"{serving['endpoint_url']}/ping").status_code == 200
    finally:
        assert cli(["--store", options["store"], "endpoints", "delete", "bank-marketing"]) == 0


@pytest.mark.slow  # three runs of the pipeline
def test_a_worse_auto_approved_version_is_registered_and_not_deployed(
    prefect_server, source, tmp_path
):
    """Issue 24, item 2: scored beside the live version on its own validation split, a worse
    version stays off the endpoint unless --deploy-anyway."""
    options = {"source": source, "store": str(tmp_path / "s"), "until": "deploy"}
    first = bank_marketing(**options)
    assert first["deploy_decision"] == "endpoint bank-marketing is new: version 1 is its first"
    try:
        worse = {"xgboost": {"num_round": 2, "max_depth": 1}, "approval_threshold": 0.5}
        second = bank_marketing(**options, **worse)
        assert second["model_version"] == 2 and second["approval_status"] == "Approved"
        assert "endpoint_url" not in second
        why = second["not_deployed"]
        assert (
            why.startswith("version 2's AUC 0.")
            and "is below the live v1 (bank-marketing:1)" in why
        )
        assert "both on version 2's validation split: registered, not deployed" in why
        store = Store(options["store"])
        assert [v.name for v in EndpointStore(store).current("bank-marketing").variants] == ["v1"]

        anyway = bank_marketing(**options, **worse, deploy_anyway=True)
        assert anyway["deploy_decision"].startswith("--deploy-anyway")
        assert [v.name for v in EndpointStore(store).current("bank-marketing").variants] == ["v2"]
    finally:
        assert cli(["--store", options["store"], "endpoints", "delete", "bank-marketing"]) == 0


def test_checksum_mismatch_fails_with_a_clear_error(prefect_server, source, tmp_path, capsys):
    code = main(["--source", source, "--store", str(tmp_path / "s"), "--sha256", "0" * 64])
    assert code == 1
    assert f"{source}: SHA-256 mismatch" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--max-depth", "99"], "max_depth"),
        (["--split", "weekly"], "invalid choice: 'weekly'"),
        (["--sha256", "abc"], "sha256"),
        (["--hyperparameter", "novalue"], "expected NAME=VALUE"),
        # Hardening 2, item 14: what training would refuse, refused before the first step.
        (["--hyperparameter", "bogus=1"], "unknown hyperparameter(s) 'bogus'"),
        (["--algorithm", "tests.byo_algorithms:Nope"], "has no attribute 'Nope'"),
        (["--algorithm", "catboost"], "unknown algorithm 'catboost'"),
        (["--backend", "slurm"], "unknown backend 'slurm'"),
        (["--job-name", "x" * 100], "job_name: job name 'xxx"),
        (["--model-group", "a/b"], "model group name 'a/b' must be"),
        (["--endpoint-name", "a_b"], "endpoint name 'a_b' must be"),
        # Issue 23, item 7: an option of another strategy is refused, not ignored.
        (["--linear-step", "0.5"], "linear_step is the LINEAR strategy's; with strategy ALL"),
    ],
)
def test_bad_options_are_refused_before_anything_runs(flags, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main([*flags, "--store", str(tmp_path / "s")])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_a_flow_run_with_a_bad_backend_option_fails_naming_it(prefect_server, tmp_path):
    """Whatever door a run comes through, its options (each backend's included) are checked
    once, by the config, before any step runs."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="with scheduler='tcp://h:1' the cluster is"):
        bank_marketing(
            store=str(tmp_path / "s"), backend="dask", threads=2, dask={"scheduler": "tcp://h:1"}
        )
    assert not (tmp_path / "s").exists()


def test_a_table_too_small_to_train_fails_before_training(prefect_server, tmp_path, csv_bytes):
    """Hardening 2, item 12: a CSV with only its header is a clear error before training;
    no job runs and nothing is registered."""
    import zipfile

    archive = tmp_path / "empty.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("bank-additional/bank-additional-full.csv", csv_bytes.split(b"\n")[0] + b"\n")
    summary = tmp_path / "summary.json"
    code = main(
        ["--source", str(archive), "--store", str(tmp_path / "s"), "--summary-json", str(summary)]
    )
    assert code == 1
    error = json.loads(summary.read_text())["error"]
    assert "the train split has no rows: the data has 0 row(s)" in error, error
    store = Store(str(tmp_path / "s"))
    assert JobStore(store).names() == [] and ModelRegistry(store).groups() == []


def test_a_corrupt_dataset_is_never_trained_on_and_refresh_rebuilds_it(
    prefect_server, source, tmp_path
):
    """Hardening 2, item 13: a cached rerun checks the dataset it trains on (manifest and
    checksums); --refresh rebuilds it."""
    from core.errors import SchemaError
    from flows.datasets import find_dataset

    options = {
        "source": source,
        "store": str(tmp_path / "s"),
        "until": "register",
        "xgboost": {"num_round": 20},
    }
    first = bank_marketing(**options)
    store, dataset = Store(options["store"]), first["dataset_id"]
    store.write_bytes(f"datasets/{dataset}/manifest.json", b"{garbage")
    retrain = options | {"xgboost": {"num_round": 25}}  # the data steps come from the cache
    with pytest.raises(SchemaError, match=r"manifest.json is not a valid Dataset.*--refresh"):
        bank_marketing(**retrain)
    store.write_bytes(f"datasets/{dataset}/train.parquet", b"not the rows it had")
    with pytest.raises(SchemaError, match=r"manifest.json is not a valid Dataset"):
        bank_marketing(**retrain)
    assert ModelRegistry(store).versions("bank-marketing") == [1]  # nothing registered from it

    rebuilt = bank_marketing(**retrain, refresh=True)
    assert rebuilt["model_version"] == 2 and rebuilt["dataset_id"] == dataset
    assert find_dataset(store, dataset).splits["train"].rows == 28831


def test_an_archive_over_the_limit_fails_the_run_in_one_line(
    prefect_server, source, tmp_path, capsys
):
    code = main(
        ["--source", source, "--store", str(tmp_path / "s"), "--max-archive-bytes", "2000000"]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "bank-additional-full.csv is 5,834,924 bytes uncompressed, over the 2,000,000" in err


def test_an_expected_failure_ends_in_one_error_line(prefect_server, source, tmp_path):
    """Hardening 2, item 15: no Prefect traceback on the console for a failed job (it is in
    the run's log); the command ends with one ``error:`` line, exit 1; --debug shows all."""
    failing = f"--source {source} --store {tmp_path / 's'} --algorithm tests.byo_algorithms:Failing"
    quiet = pipeline_process(prefect_server, tmp_path, failing)
    assert quiet.returncode == 1 and "Traceback" not in quiet.stderr, quiet.stderr
    lines = quiet.stderr.splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and "boom: the data is cursed" in errors[0], quiet.stderr
    assert not [line for line in lines if "| ERROR" in line], quiet.stderr  # in the run's log
    loud = pipeline_process(prefect_server, tmp_path, f"{failing} --debug")
    assert loud.returncode == 1 and "Traceback" in loud.stderr
    refused = pipeline_process(prefect_server, tmp_path, "--canary-size 1.5")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert "canary_size: Input should be less than 1" in refused.stderr
