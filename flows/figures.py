"""Pictures for the Prefect UI: matplotlib figures as PNG, shown inside a markdown artifact as
``data:`` images (Prefect's UI renders them there; a file path or an ``s3://`` URL would not
load in a browser, and ``create_image_artifact`` prints a data URI whole as its link text)."""

from __future__ import annotations

import base64
import io
from typing import Any


def pyplot() -> Any:
    """matplotlib's pyplot, drawing to memory (no display)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def figure_png(fig: Any) -> bytes:
    """A matplotlib figure as PNG bytes, closed."""
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    pyplot().close(fig)
    return buffer.getvalue()


def png_markdown(alt: str, png: bytes) -> str:
    """A PNG as a markdown image the UI shows."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def training_curve_png(history: dict[str, list[float]], metric: str = "auc") -> bytes | None:
    """Train and validation ``metric`` by round, with axes and a legend (None: no history)."""
    series = {
        n: history[f"{n}_{metric}"] for n in ("train", "validation") if f"{n}_{metric}" in history
    }
    if not series:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for name, values in series.items():
        ax.plot(range(1, len(values) + 1), values, label=name, lw=2)
    best = series.get("validation")
    if best:
        at = max(range(len(best)), key=best.__getitem__)
        ax.axvline(at + 1, ls=":", c="grey", lw=1, label=f"best validation (round {at + 1})")
    ax.set(
        xlabel="round", ylabel=metric.upper(), title=f"Training curve: {metric.upper()} by round"
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return figure_png(fig)


def confusion_matrix_png(metrics: dict[str, Any], cutoff: float) -> bytes:
    """The test split's confusion matrix at ``cutoff``: counts and shares of each cell."""
    plt = pyplot()
    cells = [
        [metrics["true_positives"], metrics["false_negatives"]],
        [metrics["false_positives"], metrics["true_negatives"]],
    ]
    total, largest = sum(map(sum, cells)) or 1, max(map(max, cells))
    fig, ax = plt.subplots(figsize=(4.6, 4))
    ax.imshow(cells, cmap="Blues")
    for i, row in enumerate(cells):
        for j, count in enumerate(row):
            dark = count > largest / 2
            ax.text(j, i, f"{count}\n{count / total:.1%}", ha="center", va="center",
                    color="white" if dark else "black", fontsize=11)  # fmt: skip
    ax.set_xticks([0, 1], ["yes", "no"])
    ax.set_yticks([0, 1], ["yes", "no"])
    ax.set(xlabel="predicted", ylabel="actual", title=f"Confusion matrix (cutoff {cutoff:g})")
    return figure_png(fig)
