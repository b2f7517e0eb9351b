"""The demo notebook, run top to bottom by a real kernel against ``skiff api`` (S3 on moto), in
the environment ``skiff notebook`` gives its kernels, then the SageMaker SDK in this process on
what it made; and ``skiff notebook`` itself: JupyterLab with its token, a kernel that sees the
variables and reaches the API, Ctrl-C stopping both."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import boto3
import nbformat
import numpy as np
import pytest
import xgboost as xgb

from algorithms.archive import read_model_archive
from bench.api import notebook_frames
from flows import cli
from flows.commands.notebook import answers, kernel_environment, telemetry_opt_out
from tests.helpers import ROOT, free_port, wait_for

NOTEBOOK = ROOT / "notebooks" / "xgboost_direct_marketing.ipynb"
ROLE = "arn:aws:iam::000000000000:role/SageMakerRole"


def test_the_notebook_is_kept_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


def test_skiff_notebook_finds_the_api_that_serves_its_store(quiet_api, tmp_path, monkeypatch):
    from flows.commands.api import announced
    from flows.commands.notebook import running_api

    monkeypatch.setenv("SKIFF_RUNTIME", str(tmp_path))
    assert running_api("file:///some/store") is None
    with announced("file:///some/store", quiet_api):
        assert running_api("file:///some/store") == quiet_api
        assert running_api("file:///another/store") is None
    assert running_api("file:///some/store") is None  # it said so only while it ran
    with announced("file:///some/store", "http://127.0.0.1:1"):  # noted, but not answering
        assert running_api("file:///some/store") is None


def printed(notebook) -> str:
    return "\n".join(
        out.get("text", "") + str(out.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells
        if cell.cell_type == "code"
        for out in cell.outputs
    )


@pytest.fixture(scope="module")
def sdk(tmp_path_factory):
    """``sagemaker`` imported here too, its telemetry off (its documented opt-out)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SAGEMAKER_USER_CONFIG_OVERRIDE", str(telemetry_opt_out()))
        env.setenv("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
        import sagemaker

        yield sagemaker


@pytest.mark.slow
def test_the_demo_notebook_runs_top_to_bottom_then_the_sdk_reuses_what_it_made(
    api, aws, archive, csv_bytes, sdk, tmp_path, monkeypatch, capfd
):
    """The notebook (the SDK from its default session, pointed by the environment): fit with
    its streamed log, register, approve, deploy, predict, a canary, clean-up. Then, from this
    process with the README's explicit session: attach to its job, deploy its approved model
    package, and see it approved in ``skiff models list``. (One scenario, because the SDK waits
    30 s before it first looks at a new endpoint: the notebook's deploy pays it once.)"""
    bucket = f"notebook-{os.urandom(3).hex()}"
    environment = kernel_environment(api.url, bucket, telemetry_opt_out(), str(archive))
    for key, value in environment.items():
        monkeypatch.setenv(key, value)  # what skiff notebook gives a kernel
    text = run_notebook(api, tmp_path)
    found = re.search(r"test AUC (\d\.\d+), error rate (\d\.\d+)", text)
    assert found, text[-3000:]
    auc, error = float(found[1]), float(found[2])
    print(f"test AUC {auc:.4f}, error rate {error:.4f}")
    assert auc >= 0.76 and error <= 0.11
    assert "[99]" in text and "validation-auc" in text  # the training log, streamed
    assert "Approved" in text and "Updating" in text and "challenger test AUC" in text
    assert "endpoints left: []" in text  # its clean-up cell deleted what it made

    sess = sdk.Session(  # the README's session lines
        boto_session=boto3.Session(region_name="us-east-1"),
        sagemaker_client=boto3.client("sagemaker", endpoint_url=api.url),
        sagemaker_runtime_client=boto3.client("sagemaker-runtime", endpoint_url=api.url),
        default_bucket=bucket,
    )
    client = sess.sagemaker_client
    job = client.list_training_jobs(NameContains="dm-xgboost")["TrainingJobSummaries"][0]
    attached = sdk.estimator.Estimator.attach(job["TrainingJobName"], sagemaker_session=sess)
    artifact = client.describe_training_job(TrainingJobName=job["TrainingJobName"])[
        "ModelArtifacts"
    ]["S3ModelArtifacts"]
    assert attached.model_data == artifact

    # Batch transform from the attached estimator: the SDK's CreateModel and CreateTransformJob
    # as it sends them, SageMaker's recipe for a labelled file; then its log, read once.
    test = notebook_frames(csv_bytes)["test"][:300]
    s3 = boto3.client("s3")
    s3.put_object(Bucket=bucket, Key="batch/test.csv", Body=test.to_csv(index=False, header=False))
    transformer = attached.transformer(
        1, "ml.m5.large", output_path=f"s3://{bucket}/batch/out", assemble_with="Line",
        accept="text/csv",
    )  # fmt: skip
    transformer.transform(
        f"s3://{bucket}/batch/test.csv", content_type="text/csv", split_type="Line",
        input_filter="$[1:]", join_source="Input", output_filter="$[0,-1]", wait=False,
    )  # fmt: skip
    name = transformer.latest_transform_job.name
    client.get_waiter("transform_job_completed_or_stopped").wait(
        TransformJobName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
    )
    sess.logs_for_transform_job(name)  # the job's log, from CloudWatch Logs' API
    assert "Completed/Completed: 300 rows" in capfd.readouterr().out
    scored = s3.get_object(Bucket=bucket, Key="batch/out/test.csv.out")["Body"].read().decode()
    labels = [line.split(",")[0] for line in scored.splitlines()]
    assert labels == [str(y) for y in test["y_yes"]]
    packages = client.list_model_packages(ModelPackageGroupName="bank-marketing-demo")
    arn = packages["ModelPackageSummaryList"][0]["ModelPackageArn"]
    cli.main(["--store", api.store.root, "models", "list", "--group", "bank-marketing-demo"])
    listed = capfd.readouterr().out
    assert "Approved" in listed and job["TrainingJobName"] in listed, listed

    registered = sdk.ModelPackage(role=ROLE, model_package_arn=arn, sagemaker_session=sess)
    registered.deploy(1, "ml.m4.xlarge", endpoint_name="sdk-package", wait=False)
    try:
        client.get_waiter("endpoint_in_service").wait(
            EndpointName="sdk-package", WaiterConfig={"Delay": 1, "MaxAttempts": 120}
        )
        predictor = sdk.Predictor(
            "sdk-package", sagemaker_session=sess, serializer=sdk.serializers.CSVSerializer()
        )
        rows = notebook_frames(csv_bytes)["test"].drop(columns=["y_yes"]).to_numpy()[:20]
        served = np.array(predictor.predict(rows).decode().split(), dtype=float)
        archive_body = (
            boto3.client("s3")
            .get_object(Bucket=bucket, Key=artifact.removeprefix(f"s3://{bucket}/"))["Body"]
            .read()
        )
        booster = xgb.Booster()
        booster.load_model(bytearray(read_model_archive(archive_body, artifact)))
        np.testing.assert_allclose(served, booster.inplace_predict(rows), rtol=1e-5)
        predictor.delete_model()
    finally:
        client.delete_endpoint(EndpointName="sdk-package")


def run_notebook(api, folder) -> str:
    """Execute the notebook with a real kernel; what its cells printed."""
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    runner = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": folder}}
    )
    sagemaker = api.client()
    before = {e["EndpointName"] for e in sagemaker.list_endpoints()["Endpoints"]}
    started = time.perf_counter()
    try:
        runner.execute()  # any cell's error fails here, with its traceback
    finally:  # a cell that failed leaves no endpoint server behind
        for endpoint in sagemaker.list_endpoints()["Endpoints"]:
            if endpoint["EndpointName"] not in before:
                sagemaker.delete_endpoint(EndpointName=endpoint["EndpointName"])
    print(f"the notebook ran in {time.perf_counter() - started:.1f} s; slowest cells:")
    for seconds, source in sorted(cell_times(notebook), reverse=True)[:6]:
        print(f"  {seconds:5.1f} s  {source}")
    nbformat.write(notebook, folder / "executed.ipynb")  # to read when a check below fails
    figures = [
        out
        for cell in notebook.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if "image/png" in out.get("data", {})
    ]
    assert figures, "the ROC and precision-recall plots are drawn inline"
    return printed(notebook)


def cell_times(notebook) -> list[tuple[float, str]]:
    """(seconds, first line) of each code cell, from the timings nbclient records."""
    from datetime import datetime

    found = []
    for cell in notebook.cells:
        timing = cell.metadata.get("execution", {})
        if cell.cell_type == "code" and "shell.execute_reply" in timing:
            start, end = (
                datetime.fromisoformat(timing[k].replace("Z", "+00:00"))
                for k in ("iopub.execute_input", "shell.execute_reply")
            )
            found.append(((end - start).total_seconds(), cell.source.splitlines()[0][:60]))
    return found


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:  # nothing listens (yet)
        return 0


@pytest.mark.slow
def test_skiff_notebook_opens_jupyterlab_whose_kernels_reach_skiff_api(prefect_server, tmp_path):
    from jupyter_client import BlockingKernelClient

    # JupyterLab lives apart from Skiff's environment (CI makes one: .ci/run), since its
    # dependencies slow every Prefect import by 1.3 s; where there is none, say so.
    has_lab = os.environ.get("SKIFF_JUPYTER_LAB") or shutil.which("jupyter-lab")
    if not has_lab and importlib.util.find_spec("jupyterlab") is None:
        pytest.skip("no JupyterLab: set SKIFF_JUPYTER_LAB to a jupyter-lab (see the README)")
    port, api_port, token = free_port(), free_port(), "the-token"
    env = os.environ | {
        "JUPYTER_TOKEN": token,
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter"),
        "SKIFF_RUNTIME": str(tmp_path / "skiff"),
    }
    command = [sys.executable, "-m", "flows.cli", "--store", str(tmp_path / "store"),
               "notebook", "--port", str(port), "--api-port", str(api_port),
               "--bucket", "nb-bucket"]  # fmt: skip
    log = tmp_path / "notebook.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    lab = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            assert proc.poll() is None, log.read_text()
            return _get(f"{lab}/api/status?token={token}") == 200

        wait_for(up, 120, "JupyterLab", every=0.3)
        assert _get(f"{lab}/api/status") == 403  # the token is on
        assert _get(f"{lab}/lab?token={token}") == 200
        request = urllib.request.Request(
            f"{lab}/api/kernels?token={token}", data=b"{}", method="POST"
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            kernel = json.loads(response.read())["id"]
        kernel_client = BlockingKernelClient(
            connection_file=str(tmp_path / "jupyter" / f"kernel-{kernel}.json")
        )
        kernel_client.load_connection_file()
        kernel_client.start_channels()
        lines: list[str] = []

        def collect(message) -> None:
            if message["msg_type"] == "stream":
                lines.append(message["content"]["text"])

        code = (
            "import os, sys, boto3\n"
            "print(sys.executable)\n"
            "print(os.environ['AWS_ENDPOINT_URL_SAGEMAKER'], os.environ['SKIFF_DEFAULT_BUCKET'])\n"
            "print(os.environ['AWS_ENDPOINT_URL_CLOUDWATCH_LOGS'])\n"
            "jobs = boto3.client('sagemaker').list_training_jobs()['TrainingJobSummaries']\n"
            "print('skiff api answers', jobs)\n"
        )
        reply = kernel_client.execute_interactive(code, timeout=60, output_hook=collect)
        kernel_client.stop_channels()
        said = "".join(lines)
        assert reply["content"]["status"] == "ok", said
        api = f"http://127.0.0.1:{api_port}"
        # The kernel is Skiff's Python, whichever environment JupyterLab runs from.
        assert f"{sys.executable}\n{api} nb-bucket\n{api}\nskiff api answers []" in said
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        proc.wait(timeout=60)
    assert not answers(f"http://127.0.0.1:{api_port}")  # the API it started is gone too
    assert _get(f"{lab}/api/status?token={token}") == 0
