"""What a run's report says, built from real registry records (no Prefect server needed)."""

from __future__ import annotations

from core.records.registry import Approval, ModelRegistry, ModelVersion
from core.store import Store
from flows import report


def version(metrics: dict[str, float]) -> ModelVersion:
    return ModelVersion(
        group="g", version=0, artifact_url="file:///m.ubj", artifact_sha256="0" * 64,
        metadata_url="", predictor="xgboost", algorithm="xgboost", hyperparameters={},
        metrics=metrics, job_name="j", features=["x"],
    )  # fmt: skip


def test_the_report_compares_like_with_like_and_names_the_version(tmp_path):
    """Issue 23, item 4: test metrics beside the previous version's test metrics, with the
    version named; the one compared with is the latest evaluated one."""
    store = Store(str(tmp_path))
    store.ensure_layout()
    registry = ModelRegistry(store)
    for auc in (0.80, 0.81, 0.82):
        registry.add(version({"validation_auc": auc}), Approval.APPROVED)
    registry.record_evaluation("g", 1, {"auc": 0.79, "error_rate": 0.10})
    current = registry.get("g", 3)
    previous = report.previous_version(registry, current)
    assert previous.version == 1  # version 2 was never evaluated: 1 is, so 1 compares
    rows = {r["metric"]: r for r in report.metrics_rows(current, previous, {"auc": 0.80})}
    assert rows["test_auc (endpoint)"] == {
        "metric": "test_auc (endpoint)", "v3": 0.8, "v1": 0.79, "change": 0.01,
    }  # fmt: skip
    assert rows["validation_auc"]["v1"] == 0.8 and rows["validation_auc"]["change"] == 0.02
    assert rows["test_error_rate (endpoint)"]["v3"] is None  # asked of v1 only: no change
    never = report.previous_version(registry, registry.get("g", 2))
    assert never.version == 1 and report.previous_version(registry, registry.get("g", 1)) is None
