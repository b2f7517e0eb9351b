"""Training on the local backend beside the dask backend, measured side by side in one run.

    python -m bench.training [--rows 2000000] [--repeat 1] [--ten-million]

Synthetic bank-shaped data (bench/synthetic.py: ~60 features) is written once as Parquet, then
trained through the real job path by each configuration in turn (alternating, each in a fresh
process): local with 2 threads, dask 1 worker × 2 threads, dask 2 workers × 1 thread. For each
it prints wall time (the whole job), the Training phase alone, CPU seconds and peak RSS of the
whole process tree (runner and workers included), validation AUC, and the ratios to local.
Not part of CI: it takes minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {
    "local 2 threads": ("local", {"threads": 2}),
    "dask 1 worker × 2 threads": ("dask", {"workers": 1, "threads": 2}),
    "dask 2 workers × 1 thread": ("dask", {"workers": 2, "threads": 1}),
}
HYPERPARAMETERS = {"num_round": 50, "max_depth": 6, "eta": 0.3}


def tree_rss_kib(root: int) -> int:
    """Resident memory of ``root`` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        pid, ppid = int(entry), int(fields["PPid"])
        children.setdefault(ppid, []).append(pid)
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0])
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total


def one(config: str, store_url: str, channels: dict[str, str]) -> dict:
    """Run one configuration in this process; measure the whole tree."""
    from backends import get_backend
    from core.records.jobs import TrainingJob
    from core.store import Store

    backend_name, options = CONFIGS[config]
    store = Store(store_url)
    peak, stop = [0], threading.Event()

    def sample() -> None:
        while not stop.wait(0.2):
            peak[0] = max(peak[0], tree_rss_kib(os.getpid()))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    name = f"bench-{backend_name}-{int(time.time() * 1000)}"
    features = [
        c for c in __import__("pandas").read_parquet(channels["validation"]).columns if c != "y"
    ]
    job = TrainingJob(
        name=name,
        channels=channels,
        label="y",
        features=features,
        output_url=store.url(f"jobs/{name}/output"),
        hyperparameters=HYPERPARAMETERS,
        max_runtime_seconds=7200,
    )
    started = time.perf_counter()
    with get_backend(backend_name, **options) as backend:
        status = backend.run(job, store)
    wall = time.perf_counter() - started
    stop.set()
    sampler.join()
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    cpu = sum(u.ru_utime + u.ru_stime for u in usage)
    if status.status != "Completed":
        sys.exit(f"{config}: {status.status}: {status.failure_reason}")
    at = {t.secondary_status: datetime.fromisoformat(t.at) for t in status.transitions}
    train = (at["Uploading"] - at["Training"]).total_seconds()
    return {
        "wall": wall,
        "train": train,
        "cpu": cpu,
        "peak_mib": peak[0] / 1024,
        "auc": status.metrics["validation_auc"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--ten-million", action="store_true", help="10M rows (many minutes)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one configuration
    parser.add_argument("--store", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        channels = {c: f"{args.store}/data/{c}.parquet" for c in ("train", "validation")}
        print(json.dumps(one(args.one, args.store, channels)))
        return

    from bench.synthetic import bank_shaped

    rows = 10_000_000 if args.ten_million else args.rows
    store = Path(tempfile.mkdtemp(prefix="skiff-bench-training-"))
    (store / "data").mkdir()
    started = time.perf_counter()
    bank_shaped(rows, seed=1).to_parquet(store / "data/train.parquet", index=False)
    bank_shaped(max(rows // 10, 1000), seed=2).to_parquet(
        store / "data/validation.parquet", index=False
    )
    print(
        f"{rows:,} rows × 60 features written in {time.perf_counter() - started:.0f} s; "
        f"{HYPERPARAMETERS}"
    )
    results: dict[str, list[dict]] = {c: [] for c in CONFIGS}
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    for _ in range(args.repeat):
        for config in CONFIGS:  # alternating, so drift in the machine hits each alike
            out = subprocess.run(
                [sys.executable, "-m", "bench.training", "--one", config, "--store", str(store)],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            if out.returncode:
                sys.exit(out.stderr[-3000:])
            results[config].append(json.loads(out.stdout.strip().splitlines()[-1]))
    best = {c: min(r, key=lambda x: x["wall"]) for c, r in results.items()}
    base = best["local 2 threads"]
    header = ["wall s", "train s", "CPU s", "peak MiB", "AUC", "wall ×", "train ×", "mem ×"]
    print(f"{'configuration':<28}" + "".join(f"{h:>9}" for h in header))
    for config, r in best.items():
        cells = [
            f"{r['wall']:.1f}",
            f"{r['train']:.1f}",
            f"{r['cpu']:.1f}",
            f"{r['peak_mib']:.0f}",
            f"{r['auc']:.4f}",
            f"{r['wall'] / base['wall']:.2f}",
            f"{r['train'] / base['train']:.2f}",
            f"{r['peak_mib'] / base['peak_mib']:.2f}",
        ]
        print(f"{config:<28}" + "".join(f"{c:>9}" for c in cells))
    print("wall: the whole job (Dask: cluster start included); train: the job's Training phase")
    print(
        "GPU: skipped (no CUDA device on this machine)"
        if not _has_gpu()
        else "GPU: run device=cuda through the job spec on the device machine"
    )


def _has_gpu() -> bool:
    return Path("/proc/driver/nvidia").exists()


if __name__ == "__main__":
    main()
