"""What a transform job shows in the Prefect UI: its figures (rows, rows/s, bad rows, outputs)
and a histogram of its scores as a picture, in one markdown artifact."""

from __future__ import annotations

from core.records.transforms import TransformJob, TransformStatus
from flows.figures import figure_png, png_markdown, pyplot


def picture(status: TransformStatus) -> bytes:
    """A PNG: how many scores fell in each bin."""
    plt = pyplot()

    h = status.histogram
    width = (h.high - h.low) / len(h.counts)
    edges = [h.low + i * width for i in range(len(h.counts))]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.bar(edges, h.counts, width=width, align="edge", edgecolor="white")
    ax.set(xlabel="score", ylabel="rows", title=f"{status.name}: scores of {status.rows:,} rows")
    return figure_png(fig)


def markdown(spec: TransformJob, status: TransformStatus) -> str:
    elapsed = status.rows / status.rows_per_second if status.rows_per_second else 0.0
    lines = [
        f"# Transform job {status.name}: {status.status}",
        "",
        f"Model {spec.source}, input `{spec.input_url}`, on the {spec.backend} backend.",
        "",
        "| rows | rows/s | seconds | bad rows skipped | objects |",
        "|---:|---:|---:|---:|---:|",
        f"| {status.rows:,} | {status.rows_per_second:,.0f} | {elapsed:.1f} | "
        f"{status.bad_rows:,} | {status.objects_done}/{status.objects} |",
        "",
    ]
    if status.failure_reason:
        lines += [f"**{status.failure_reason}**", ""]
    lines += [f"- `{url}`" for url in status.outputs]
    lines += [f"- skipped: {example}" for example in status.bad_row_examples]
    h = status.histogram
    if status.rows:
        outside = (
            f" ({h.below:,} below {h.low:g}, {h.above:,} above {h.high:g})"
            if (h.below or h.above)
            else ""
        )
        lines += ["", f"Scores{outside}:", "", png_markdown("scores", picture(status))]
    return "\n".join(lines)


def artifact_key(name: str) -> str:
    """Prefect's artifact keys: lower-case letters, digits and dashes."""
    return f"transform-{name.lower()}"
