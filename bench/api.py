"""SageMaker's API beside the pipeline: the 2017 demo's training job sent through ``skiff api``
(boto3's client, CreateTrainingJob until DescribeTrainingJob says Completed) and the same
training through the pipeline's train step, measured side by side in one run.

    python -m bench.api [--archive ../shared/data/bank-additional.zip] [--repeat 3]

Both train the demo's hyperparameters (100 rounds) on 2 instances, that is a Dask LocalCluster
of 2 workers × 1 thread started for the job, on the bank data: the API from the notebook's
label-first CSV files (file:// channels), the pipeline's step (``flows.training.train``, the
body of its ``train`` task) from its own Parquet dataset of the same archive. The API's time
includes what only it does: its job's process and Prefect flow run, and reading CSV. The
server and its Prefect server start once, before the clock. Runs alternate; medians printed.
Then the first job's model behind an endpoint: CreateEndpoint → InService, and InvokeEndpoint
through the API's port beside the endpoint's own server (single-record CSV, 16 clients).
Not part of CI: it takes minutes.
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DEMO_HYPERPARAMETERS = {  # the notebook's, exactly (SageMaker sends strings)
    "max_depth": "5", "eta": "0.2", "gamma": "4", "min_child_weight": "6", "subsample": "0.8",
    "silent": "0", "objective": "binary:logistic", "num_round": "100",
}  # fmt: skip
DEMO_IMAGE = "811284229777.dkr.ecr.us-east-1.amazonaws.com/xgboost:latest"


def notebook_frames(csv_bytes: bytes) -> dict[str, pd.DataFrame]:
    """The bank data as the 2017 notebook prepared it: indicators, one-hots, six columns
    dropped, a seeded 70/20/10 split, the label first. (``dtype=int``: today's pandas makes
    one-hots booleans, which to_csv writes as True/False; the notebook's pandas wrote 0/1.)"""
    data = pd.read_csv(io.BytesIO(csv_bytes), sep=";")
    data["no_previous_contact"] = np.where(data["pdays"] == 999, 1, 0)
    data["not_working"] = np.where(np.isin(data["job"], ["student", "retired", "unemployed"]), 1, 0)
    dropped = ["duration", "emp.var.rate", "cons.price.idx", "cons.conf.idx", "euribor3m"]
    model_data = pd.get_dummies(data, dtype=int).drop([*dropped, "nr.employed"], axis=1)
    shuffled = model_data.sample(frac=1, random_state=1729)
    cut = [int(0.7 * len(model_data)), int(0.9 * len(model_data))]
    parts = {
        "train": shuffled.iloc[: cut[0]],
        "validation": shuffled.iloc[cut[0] : cut[1]],
        "test": shuffled.iloc[cut[1] :],
    }
    return {
        name: pd.concat([part["y_yes"], part.drop(["y_no", "y_yes"], axis=1)], axis=1)
        for name, part in parts.items()
    }


def demo_request(name: str, data: Path, output: Path) -> dict[str, Any]:
    """The notebook's CreateTrainingJob request, its data on file:// URLs."""
    return {
        "TrainingJobName": name,
        "RoleArn": "arn:aws:iam::000000000000:role/SageMakerRole",
        "AlgorithmSpecification": {"TrainingImage": DEMO_IMAGE, "TrainingInputMode": "File"},
        "HyperParameters": DEMO_HYPERPARAMETERS,
        "InputDataConfig": [
            {
                "ChannelName": channel,
                "ContentType": "csv",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"file://{data}/{channel}/",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
            for channel in ("train", "validation")
        ],
        "OutputDataConfig": {"S3OutputPath": f"file://{output}"},
        "ResourceConfig": {"InstanceType": "ml.m4.xlarge", "InstanceCount": 2, "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    }


def through_api(client: Any, name: str, data: Path, output: Path) -> tuple[float, float]:
    """Seconds from CreateTrainingJob until DescribeTrainingJob says Completed (polled every
    0.1 s), and the job's validation AUC."""
    started = time.perf_counter()
    client.create_training_job(**demo_request(name, data, output))
    while True:
        described = client.describe_training_job(TrainingJobName=name)
        if described["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"):
            break
        time.sleep(0.1)
    seconds = time.perf_counter() - started
    if described["TrainingJobStatus"] != "Completed":
        raise SystemExit(f"{name} ended {described['TrainingJobStatus']}: {described}")
    metrics = {m["MetricName"]: m["Value"] for m in described["FinalMetricDataList"]}
    return seconds, metrics["validation:auc"]


def through_pipeline_step(store: Any, dataset: Any, name: str) -> tuple[float, float]:
    """Seconds of the pipeline's train step on the dask backend (2 workers × 1 thread)."""
    from backends.dask_options import DaskOptions
    from flows.training import TrainingRequest, train

    request = TrainingRequest(
        algorithm="xgboost",
        hyperparameters=DEMO_HYPERPARAMETERS,
        backend="dask",
        backend_options=DaskOptions(workers=2, threads=1),
        max_runtime=3600,
        model_group="bench-api",
        job_name=name,
    )
    started = time.perf_counter()
    status = train(request, dataset, store)
    return time.perf_counter() - started, status.metrics["validation_auc"]


def pipeline_dataset(store: Any, archive: Path) -> Any:
    """The pipeline's own dataset of the archive (its clean and split, the demo's options)."""
    from flows import bank, datasets
    from flows.data import extract_member

    raw = archive.read_bytes()
    csv = extract_member(raw, bank.CSV_MEMBER, str(archive))
    table, schema = bank.clean(csv, bank.CleanOptions(drop_economic=True))
    parts = datasets.split(table, "random", 1729)
    return datasets.publish(
        store, "bench-api", parts, schema, source=str(archive), archive_sha256="", options={}
    )


def load(url: str, body: bytes, connections: int, seconds: float) -> tuple[float, float]:
    """Requests per second and median latency (ms) of ``connections`` clients posting
    ``body`` to ``url`` for ``seconds`` (a Python load generator: it shares the cores with the
    servers, so the figures compare, they do not measure a ceiling)."""
    import asyncio

    import httpx

    async def run() -> list[float]:
        latencies: list[float] = []
        limits = httpx.Limits(max_connections=connections)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            end = time.perf_counter() + seconds

            async def one() -> None:
                while time.perf_counter() < end:
                    started = time.perf_counter()
                    answer = await client.post(
                        url, content=body, headers={"Content-Type": "text/csv"}
                    )
                    answer.raise_for_status()
                    latencies.append(time.perf_counter() - started)

            await asyncio.gather(*(one() for _ in range(connections)))
        return latencies

    latencies = asyncio.run(run())
    return len(latencies) / seconds, 1000 * statistics.median(latencies)


def hosting_figures(
    client: Any, store: Any, url: str, job: str, features: int, seconds: float
) -> None:
    """The demo's model behind an endpoint: CreateEndpoint → InService, then InvokeEndpoint
    through the API's port beside the endpoint's own server, single-record CSV, 16 clients."""
    from serving.control import servers

    artifact = client.describe_training_job(TrainingJobName=job)["ModelArtifacts"]
    client.create_model(
        ModelName="bench", ExecutionRoleArn="arn:aws:iam::000000000000:role/SageMakerRole",
        PrimaryContainer={"Image": DEMO_IMAGE, "ModelDataUrl": artifact["S3ModelArtifacts"]},
    )  # fmt: skip
    variant = {"VariantName": "AllTraffic", "ModelName": "bench", "InitialInstanceCount": 1,
               "InstanceType": "ml.m4.xlarge"}  # fmt: skip
    client.create_endpoint_config(EndpointConfigName="bench", ProductionVariants=[variant])
    started = time.perf_counter()
    client.create_endpoint(EndpointName="bench", EndpointConfigName="bench")
    while client.describe_endpoint(EndpointName="bench")["EndpointStatus"] != "InService":
        time.sleep(0.02)
    print(f"CreateEndpoint → InService: {time.perf_counter() - started:.2f} s (target ≤ 3 s)")
    server = servers.running(store, "bench")
    row = ",".join(["0"] * features).encode()
    try:
        for connections in (16, 1):
            front = load(f"{url}/endpoints/bench/invocations", row, connections, seconds)
            direct = load(f"{server.url}/invocations", row, connections, seconds)
            print(f"{connections} connection(s): through skiff api {front[0]:.0f} requests/s, "
                  f"p50 {front[1]:.2f} ms; straight to the endpoint's server {direct[0]:.0f} "
                  f"requests/s, p50 {direct[1]:.2f} ms; {front[0] / direct[0]:.2f}× the rps, "
                  f"+{front[1] - direct[1]:.2f} ms at p50")  # fmt: skip
    finally:
        client.delete_endpoint(EndpointName="bench")
    print("goals at 16 connections: ≥ 0.5× the rps, ≤ 1 ms added at p50")


def start_api(store: str, port: int, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "flows.cli", "--store", store, "api", "--port", str(port)]
    with open(log, "ab") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__)
    parser.add_argument(
        "--archive", type=Path, default=ROOT.parent / "shared/data/bank-additional.zip"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--port", type=int, default=0, help="the server's port (0: a free one)")
    parser.add_argument(
        "--load-seconds", type=float, default=10, help="seconds of each invocation load (0: none)"
    )
    args = parser.parse_args(argv)

    import boto3
    from botocore.config import Config

    from core.store import Store
    from flows import bank
    from flows.data import extract_member

    folder = Path(tempfile.mkdtemp(prefix="skiff-bench-api-"))
    os.environ.setdefault("SKIFF_RUNTIME", str(folder / "runtime"))
    data = folder / "csv"
    frames = notebook_frames(extract_member(args.archive.read_bytes(), bank.CSV_MEMBER, ""))
    for channel, frame in frames.items():
        (data / channel).mkdir(parents=True)
        frame.to_csv(data / channel / f"{channel}.csv", index=False, header=False)
    store = Store(str(folder / "store"))
    store.ensure_layout()
    dataset = pipeline_dataset(store, args.archive)
    if not args.port:
        with socket.socket() as free:
            free.bind(("127.0.0.1", 0))
            args.port = free.getsockname()[1]
    print(f"data: {len(frames['train'])} training rows (notebook CSV), "
          f"{dataset.splits['train'].rows} (pipeline dataset)")  # fmt: skip
    server = start_api(store.root, args.port, folder / "api.log")
    client = boto3.client(
        "sagemaker",
        endpoint_url=f"http://127.0.0.1:{args.port}",
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(retries={"max_attempts": 1}),
    )
    try:
        deadline = time.monotonic() + 300
        while True:  # the server and its Prefect server start before the clock
            try:
                client.list_training_jobs()
                break
            except Exception:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit((folder / "api.log").read_text()) from None
                time.sleep(0.5)
        api_runs, step_runs = [], []
        for i in range(args.repeat):  # alternating, so a busy moment hurts both alike
            api_runs.append(through_api(client, f"api-{i}", data, folder / "output"))
            step_runs.append(through_pipeline_step(store, dataset, f"step-{i}"))
            (api_s, api_auc), (step_s, step_auc) = api_runs[-1], step_runs[-1]
            print(f"run {i + 1}: API {api_s:.2f} s (AUC {api_auc:.4f}), "
                  f"pipeline step {step_s:.2f} s (AUC {step_auc:.4f})")  # fmt: skip
        if args.load_seconds:
            url, width = f"http://127.0.0.1:{args.port}", frames["test"].shape[1] - 1
            hosting_figures(client, store, url, "api-0", width, args.load_seconds)
    finally:
        server.terminate()
        server.wait(timeout=30)
    api_median = statistics.median(s for s, _ in api_runs)
    step_median = statistics.median(s for s, _ in step_runs)
    print(f"CreateTrainingJob → Completed, median of {args.repeat}: {api_median:.2f} s")
    print(f"pipeline train step, median of {args.repeat}:        {step_median:.2f} s")
    print(f"ratio API / pipeline step: {api_median / step_median:.2f}× (target ≤ 1.5×)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
