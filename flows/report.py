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

SPARK = "▁▂▃▄▅▆▇█"
CURVE_ROWS = 10


def figure_png(fig: Any) -> bytes:
    """A matplotlib figure as PNG bytes (for a markdown artifact's data: image), closed."""
    import io

    from matplotlib import pyplot as plt

    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def sparkline(values: list[float]) -> str:
    if not values:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return "".join(SPARK[round((v - low) / span * (len(SPARK) - 1))] for v in values)


def curve_markdown(history: dict[str, list[float]], metric: str = "auc") -> list[str]:
    """Per-round train and validation ``metric``: a sparkline and about ten sampled rounds."""
    names = [n for n in ("train", "validation") if f"{n}_{metric}" in history]
    if not names:
        return ["(no per-round history recorded)"]
    series = {n: history[f"{n}_{metric}"] for n in names}
    rounds = len(next(iter(series.values())))
    step = max(1, rounds // CURVE_ROWS)
    picks = sorted({*range(0, rounds, step), rounds - 1})
    lines = [f"`{n:<10}` {sparkline(v)}" for n, v in series.items()]
    lines += [
        "",
        "| round | " + " | ".join(f"{n} {metric}" for n in names) + " |",
        "|---:|" + "---:|" * len(names),
    ]
    lines += [
        f"| {i + 1} | " + " | ".join(f"{series[n][i]:.4f}" for n in names) + " |" for i in picks
    ]
    return lines


def previous_version(registry: ModelRegistry, current: ModelVersion) -> ModelVersion | None:
    earlier = [v for v in registry.versions(current.group) if v < current.version]
    return registry.get(current.group, earlier[-1]) if earlier else None


def metrics_rows(
    current: ModelVersion, previous: ModelVersion | None, test: dict[str, float]
) -> list[dict[str, Any]]:
    """One row per metric: this version, the previous one, and the change."""
    rows = []
    for name in sorted(set(current.metrics) | set(previous.metrics if previous else {})):
        now_value = current.metrics.get(name)
        before = previous.metrics.get(name) if previous else None
        rows.append(
            {
                "metric": name,
                f"v{current.version}": _round(now_value),
                "previous": _round(before),
                "change": _round(now_value - before)
                if now_value is not None and before is not None
                else None,
            }
        )
    rows += [
        {
            "metric": f"test_{k} (endpoint)",
            f"v{current.version}": _round(v),
            "previous": None,
            "change": None,
        }
        for k, v in test.items()
    ]
    return rows


def artifact_key(group: str) -> str:
    """Artifact keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", group.lower())


def evaluation_markdown(result: dict[str, Any]) -> str:
    m = result["metrics"]
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
            f"Plots: {result['plots']['roc.png']}, {result['plots']['precision-recall.png']}",
            f"Details: {result['url']}",
        ]
    )


def publish_evaluation(group: str, result: dict[str, Any]) -> None:
    create_markdown_artifact(
        key=f"{artifact_key(group)}-evaluation",
        markdown=evaluation_markdown(result),
        description="the test split scored through the endpoint, cutoff 0.5",
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


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
        *curve_markdown(history),
        "",
        "## Metrics" + (f", beside version {previous.version}" if previous else ""),
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
    create_link_artifact(
        key=f"{key}-model",
        link=version.artifact_url,
        link_text=f"{version.group} v{version.version} ({version.artifact_sha256[:12]})",
        description="the registered model file",
    )
    if summary.get("endpoint_url") and not summary.get("endpoint_deleted"):
        create_link_artifact(
            key=f"{key}-endpoint",
            link=summary["endpoint_url"],
            link_text=summary["endpoint_name"],
            description="the endpoint serving this version",
        )
