"""Checks of a transform job's options that need no data and no model (light: the command
line makes them without loading the scoring stack)."""

from __future__ import annotations

from core.errors import TransformError
from core.records.transforms import CSV, JSON_LINES, TransformJob
from serving.batch.jsonpath import JsonPath


def check_options(spec: TransformJob) -> None:
    """Refuse, naming them, options that cannot go together.

    Raises:
        TransformError: a filter outside the subset, a join across formats.
    """
    for path in (spec.input_filter, spec.output_filter):
        if path:
            JsonPath(path)
    if spec.join_source == "Input":
        if spec.content_type not in (CSV, JSON_LINES):
            raise TransformError("JoinSource Input needs CSV or JSON lines input, not Parquet")
        if spec.content_type != spec.accept:
            raise TransformError(
                f"JoinSource Input joins each output to its input record: the input "
                f"({spec.content_type}) and Accept ({spec.accept}) must be the same format"
            )
