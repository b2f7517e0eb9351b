"""What a run shows in the Prefect UI: a markdown report, a metrics table and links.

The text is built by plain functions (easy to test and read); ``publish`` turns it into
Prefect artifacts. Artifact keys are fixed per model group, so the Artifacts page keeps each
one's history across runs.
"""

from __future__ import annotations

import re
from typing import Any

from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)

from core.records.jobs import JobStore
from core.records.registry import ModelRegistry, ModelVersion
from core.store import Store
from flows.datasets import Dataset
from flows.figures import png_markdown, training_curve_png

CURVE_ROWS = 10


def curve_markdown(history: dict[str, list[float]], metric: str = "auc") -> list[str]:
    """Per-round train and validation ``metric``, about ten sampled rounds (the numbers under
    the training curve's picture)."""
    names = [n for n in ("train", "validation") if f"{n}_{metric}" in history]
    if not names:
        return ["(no per-round history recorded)"]
    series = {n: history[f"{n}_{metric}"] for n in names}
    rounds = len(next(iter(series.values())))
    step = max(1, rounds // CURVE_ROWS)
    picks = sorted({*range(0, rounds, step), rounds - 1})
    lines = [
        "| round | " + " | ".join(f"{n} {metric}" for n in names) + " |",
        "|---:|" + "---:|" * len(names),
    ]
    lines += [
        f"| {i + 1} | " + " | ".join(f"{series[n][i]:.4f}" for n in names) + " |" for i in picks
    ]
    return lines


def previous_version(registry: ModelRegistry, current: ModelVersion) -> ModelVersion | None:
    """The version to compare with: the latest earlier one evaluated on its test split (so
    that every row compares like with like), else the latest earlier one."""
    earlier = [v for v in registry.versions(current.group) if v < current.version]
    latest = None
    for number in reversed(earlier):  # newest first: usually the first one read will do
        version = registry.get(current.group, number)
        if version.test_metrics:
            return version
        latest = latest or version
    return latest


def metrics_rows(
    current: ModelVersion, previous: ModelVersion | None, test: dict[str, float]
) -> list[dict[str, Any]]:
    """One row per metric: this version, the previous one (its column named after it), and
    the change; the test split's metrics (through the endpoint) beside the previous one's."""
    before_name = f"v{previous.version}" if previous else "previous"
    ours = {**current.metrics, **{f"test_{k} (endpoint)": v for k, v in test.items()}}
    theirs = {}
    if previous is not None:
        theirs = {**previous.metrics}
        theirs |= {f"test_{k} (endpoint)": v for k, v in previous.test_metrics.items()}
    names = sorted(set(current.metrics) | set(previous.metrics if previous else {}))
    names += [n for n in {**ours, **theirs} if n.startswith("test_") and n not in names]
    rows = []
    for name in names:
        now_value, before = ours.get(name), theirs.get(name)
        change = now_value - before if now_value is not None and before is not None else None
        rows.append(
            {
                "metric": name,
                f"v{current.version}": _round(now_value),
                before_name: _round(before),
                "change": _round(change),
            }
        )
    return rows


def artifact_key(group: str) -> str:
    """Artifact keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", group.lower())


def evaluation_markdown(result: dict[str, Any], images: dict[str, bytes]) -> str:
    """The evaluation's figures, and its pictures (``images``: file name → PNG) shown in it."""
    m = result["metrics"]
    pictures = [
        png_markdown(title, images[name])
        for name, title in (
            ("roc.png", "ROC curve"),
            ("precision-recall.png", "precision-recall curve"),
            ("confusion-matrix.png", "confusion matrix"),
        )
        if name in images
    ]
    return "\n".join(
        [
            f"# Evaluation of {result['endpoint_url']}",
            f"{result['rows']} test rows in {result['seconds']:.1f} s "
            f"({result['batch_size']} rows per request).",
            "",
            "| AUC | error rate | precision | recall |",
            "|---|---|---|---|",
            "| "
            + " | ".join(f"{m[k]:.4f}" for k in ("auc", "error_rate", "precision", "recall"))
            + " |",
            "",
            "| | predicted yes | predicted no |",
            "|---|---|---|",
            f"| **actual yes** | {m['true_positives']} | {m['false_negatives']} |",
            f"| **actual no** | {m['false_positives']} | {m['true_negatives']} |",
            "",
            *pictures,
            "",
            f"Kept in the store: `{result['url']}`, and the pictures beside it.",
        ]
    )


def publish_evaluation(store: Store, group: str, result: dict[str, Any]) -> None:
    images = {name: _read(store, url) for name, url in result["plots"].items()}
    create_markdown_artifact(
        key=f"{artifact_key(group)}-evaluation",
        markdown=evaluation_markdown(result, {k: v for k, v in images.items() if v}),
        description="the test split scored through the endpoint, cutoff 0.5",
    )


def _read(store: Store, url: str) -> bytes | None:
    """A picture the evaluation wrote (a missing one is left out, not a failed run)."""
    import fsspec

    try:
        with fsspec.open(url, "rb", **store.storage_options) as f:
            return f.read()
    except OSError:
        return None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def model_markdown(version: ModelVersion) -> str:
    return "\n".join(
        [
            f"# {version.group} version {version.version} ({version.approval_status})",
            f"Model file: `{version.artifact_url}`",
            "",
            f"SHA-256 `{version.artifact_sha256}`, XGBoost's own format (no pickle), "
            f"{len(version.features)} features; its metadata: `{version.metadata_url}`.",
            "",
            f"`skiff models describe {version.version} --group {version.group}` shows it; "
            f"`skiff endpoints deploy NAME {version.version}` serves it.",
        ]
    )


def endpoint_line(summary: dict[str, Any]) -> str:
    url, name = summary.get("endpoint_url"), summary.get("endpoint_name")
    if not url:
        return summary.get("not_deployed", "not deployed (the run stopped before deploy)")
    if summary.get("endpoint_deleted"):
        return f"{name} served this version at {url} and was deleted at the end of the run."
    return f"[{name}]({url}) serves this version: `curl {url}/ping`"


def report_markdown(
    summary: dict[str, Any],
    dataset: Dataset,
    version: ModelVersion,
    previous: ModelVersion | None,
    history: dict[str, list[float]],
    code_version: str,
) -> str:
    rows = metrics_rows(version, previous, summary.get("test_metrics", {}))
    columns = list(rows[0]) if rows else []
    curve = training_curve_png(history)
    lines = [
        f"# {version.group} version {version.version} ({version.approval_status})",
        "",
        f"Training job `{version.job_name}` on the `{summary.get('backend', '?')}` backend, "
        f"code {code_version}.",
        "",
        "## Dataset",
        f"`{dataset.dataset_id}` from {dataset.source} (SHA-256 `{dataset.archive_sha256[:12]}…`), "
        f"{len(dataset.features)} features, options `{dataset.options}`.",
        "",
        "| split | rows | positive rate |",
        "|---|---:|---:|",
        *[f"| {n} | {s.rows} | {s.positive_rate:.4f} |" for n, s in dataset.splits.items()],
        "",
        "## Hyperparameters",
        "| name | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in sorted(version.hyperparameters.items())],
        "",
        "## Training curve",
        *([png_markdown("training curve", curve)] if curve else []),
        "",
        *curve_markdown(history),
        "",
        "## Metrics" + (f", beside version {previous.version}" if previous else ""),
        *(
            [f"(version {previous.version} was not evaluated on its test split.)", ""]
            if previous and not previous.test_metrics
            else []
        ),
        "| " + " | ".join(columns) + " |",
        "|---|" + "---:|" * (len(columns) - 1),
        *["| " + " | ".join(_cell(r[c]) for c in columns) + " |" for r in rows],
        "",
        "## Endpoint",
        endpoint_line(summary),
    ]
    return "\n".join(lines)


def publish(
    summary: dict[str, Any],
    store: Store,
    dataset: Dataset,
    version: ModelVersion,
    code_version: str,
) -> None:
    """Create the run's artifacts: report, metrics table, and links to model and endpoint."""
    registry = ModelRegistry(store)
    previous = previous_version(registry, version)
    manifest = JobStore(store).manifest(version.job_name)
    key = artifact_key(version.group)
    history = manifest.history
    create_markdown_artifact(
        key=f"{key}-report",
        markdown=report_markdown(summary, dataset, version, previous, history, code_version),
        description=f"{version.group} version {version.version}",
    )
    create_table_artifact(
        key=f"{key}-metrics",
        table=metrics_rows(version, previous, summary.get("test_metrics", {})),
        description=f"version {version.version} beside the previous version",
    )
    # A markdown artifact, not a link: a store path or an s3:// URL opens nothing in a browser.
    create_markdown_artifact(
        key=f"{key}-model",
        markdown=model_markdown(version),
        description="the registered model file",
    )
    if summary.get("endpoint_url") and not summary.get("endpoint_deleted"):
        create_link_artifact(
            key=f"{key}-endpoint",
            link=summary["endpoint_url"],
            link_text=summary["endpoint_name"],
            description="the endpoint serving this version",
        )
