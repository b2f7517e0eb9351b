"""Synthetic bank-shaped data: numeric columns like age and campaign, one-hot blocks like job
and month, a rare positive class whose odds depend on a few of them. Deterministic per seed."""

from __future__ import annotations

import numpy as np
import pandas as pd

NUMERIC = 10
ONE_HOT_BLOCKS = (12, 4, 8, 3, 3, 3, 2, 10, 5)  # job, marital, education, ... like the real set


def bank_shaped(rows: int, seed: int = 0) -> pd.DataFrame:
    """``rows`` × (10 numeric + 50 one-hot) float32 features and a label ``y`` (~11% positive)."""
    rng = np.random.default_rng(seed)
    numeric = rng.normal(size=(rows, NUMERIC)).astype(np.float32)
    blocks, logit = [], -2.6 + 0.8 * numeric[:, 0] - 0.6 * numeric[:, 1] * numeric[:, 2]
    for b, levels in enumerate(ONE_HOT_BLOCKS):
        level = rng.integers(0, levels, size=rows)
        blocks.append(np.eye(levels, dtype=np.float32)[level])
        logit = logit + rng.normal(scale=0.4, size=levels)[level] * (b < 4)
    logit = logit + rng.logistic(scale=0.6, size=rows)
    features = np.hstack([numeric, *blocks])
    frame = pd.DataFrame(features, columns=[f"f{i}" for i in range(features.shape[1])])
    frame.insert(0, "y", (logit > 0).astype(np.float32))
    return frame
