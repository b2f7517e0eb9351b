"""What a tuning job shows in the Prefect UI: a table of its trials sorted by objective, and
a picture of the objective against the trial number and against the two hyperparameters
that mattered most. Plain functions build them; ``publish`` makes the artifacts.
"""

from __future__ import annotations

import math
from typing import Any

from core.records.jobs import Status
from core.records.tuning import Trial, TuningRecord, TuningSpec
from flows.figures import figure_png, png_markdown, pyplot


def trial_rows(spec: TuningSpec, record: TuningRecord) -> list[dict[str, Any]]:
    """One row a trial, best objective first (trials without one last, by number)."""
    names = [r.name for r in spec.ranges]
    sign = -1 if spec.objective.maximize else 1

    def order(t: Trial) -> tuple[int, float, int]:
        return (t.objective is None, sign * (t.objective or 0.0), t.number)

    return [
        {
            "trial": t.number,
            "job": t.job_name,
            "status": str(t.status) + (" (early)" if t.early_stopped else ""),
            spec.objective.metric: None if t.objective is None else round(t.objective, 5),
            **{n: _short(t.hyperparameters.get(n)) for n in names},
            "best": "★" if t.number == record.best else "",
        }
        for t in sorted(record.trials, key=order)
    ]


def _short(value: Any) -> Any:
    return float(f"{value:.4g}") if isinstance(value, float) else value


def importance(spec: TuningSpec, record: TuningRecord) -> list[tuple[str, float]]:
    """Each tuned hyperparameter with the share of the objective's variance explained by
    grouping the trials by it (its values, or four bins of its ranks): most important first.
    A plain measure, enough to choose what to plot."""
    done = [t for t in record.trials if t.objective is not None]
    scores = []
    for r in spec.ranges:
        if len(done) < 3:
            scores.append((r.name, 0.0))
            continue
        if r.kind == "categorical":
            groups = [str(t.hyperparameters[r.name]) for t in done]
        else:
            ranked = sorted(done, key=lambda t: float(t.hyperparameters[r.name]))
            groups = [str(4 * ranked.index(t) // len(done)) for t in done]
        scores.append((r.name, _explained([t.objective or 0.0 for t in done], groups)))
    return sorted(scores, key=lambda s: -s[1])


def _explained(values: list[float], groups: list[str]) -> float:
    mean = sum(values) / len(values)
    total = sum((v - mean) ** 2 for v in values)
    if total == 0:
        return 0.0
    between = 0.0
    for g in set(groups):
        members = [v for v, k in zip(values, groups, strict=True) if k == g]
        between += len(members) * (sum(members) / len(members) - mean) ** 2
    return between / total


def picture(spec: TuningSpec, record: TuningRecord) -> bytes:
    """A PNG: the objective by trial (the best so far as a line), and against the two most
    important hyperparameters. Early-stopped trials are crosses at their last value."""
    plt = pyplot()

    metric = spec.objective.metric
    top = [name for name, _ in importance(spec, record)[:2]]
    fig, axes = plt.subplots(1, 1 + len(top), figsize=(4.2 * (1 + len(top)), 3.4), squeeze=False)
    done = [t for t in record.trials if t.objective is not None and not math.isnan(t.objective)]
    full = [t for t in done if t.status == Status.COMPLETED]
    early = [t for t in done if t.early_stopped]
    ax = axes[0][0]
    ax.scatter([t.number for t in full], [t.objective for t in full], label="completed")
    if early:
        ax.scatter([t.number for t in early], [t.objective for t in early], marker="x",
                   label="stopped early")  # fmt: skip
    best, line = None, []
    for t in sorted(full, key=lambda t: t.number):
        if best is None or spec.objective.better(t.objective or 0.0, best):
            best = t.objective
        line.append((t.number, best))
    if line:
        ax.step(*zip(*line, strict=True), where="post", color="black", linewidth=1,
                label="best so far")  # fmt: skip
    ax.set(xlabel="trial", ylabel=metric, title=f"{spec.name}: {spec.strategy}")
    ax.legend(fontsize=7)
    for ax, name in zip(axes[0][1:], top, strict=True):
        xs = [t.hyperparameters[name] for t in full]
        ax.scatter(xs, [t.objective for t in full])
        if any(r.name == name and r.scaling == "Logarithmic" for r in spec.ranges):
            ax.set_xscale("log")
        ax.set(xlabel=name, ylabel=metric)
    return figure_png(fig)


def markdown(spec: TuningSpec, record: TuningRecord) -> str:
    """The tuning job's summary with its picture inline (the UI renders data: images)."""
    counts = ", ".join(f"{n} {k.lower()}" for k, n in record.counts().items() if n)
    lines = [f"# Tuning job {spec.name}: {record.status}", "", counts or "no trials", ""]
    if (best := record.best_trial) is not None:
        lines += [
            f"Best: trial {best.number} (`{best.job_name}`), {spec.objective.metric} "
            f"**{best.objective:.4f}**, "
            + ", ".join(f"`{k}={_short(v)}`" for k, v in best.hyperparameters.items()),
            "",
        ]
    if record.failure_reason:
        lines += [f"Reason: {record.failure_reason}", ""]
    lines.append(png_markdown("objective by trial", picture(spec, record)))
    return "\n".join(lines)


def artifact_key(name: str) -> str:
    """Prefect's keys are lowercase letters, digits and dashes."""
    return f"tuning-{name.lower()}"


def publish(spec: TuningSpec, record: TuningRecord) -> None:
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    key = artifact_key(spec.name)
    create_table_artifact(
        key=f"{key}-trials",
        table=trial_rows(spec, record),
        description=f"{spec.name}: every trial, best {spec.objective.metric} first",
    )
    create_markdown_artifact(
        key=key, markdown=markdown(spec, record), description=f"tuning job {spec.name}"
    )
