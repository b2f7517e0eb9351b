"""Evaluating a deployed model: the test split sent through the endpoint's HTTP API."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from algorithms.classification_metrics import classification_metrics
from core.errors import ServingError
from core.store import Store
from flows.datasets import Dataset, read_split
from flows.figures import confusion_matrix_png, figure_png, pyplot
from serving.control import servers
from serving.control.client import EndpointClient
from serving.control.servers import RunningEndpoint

logger = logging.getLogger(__name__)
CUTOFF = 0.5  # a score above it is a "yes" (classification_metrics' default)


def predict_over_http(
    endpoint: RunningEndpoint,
    rows: np.ndarray,
    batch_size: int,
    progress: Callable[[float], None] | None = None,
) -> np.ndarray:
    """Scores for every row, sent in batches (``batch_size=1``: record by record, as the demo)."""
    scores, last_report = [], time.monotonic()
    with EndpointClient(endpoint.url, **endpoint.http_options()) as client:
        for batch in client.predict_batches(rows, batch_size):
            scores.append(batch)
            done = sum(len(s) for s in scores) / len(rows)
            if time.monotonic() - last_report > 2 or done == 1:
                last_report = time.monotonic()
                logger.info("evaluation: %d of %d rows scored", int(done * len(rows)), len(rows))
                if progress:
                    progress(done)
    return np.concatenate(scores) if scores else np.array([])


def curves(labels: np.ndarray, scores: np.ndarray) -> dict[str, np.ndarray]:
    """ROC (fpr, tpr) and precision-recall points, one per distinct threshold."""
    order = np.argsort(-scores, kind="stable")
    y = labels[order].astype(bool)
    tp, fp = np.cumsum(y), np.cumsum(~y)
    last = np.r_[np.flatnonzero(np.diff(scores[order])), len(y) - 1]  # ends of tied runs
    tp, fp = tp[last], fp[last]
    positives, negatives = max(y.sum(), 1), max((~y).sum(), 1)
    return {
        "fpr": np.r_[0, fp / negatives],
        "tpr": np.r_[0, tp / positives],
        "recall": tp / positives,
        "precision": tp / np.maximum(tp + fp, 1),
    }


def plots(labels: np.ndarray, scores: np.ndarray, metrics: dict[str, Any]) -> dict[str, bytes]:
    """ROC, precision-recall and the confusion matrix at cutoff 0.5, as PNG bytes."""
    plt = pyplot()
    c = curves(labels, scores)
    out = {}
    for name, (x, y, xlabel, ylabel, title) in {
        "roc.png": (
            c["fpr"],
            c["tpr"],
            "false positive rate",
            "true positive rate",
            f"ROC (AUC {metrics['auc']:.3f})",
        ),
        "precision-recall.png": (
            c["recall"],
            c["precision"],
            "recall",
            "precision",
            f"Precision-recall (base rate {labels.mean():.3f})",
        ),
    }.items():
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.plot(x, y, lw=2)
        if name == "roc.png":
            ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1)
        ax.set(xlabel=xlabel, ylabel=ylabel, title=title, xlim=(0, 1), ylim=(0, 1.02))
        ax.grid(alpha=0.3)
        out[name] = figure_png(fig)
    out["confusion-matrix.png"] = confusion_matrix_png(metrics, CUTOFF)
    return out


def evaluate(
    store: Store,
    dataset: Dataset,
    endpoint: str,
    run_key: str,
    batch_size: int = 1000,
    progress: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """Score the test split through the endpoint; write evaluation.json and the plots.

    Returns:
        The evaluation: metrics at cutoff 0.5 (auc, error_rate, precision, recall, confusion
        matrix counts), rows, and the URLs of what was written under ``run_key``.
    """
    test = read_split(store, dataset, "test")
    server = servers.running(store, endpoint)
    if server is None:
        raise ServingError(f"endpoint {endpoint!r} is not running on this machine")
    endpoint_url = server.url
    rows = test[dataset.features].to_numpy(np.float32)
    labels = test[dataset.label].to_numpy().astype(bool)
    started = time.monotonic()
    scores = predict_over_http(server, rows, batch_size, progress)
    seconds = time.monotonic() - started
    metrics = classification_metrics(labels, scores)
    urls = {
        name: store.write_bytes(f"{run_key}/{name}", png)
        for name, png in plots(labels, scores, metrics).items()
    }
    evaluation = {
        "dataset_id": dataset.dataset_id,
        "endpoint_url": endpoint_url,
        "rows": len(rows),
        "batch_size": batch_size,
        "seconds": seconds,
        "cutoff": CUTOFF,
        "metrics": metrics,
        "plots": urls,
    }
    evaluation["url"] = store.write_json(f"{run_key}/evaluation.json", evaluation)
    return evaluation
