"""The Prefect way, for real: ``deploy/serve.sh`` creates the pool and the deployments of
``deploy/prefect.yaml`` on a real Prefect server and starts a worker; runs are created with
``prefect deployment run`` and carried out by that worker."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import httpx
import psutil
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterName,
    FlowFilter,
    FlowFilterName,
)
from prefect.client.schemas.objects import FlowRun

from core.records.endpoints import EndpointStore
from core.records.registry import Approval, ModelRegistry
from core.store import Store
from flows.cli import main as cli
from serving.control import servers
from tests.helpers import ROOT, start_logged, task_states, wait_for

DEPLOYMENTS = ["local", "dask", "tuned", "tune", "transform", "weekly-retrain", "deploy-model"]
pytestmark = pytest.mark.usefixtures("worker")


def prefect_env(api_url: str) -> dict[str, str]:
    return os.environ | {
        "PREFECT_API_URL": api_url,
        "PYTHON": sys.executable,
        "PREFECT_WORKER_QUERY_SECONDS": "1",  # pick runs up at once (default: every 10 s)
        "PYTHONPATH": str(ROOT),
    }


@pytest.fixture(scope="module")
def worker(prefect_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``deploy/serve.sh`` against the session's Prefect server, until its worker is online."""
    log_path = tmp_path_factory.mktemp("serve") / "serve.log"
    proc = start_logged(
        ["bash", str(ROOT / "deploy/serve.sh")], log_path, prefect_env(prefect_server)
    )

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"deploy/serve.sh exited: {log_path.read_text()[-3000:]}")
        with get_client(sync_client=True) as client:
            names = {d.name for d in client.read_deployments()}
            if not set(DEPLOYMENTS) <= names:
                return False
            workers = client.read_workers_for_work_pool(work_pool_name="skiff")
        return any(w.status == "ONLINE" for w in workers)

    try:
        wait_for(ready, 300, "the deployments and an online worker", every=1)
        yield log_path
    finally:
        family = [proc, *psutil.Process(proc.pid).children(recursive=True)]
        proc.send_signal(signal.SIGTERM)  # serve.sh stops the worker it started
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        _, alive = psutil.wait_procs([p for p in family if p.pid != proc.pid], timeout=10)
        for leftover in alive:
            leftover.kill()
        if proc.poll() is None:
            proc.kill()
        assert not alive, f"serve.sh left processes running: {[p.pid for p in alive]}"


def prefect(*args: str, api_url: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "prefect", *args],
        env=prefect_env(api_url),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def runs_of(deployment: str) -> list[FlowRun]:
    flow, name = deployment.split("/")
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[flow])),
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[name])),
        )


def artifact_keys(run_id) -> set[str]:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    return {a.key for a in found if a.key}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (["-p", "split=weekly"], "'weekly' is not one of ['random', 'time']"),
        (["--params", '{"xgboost": {"max_depth": 99}}'], "99 is greater than the maximum of 30"),
        (["-p", "eval_batch_size=0"], "eval_batch_size"),
        # Issue 23, item 9: a hyperparameter by itself is refused, naming the groups there are.
        (["-p", "max_depth=3"], "specified but not found on the deployment"),
    ],
)
def test_a_bad_parameter_is_refused_when_the_run_is_created(prefect_server, params, message):
    before = len(runs_of("bank-marketing/local"))
    proc = prefect("deployment", "run", "bank-marketing/local", *params, api_url=prefect_server)
    output = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0 and message in output, output
    assert len(runs_of("bank-marketing/local")) == before  # no run was created


def test_serve_sh_says_each_step_once(worker):
    """Issue 23, item 10: no 'start a worker' advice from the script that starts one."""
    said = worker.read_text()
    assert "start a worker in a separate terminal" not in said, said
    assert re.search(r"deployments: .*bank-marketing/local.*deploy-model/deploy-model", said), said
    assert said.count("starting a worker on pool skiff") == 1


def test_run_from_the_deployment_then_rerun_and_approve_to_deploy(
    prefect_server, http_root, tmp_path, capsys
):
    store_url = str(tmp_path / "store")
    params = {
        "source": f"{http_root[1]}/bank-additional.zip",
        "store": store_url,
        "xgboost": {"num_round": 20},
    }

    def run(**changes) -> FlowRun:
        proc = prefect(
            "deployment",
            "run",
            "bank-marketing/local",
            "--params",
            json.dumps(params | changes),
            "--watch",
            "--watch-interval",
            "1",
            api_url=prefect_server,
        )
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
        assert "Flow run finished successfully in 'Completed'" in proc.stdout
        return max(runs_of("bank-marketing/local"), key=lambda r: r.created)

    first = run()
    store = Store(store_url)
    assert ModelRegistry(store).versions("bank-marketing") == [1]
    dataset_id = store.list("datasets")[0]
    assert {"backend:local", f"dataset:{dataset_id}", "skiff"} <= set(first.tags)
    assert artifact_keys(first.id) >= {
        "bank-marketing-report",
        "bank-marketing-metrics",
        "bank-marketing-model",
        "bank-marketing-endpoint",
        "bank-marketing-evaluation",
    }
    assert EndpointStore(store).current("bank-marketing").variants[0].model_version == 1
    # Issue 23, item 2: a run a worker started has Skiff's own lines in its log (the UI's
    # Logs tab): the training rounds, the deploy's decision, the evaluation's progress.
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[first.id]))
        )
    said = [log.message for log in logs]
    assert any("] round 20/20: validation_auc " in m for m in said), said
    assert "endpoint bank-marketing is new: version 1 is its first" in said
    assert any(m.startswith("evaluation: 4119 of 4119 rows scored") for m in said), said

    try:
        # New hyperparameters and no automatic approval: the data steps come from the cache,
        # training runs, and the new version waits for a person.
        second = run(xgboost={"num_round": 25}, approval_threshold=None)
        states = task_states(second.id)
        assert [
            states[s] for s in ["download archive", "clean and encode", "split random", "publish"]
        ] == ["Cached"] * 4
        assert states["train xgboost on local"] == "Completed"
        assert "deploy bank-marketing v2 to bank-marketing" not in states
        assert ModelRegistry(store).get("bank-marketing", 2).approval_status == Approval.PENDING

        # Approve, then deploy: the approval starts a run of the deploy-model deployment, and
        # follows it to its end (issue 23, item 5).
        assert cli(["--store", store_url, "models", "approve", "2", "--deploy"]) == 0
        followed = capsys.readouterr().out
        deploy_run = runs_of("deploy-model/deploy-model")[0]
        assert deploy_run.parameters["model_version"] == 2
        assert f"deploy run {deploy_run.id}: Completed" in followed
        server = servers.running(store, "bank-marketing")
        assert server is not None and httpx.get(f"{server.url}/ping").status_code == 200
        assert followed.endswith(f"bank-marketing version 2 serves at {server.url}\n")
        config = EndpointStore(store).current("bank-marketing")
        assert [v.model_version for v in config.variants] == [2]

        # Item 3: a run that fails for an expected reason says it, as its state's message.
        missing = {"model_version": 9, "store": store_url}
        proc = prefect(
            "deployment", "run", "deploy-model/deploy-model", "--params", json.dumps(missing),
            "--watch", api_url=prefect_server,
        )  # fmt: skip
        why = "model group 'bank-marketing' has no version 9 (versions: 1, 2)"
        watched = " ".join(proc.stdout.split())  # rich wraps long lines
        assert proc.returncode == 1 and why in watched, proc.stdout[-2000:]
        assert watched.endswith("Flow run finished in state 'Failed'.")
        failed = max(runs_of("deploy-model/deploy-model"), key=lambda r: r.created)
        assert failed.state.is_failed() and failed.state.message == why
    finally:
        cli(["--store", store_url, "endpoints", "delete", "bank-marketing"])


def test_the_weekly_schedule_creates_runs_once_turned_on(prefect_server):
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("bank-marketing/weekly-retrain")
        (schedule,) = deployment.schedules
        assert schedule.active is False and schedule.schedule.cron == "0 6 * * 1"
        assert not runs_of("bank-marketing/weekly-retrain")
        client.update_deployment_schedule(deployment.id, schedule.id, active=True)
        try:
            scheduled = wait_for(
                lambda: runs_of("bank-marketing/weekly-retrain"), 60, "scheduled runs"
            )
        finally:
            client.update_deployment_schedule(deployment.id, schedule.id, active=False)
    for run in scheduled:
        start = run.expected_start_time.astimezone(UTC)
        assert run.state.name == "Scheduled"
        assert (start.weekday(), start.hour, start.minute) == (0, 6, 0)
