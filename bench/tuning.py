"""Tuning jobs, measured side by side in one run, on the bank-marketing data (the pipeline's
seeded random split, ``duration`` dropped):

    python -m bench.tuning [--archive ../shared/data/bank-additional.zip] [--trials 20]

1. 20 trials, 3 at a time, on the local backend (the companion notebook's request: Bayesian,
   ``eta`` [0, 1], ``min_child_weight`` [1, 10], ``alpha`` [0, 2], ``max_depth`` 1..10, 100
   rounds), against the same 20 trials (their very hyperparameters, enqueued) run one after
   another by a plain in-process Optuna loop over ``xgboost.train`` with 2 threads: the limit
   of no orchestration (target: at most 2x);
2. the same on the dask backend (a LocalCluster of 2 workers x 1 thread, each trial on one
   worker thread; target: at most 2.5x the loop); each ratio is to the loop run right after;
3. the best validation AUC after 20 trials, Bayesian against Random, same seed, and for each
   best model its test AUC and error rate (reported, never used to choose);
4. the pipeline's default ranges (``flows/tuning/pipeline.py``), Bayesian: the same figures.

Not part of CI: it takes a few minutes.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_STATIC = {"num_round": 100, "objective": "binary:logistic", "eval_metric": "auc"}
NOTEBOOK_RANGES = {"eta": "0:1", "min_child_weight": "1:10", "alpha": "0:2", "max_depth": "1:10"}


def bank_splits(archive: Path, store: Any) -> tuple[dict[str, str], Any, list[str]]:
    """The pipeline's splits in ``store``: (channel URLs, the test frame, the features)."""
    import io

    from flows import bank, data, datasets

    csv = data.extract_member(archive.read_bytes(), bank.CSV_MEMBER, str(archive))
    table, _ = bank.clean(csv, bank.CleanOptions())
    parts = datasets.split(table, "random", 1729)
    urls = {}
    for name in ("train", "validation"):
        buffer = io.BytesIO()
        parts[name].to_parquet(buffer, index=False)
        urls[name] = store.write_bytes(f"bench/{name}.parquet", buffer.getvalue())
    features = [c for c in table.columns if c != bank.LABEL]
    return urls, parts["test"], features


def tuning_spec(name: str, store: Any, channels: dict, features: list[str], **how: Any) -> Any:
    from core.records.jobs import JobStore, TrainingJob
    from core.records.tuning import Objective, TuningSpec
    from flows.tuning.ranges import parse_range

    static = how.pop("static")
    ranges = [parse_range(n, text) for n, text in how.pop("ranges").items()]
    definition = TrainingJob(
        name=name,
        hyperparameters=static,
        channels=channels,
        label="y",
        features=features,
        output_url=store.url(JobStore.output_key(name)),
    )
    objective = Objective(metric="validation:auc")
    return TuningSpec(name=name, definition=definition, ranges=ranges, objective=objective, **how)


def run_tuning(store: Any, spec: Any) -> tuple[float, Any]:
    from flows.tuning import jobs

    jobs.create(store, spec)
    started = time.perf_counter()
    record = jobs.run(store, spec.name, log=lambda line: None)
    return time.perf_counter() - started, record


def plain_loop(
    channels: dict, features: list[str], spec: Any, trials: list[Any], with_train: bool = False
) -> float:
    """The same trials' hyperparameters, one after another, in this process (evaluating the
    validation split each round; ``with_train``: the train split too, as every job does)."""
    import optuna
    import pandas as pd
    import xgboost as xgb

    from algorithms.xgboost_params import validate_hyperparameters
    from flows.tuning.ranges import distribution

    frames = {n: pd.read_parquet(u) for n, u in channels.items()}
    started = time.perf_counter()
    dtrain = xgb.DMatrix(frames["train"][features], label=frames["train"]["y"], nthread=2)
    dvalid = xgb.DMatrix(frames["validation"][features], label=frames["validation"]["y"], nthread=2)
    study = optuna.create_study(direction="maximize")
    for trial in trials:
        study.enqueue_trial(trial.hyperparameters)
    distributions = {r.name: distribution(r) for r in spec.ranges}
    train = [(dtrain, "train")] if with_train else []
    for _ in trials:
        asked = study.ask(distributions)
        hp = validate_hyperparameters(spec.definition.hyperparameters | asked.params)
        params = {k: v for k, v in hp.items() if k not in ("num_round", "early_stopping_rounds")}
        history: dict = {}
        evals = [*train, (dvalid, "validation")]
        params |= {"nthread": 2}
        xgb.train(
            params, dtrain, hp["num_round"], evals=evals, evals_result=history, verbose_eval=False
        )
        study.tell(asked, history["validation"]["auc"][-1])
    return time.perf_counter() - started


def test_figures(store: Any, record: Any, test: Any, features: list[str]) -> tuple[float, float]:
    """The best trial's model on the test split: (AUC, error rate)."""
    import fsspec
    import numpy as np
    import xgboost as xgb

    from core.records.jobs import JobStore

    manifest = JobStore(store).manifest(record.best_trial.job_name)
    with fsspec.open(manifest.model_url, "rb") as f:
        booster = xgb.Booster()
        booster.load_model(bytearray(f.read()))
    scores = booster.predict(xgb.DMatrix(test[features]))
    y = test["y"].to_numpy()
    order = np.argsort(scores)
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    pos = y == 1
    auc = (ranks[pos].sum() - pos.sum() * (pos.sum() + 1) / 2) / (pos.sum() * (~pos).sum())
    return float(auc), float(((scores > 0.5) != y).mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.tuning",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--archive", type=Path, default=ROOT.parent / "shared/data/bank-additional.zip"
    )
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--parallel", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from core.store import Store
    from flows.tuning.pipeline import XGBOOST_RANGES

    store = Store(tempfile.mkdtemp(prefix="skiff-bench-tuning-"))
    channels, test, features = bank_splits(args.archive, store)
    common = {"max_trials": args.trials, "max_parallel": args.parallel, "seed": args.seed}
    notebook = {"static": NOTEBOOK_STATIC, "ranges": NOTEBOOK_RANGES}
    runs: dict[str, tuple[float, Any, Any]] = {}
    loops: dict[str, float] = {}  # the plain loop, run right after each backend's tuning job
    for label, name, how in [
        ("local, Bayesian (notebook)", "bench-local", {**notebook, "strategy": "Bayesian"}),
        ("dask, Bayesian (notebook)", "bench-dask", {**notebook, "strategy": "Bayesian",
         "backend": "dask", "backend_options": {"workers": 2, "threads": 1}}),
        ("local, Random (notebook)", "bench-random", {**notebook, "strategy": "Random"}),
        ("local, Bayesian (default ranges)", "bench-default",
         {"static": {"num_round": 100}, "ranges": XGBOOST_RANGES, "strategy": "Bayesian"}),
    ]:  # fmt: skip
        spec = tuning_spec(name, store, channels, features, **common, **how)
        seconds, record = run_tuning(store, spec)
        runs[label] = (seconds, record, spec)
        print(f"{label:34} {seconds:6.1f} s  {record.status}  {record.counts()}", flush=True)
        if "(notebook)" in label and "Random" not in label:
            # Beside each run, not once at the end: this machine drifts by tens of percent
            # within a minute, and a ratio of figures taken minutes apart measures the drift.
            loops[label] = plain_loop(channels, features, spec, record.trials)
            print(f"{'  the plain loop, right after':34} {loops[label]:6.1f} s", flush=True)

    seconds, record, spec = runs["local, Bayesian (notebook)"]
    loop = loops["local, Bayesian (notebook)"]
    loop_both = plain_loop(channels, features, spec, record.trials, with_train=True)
    dask = "dask, Bayesian (notebook)"
    dask_seconds, dask_loop = runs[dask][0], loops[dask]
    trials = len(record.trials)
    print(f"\nplain in-process Optuna loop, 2 threads, the same {trials} trials: {loop:.1f} s")
    print(f"the same loop evaluating the train split too, as a job does: {loop_both:.1f} s")
    print(f"local backend, Bayesian (notebook): {seconds:.1f} s")
    print(f"local backend / loop: {seconds / loop:.2f}x (target <= 2)")
    print(f"local backend / the loop evaluating train too: {seconds / loop_both:.2f}x")
    print(f"dask backend / the loop run right after it ({dask_loop:.1f} s): "
          f"{dask_seconds / dask_loop:.2f}x (target <= 2.5)\n")  # fmt: skip
    print(f"{'run':34} {'best validation AUC':>20} {'test AUC':>9} {'test error':>11}")
    for label, (_, record, _) in runs.items():
        auc, error = test_figures(store, record, test, features)
        best = record.best_trial
        print(f"{label:34} {best.objective:20.4f} {auc:9.4f} {error:11.4f}  {best.hyperparameters}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
