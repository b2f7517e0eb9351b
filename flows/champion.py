"""Never auto-deploy a worse model: before the pipeline deploys a version it approved by
itself, the version and the model the endpoint serves now are scored on the new version's
validation split, and the version is deployed only if it is at least as good.

The live model is the variant with the largest share of the traffic (the champion of an A/B
test). The comparison is by AUC, the metric auto-approval judges by. A person's own deploys
(``skiff endpoints deploy``, the ``deploy-model`` flow) are theirs to make: no guard.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel

from algorithms.classification_metrics import roc_auc
from core.errors import SkiffError
from core.records.endpoints import EndpointStore
from core.store import Store
from flows.datasets import Dataset, read_split
from serving.dataplane.loading import LoadedModel, load_model, load_variant


class Verdict(BaseModel):
    """Whether the new version deploys, and why (the run says so)."""

    deploy: bool
    reason: str
    new_auc: float | None = None
    live_auc: float | None = None
    live: str | None = None  # the live variant's model, for people ("bank-marketing:1")


def judge(store: Store, dataset: Dataset, endpoint: str, group: str, version: int) -> Verdict:
    """Whether ``group`` version ``version`` may replace what ``endpoint`` serves."""
    configs = EndpointStore(store)
    if not configs.exists(endpoint):
        reason = f"endpoint {endpoint} is new: version {version} is its first"
        return Verdict(deploy=True, reason=reason)
    live = max(configs.current(endpoint).variants, key=lambda v: v.weight)
    if (live.model_group, live.model_version) == (group, version):
        return Verdict(deploy=True, reason=f"version {version} is the live one already")
    on = f"on version {version}'s validation split"
    try:
        frame = read_split(store, dataset, "validation")
        labels = frame[dataset.label].to_numpy().astype(bool)
        new_auc = roc_auc(labels, _scores(load_model(store, group, version), frame, dataset))
        live_auc = roc_auc(labels, _scores(load_variant(store, live), frame, dataset))
    except (SkiffError, OSError, ValueError) as exc:
        return Verdict(
            deploy=False,
            live=live.source,
            reason=f"version {version} could not be compared with the live {live.name} "
            f"({live.source}) {on}: {exc}; registered, not deployed (--deploy-anyway deploys "
            "it all the same)",
        )
    figures = {"new_auc": new_auc, "live_auc": live_auc, "live": live.source}
    versus = f"the live {live.name} ({live.source}) {live_auc:.4f}, both {on}"
    if new_auc >= live_auc:
        reason = f"version {version}'s AUC {new_auc:.4f} is at least {versus}: deployed"
        return Verdict(deploy=True, reason=reason, **figures)
    return Verdict(
        deploy=False,
        reason=f"version {version}'s AUC {new_auc:.4f} is below {versus}: registered, not "
        f"deployed (--deploy-anyway deploys it all the same; skiff endpoints deploy {endpoint} "
        f"{version} --weight 0.1 tests it beside {live.name})",
        **figures,
    )


def _scores(model: LoadedModel, frame: pd.DataFrame, dataset: Dataset) -> np.ndarray:
    """``model``'s scores of the split: its own columns by name, where it names them (a
    hosted model does not: the dataset's features, in order, if their number fits)."""
    columns = model.features or dataset.features
    if len(columns) != model.n_features:
        raise ValueError(
            f"the model reads {model.n_features} features, the dataset has {len(columns)}"
        )
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"the validation split has no column {', '.join(missing[:5])}")
    return model.predict(frame[columns].to_numpy(np.float32))
