"""Batch transform speed and memory: Skiff's transform beside a plain script and an endpoint.

    python -m bench.transform [--rows 10000000] [--endpoint-rows 1000000] [--repeat 1]

One run trains a bank-shaped XGBoost model (the demo's hyperparameters, 60 features) and
writes ``--rows`` bank-shaped rows as one CSV file, then scores them, one after another:

- ``script``: a plain single-process script, pandas' ``read_csv`` in 100,000-row chunks,
  ``booster.inplace_predict`` (every core), ``np.savetxt``: what one writes without Skiff;
- ``skiff local``: ``skiff transform`` on the local backend (every core);
- ``skiff dask``: ``skiff transform --backend dask --workers 2`` (a LocalCluster of two
  single-threaded workers, created for the job: its start is in the wall time, not in rows/s);
- ``endpoint``: the first ``--endpoint-rows`` rows sent to Skiff's endpoint (two workers) in
  1,000-row requests from four client threads (its best case here), and from one (a plain
  scoring loop, one request after another).

Each is a process tree of its own, its peak memory (RSS summed over the tree) sampled every
50 ms. It prints rows/s, wall time and peak memory, and the ratios the targets are about.
The outputs of the script and of Skiff are compared line by line. Not part of CI.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import psutil

from bench.serving_speed import train
from bench.synthetic import bank_shaped
from core.store import Store
from flows.approval import deploy_approved as deploy
from serving.control.deploys import delete
from serving.options import ServerOptions

CHUNK = 100_000


def write_rows(path: Path, rows: int) -> None:
    """``rows`` bank-shaped rows of features (no label, no header): a block of distinct rows
    repeated, so that writing 10 million takes seconds."""
    block = bank_shaped(CHUNK, seed=11).drop(columns="y")
    text = block.to_csv(header=False, index=False, float_format="%.6g").encode()
    with open(path, "wb") as f:
        for start in range(0, rows, CHUNK):
            count = min(CHUNK, rows - start)
            f.write(text if count == CHUNK else b"".join(text.splitlines(True)[:count]))


def plain_script(model: str, source: str, target: str) -> None:
    """The script a user would write: chunks of pandas, XGBoost on every core, savetxt."""
    import pandas as pd
    import xgboost as xgb

    booster = xgb.Booster(model_file=model)
    with open(target, "wb") as out:
        for chunk in pd.read_csv(source, header=None, chunksize=CHUNK):
            scores = booster.inplace_predict(chunk.to_numpy(np.float32))
            np.savetxt(out, scores, fmt="%.6g")


def measure(command: list[str]) -> dict[str, float]:
    """Run ``command``; its wall time and the peak RSS of its process tree (MiB)."""
    started = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = 0
    root = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.05)
    wall = time.monotonic() - started
    output = proc.stdout.read() if proc.stdout else ""
    if proc.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{output}")
    return {"wall": wall, "peak_mib": peak / 2**20, "output": output}  # type: ignore[dict-item]


def job_rate(output: str) -> float:
    """rows/s as the transform job recorded it (from ``skiff transform``'s last line)."""
    line = [line for line in output.splitlines() if line.startswith("transform job")][-1]
    return float(line.rsplit(" rows/s", 1)[0].rsplit(", ", 1)[1].replace(",", ""))


def endpoint_rate(store: Store, source: Path, rows: int, clients: int = 4) -> float:
    """rows/s of Skiff's endpoint scoring the first ``rows`` rows in 1,000-row requests."""
    lines = source.open("rb")
    bodies = []
    for _ in range(rows // 1000):
        bodies.append(b"".join(lines.readline() for _ in range(1000)))
    lines.close()
    server = ServerOptions(server_workers=2, max_concurrency=1024)
    url = deploy(store, "bench-transform", "bench", 1, server=server).endpoint_url
    try:
        queue = iter(bodies)
        lock = threading.Lock()

        def send() -> None:
            with httpx.Client(timeout=60, headers={"Content-Type": "text/csv"}) as client:
                while True:
                    with lock:
                        body = next(queue, None)
                    if body is None:
                        return
                    client.post(f"{url}/invocations", content=body).raise_for_status()

        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            for future in [pool.submit(send) for _ in range(clients)]:
                future.result()
        return len(bodies) * 1000 / (time.monotonic() - started)
    finally:
        delete(store, "bench-transform")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.transform", description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--endpoint-rows", type=int, default=1_000_000)
    parser.add_argument(
        "--plain-script", nargs=3, metavar=("MODEL", "IN", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.plain_script:
        plain_script(*args.plain_script)
        return
    with tempfile.TemporaryDirectory(prefix="skiff-bench-transform-") as tmp:
        folder = Path(tmp)
        store = Store(str(folder / "store"))
        store.ensure_layout()
        model = train(store)
        source = folder / "rows.csv"
        write_rows(source, args.rows)
        size = source.stat().st_size / 2**20
        print(f"{args.rows:,} rows, {size:,.0f} MiB of CSV; model {model}", flush=True)
        python = [sys.executable, "-m"]
        skiff = [*python, "flows.cli", "--store", store.root, "transform", "bench:1", str(source)]
        results = {
            "script": measure([*python, "bench.transform", "--plain-script", model,
                               str(source), str(folder / "script.out")]),
            "skiff local": measure([*skiff, str(folder / "local"), "--name", "local"]),
            "skiff dask": measure([*skiff, str(folder / "dask"), "--name", "on-dask",
                                   "--backend", "dask", "--workers", "2"]),
        }  # fmt: skip
        for name, r in results.items():
            r["rate"] = job_rate(r["output"]) if name != "script" else args.rows / r["wall"]
        with open(folder / "script.out") as a, open(folder / "local" / "rows.csv.out") as b:
            same = all(x == y for x, y in zip(a, b, strict=True))
        endpoint = endpoint_rate(store, source, args.endpoint_rows, clients=4)
        loop = endpoint_rate(store, source, args.endpoint_rows, clients=1)
        print(f"\n{'':14}{'rows/s':>12}{'wall s':>9}{'peak MiB':>10}")
        for name, r in results.items():
            print(f"{name:14}{r['rate']:>12,.0f}{r['wall']:>9.1f}{r['peak_mib']:>10,.0f}")
        print(f"{'endpoint':14}{endpoint:>12,.0f}   (1,000-row requests, 4 clients, 2 workers)")
        print(f"{'endpoint loop':14}{loop:>12,.0f}   (1,000-row requests, one after another)")
        script, local, dask = (results[k] for k in ("script", "skiff local", "skiff dask"))
        print(f"\noutputs identical (script vs skiff): {same}")
        print(f"skiff local / script rows/s: {local['rate'] / script['rate']:.2f}x (target 1.5x)")
        print(f"skiff local / script wall:   {script['wall'] / local['wall']:.2f}x")
        print(f"peak memory skiff local / script: {local['peak_mib'] / script['peak_mib']:.2f}")
        print(f"skiff dask / script rows/s:  {dask['rate'] / script['rate']:.2f}x (target 1.2x)")
        print(f"skiff dask / script wall:    {script['wall'] / dask['wall']:.2f}x")
        print(f"skiff local / endpoint loop rows/s: {local['rate'] / loop:.2f}x (target 3x)")
        print(f"skiff local / endpoint, 4 clients: {local['rate'] / endpoint:.2f}x (its best case)")


if __name__ == "__main__":
    main()
