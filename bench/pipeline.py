"""The pipeline's wall time with and without orchestration, measured side by side in one run.

    python -m bench.pipeline [--source ../shared/data/bank-additional.zip] [--repeat 1]

Runs, each in a fresh process and a fresh store, the same eight steps:
  (a) the flow against a running Prefect server (started here, on a free loopback port),
  (b) the flow in ephemeral mode (Prefect starts a temporary server for the run),
  (c) a plain script calling the same step functions, with no Prefect at all,
and prints their wall times with the ratios to (c). Then it measures, on the plain path, the
time from deploy to the first successful invocation: for a new endpoint (server start) and for
an update in place (a running server swapping to a new version).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared/data/bank-additional.zip"


def plain(source: str, store_url: str, endpoint: str = "bench") -> dict:
    """Every step of the flow as plain function calls: what orchestration is measured against."""
    from core.store import Store
    from flows import bank, data, datasets, evaluation, registration, training
    from flows.config import PipelineConfig
    from serving.control import deploys

    config = PipelineConfig(source=source, store=store_url)
    store = Store(store_url)
    store.ensure_layout()
    archive = data.download(source, store)
    csv = data.extract_member(store.read_bytes(archive.key), bank.CSV_MEMBER, source)
    table, schema = bank.clean(csv, bank.CleanOptions())
    options = {"split": "random", "split_seed": 1729}
    dataset = datasets.publish(
        store,
        datasets.dataset_id(archive.sha256, options),
        datasets.split(table),
        schema,
        source=source,
        archive_sha256=archive.sha256,
        options=options,
    )
    status = training.train(training.TrainingRequest.from_config(config), dataset, store)
    version = registration.register(store, "bank-marketing", status.name, 0.0)
    deploys.deploy(store, endpoint, "bank-marketing", version.version)
    result = evaluation.evaluate(store, dataset, endpoint, "runs/bench")
    deploys.delete(store, endpoint)
    return {"auc": result["metrics"]["auc"], "error_rate": result["metrics"]["error_rate"]}


def deploy_timings(source: str, store_url: str) -> dict:
    """Deploy → first successful invocation: a new endpoint, then an update in place."""
    import httpx

    from core.store import Store
    from flows import registration, training
    from flows.config import PipelineConfig
    from flows.datasets import find_dataset
    from serving.control import deploys

    plain(source, store_url, endpoint="warm-up")  # data, a first model version
    store = Store(store_url)
    dataset = find_dataset(store, store.list("datasets")[0])
    row = ",".join(["1"] * len(dataset.features))

    def first_answer(url: str, variant: str) -> None:
        while True:
            try:
                answer = httpx.post(
                    f"{url}/invocations", content=row, headers={"Content-Type": "text/csv"}
                )
            except httpx.HTTPError:
                continue
            if (
                answer.status_code == 200
                and answer.headers["x-amzn-invoked-production-variant"] == variant
            ):
                return

    started = time.perf_counter()
    deployed = deploys.deploy(store, "timed", "bank-marketing", 1)
    first_answer(deployed.endpoint_url, "v1")
    new_endpoint = time.perf_counter() - started

    config = PipelineConfig(source=source, store=store_url)
    config = config.model_copy(update={"xgboost": config.xgboost.model_copy(update={"eta": 0.3})})
    job = training.train(training.TrainingRequest.from_config(config), dataset, store).name
    version = registration.register(store, "bank-marketing", job, 0.0).version
    started = time.perf_counter()
    deploys.deploy(store, "timed", "bank-marketing", version)
    first_answer(deployed.endpoint_url, f"v{version}")
    update = time.perf_counter() - started
    deploys.delete(store, "timed")
    return {"new_endpoint_s": new_endpoint, "update_in_place_s": update}


def timed(command: list[str], env: dict) -> float:
    started = time.perf_counter()
    proc = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - started


def start_prefect_server(home: Path, env: dict) -> tuple[subprocess.Popen, str]:
    import socket

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/api"
    log = open(home / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    command = [
        sys.executable,
        *["-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port"],
        str(port),
    ]
    proc = subprocess.Popen(
        command,
        env=env | {"PREFECT_HOME": str(home)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    sys.exit("the Prefect server did not start in 180 s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source", default=str(DEFAULT_SOURCE))
    parser.add_argument("--repeat", type=int, default=1, help="runs of each mode (best is kept)")
    parser.add_argument("--plain-into", help=argparse.SUPPRESS)  # internal: run (c) here
    args = parser.parse_args()
    if args.plain_into:
        print(json.dumps(plain(args.source, args.plain_into)))
        return

    tmp = Path(tempfile.mkdtemp(prefix="skiff-bench-"))
    base = os.environ | {"PYTHONPATH": str(ROOT), "SKIFF_RUNTIME": str(tmp / "runtime")}
    base.pop("PREFECT_API_URL", None)
    flow_cmd = [
        sys.executable,
        "-m",
        "flows.bank_marketing",
        "--source",
        args.source,
        "--delete-endpoint",
        "--endpoint-name",
        "bench",
    ]
    server, api = start_prefect_server(tmp, base)
    times: dict[str, list[float]] = {"server": [], "ephemeral": [], "plain": []}
    extra = {}
    try:
        for i in range(args.repeat):
            times["server"].append(
                timed([*flow_cmd, "--store", str(tmp / f"s{i}")], base | {"PREFECT_API_URL": api})
            )
            home = tmp / f"ephemeral-home-{i}"
            home.mkdir()
            times["ephemeral"].append(
                timed(
                    [*flow_cmd, "--store", str(tmp / f"e{i}")], base | {"PREFECT_HOME": str(home)}
                )
            )
            started = time.perf_counter()
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.pipeline",
                    "--source",
                    args.source,
                    "--plain-into",
                    str(tmp / f"p{i}"),
                ],
                env=base,
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
            times["plain"].append(time.perf_counter() - started)
            extra = json.loads(out.stdout.strip().splitlines()[-1])
        os.environ["SKIFF_RUNTIME"] = base["SKIFF_RUNTIME"]
        deploy = deploy_timings(args.source, str(tmp / "deploy"))
    finally:
        server.terminate()
        server.wait(timeout=30)

    best = {k: min(v) for k, v in times.items()}
    print(f"all eight steps on {Path(args.source).name}, best of {args.repeat}, one process each")
    print(f"{'mode':<40}{'wall s':>8}{'× plain':>9}")
    for label, key in [
        ("flow, running Prefect server", "server"),
        ("flow, ephemeral Prefect server", "ephemeral"),
        ("plain script, no orchestration", "plain"),
    ]:
        print(f"{label:<40}{best[key]:>8.1f}{best[key] / best['plain']:>9.2f}")
    print(
        f"deploy → first successful invocation, new endpoint (server start): "
        f"{deploy['new_endpoint_s']:.2f} s"
    )
    print(
        f"deploy → first answer from the new version, update in place: "
        f"{deploy['update_in_place_s']:.2f} s"
    )
    print(f"test AUC {extra['auc']:.4f}, error rate {extra['error_rate']:.4f} (plain run)")


if __name__ == "__main__":
    main()
