"""Binary-classification metrics without extra dependencies (training and evaluation share them)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (the Mann-Whitney statistic, ties counted half)."""
    labels = np.asarray(labels).astype(bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = pd.Series(np.asarray(scores, dtype=np.float64)).rank(method="average").to_numpy()
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def classification_metrics(
    labels: np.ndarray, scores: np.ndarray, cutoff: float = 0.5
) -> dict[str, float]:
    """AUC, error rate, precision, recall and the confusion matrix counts at ``cutoff``."""
    labels = np.asarray(labels).astype(bool)
    predicted = np.asarray(scores) > cutoff
    tp = int((predicted & labels).sum())
    fp = int((predicted & ~labels).sum())
    fn = int((~predicted & labels).sum())
    tn = int((~predicted & ~labels).sum())
    n = max(len(labels), 1)
    return {
        "auc": roc_auc(labels, scores),
        "error_rate": (fp + fn) / n,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "true_positives": tp,
        "false_positives": fp,
        "false_negatives": fn,
        "true_negatives": tn,
    }
