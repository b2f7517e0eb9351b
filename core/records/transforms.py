"""Batch transform jobs as stored records: score a whole data set with a model, no endpoint.

Layout under the store root (a training job's rules, ``core.records.jobs``, in a folder of
their own)::

    transforms/<name>/job.json         the spec, claimed (so names are unique)
    transforms/<name>/status.json      status, transitions, rows, bad rows, rows/s, outputs
    transforms/<name>/log.txt          its log
    transforms/<name>/heartbeat.json   when its runner last said it is alive
    transforms/<name>/stop-requested   present once someone asked it to stop

The outputs themselves go where the spec says (``output_url``), one object per input object,
named as SageMaker names them (``<input name>.out``); the status lists them only once every
one is complete.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.clock import now
from core.names import JobName
from core.records.jobs import JobResources, JobStatus, JobStore

# Input formats, by SageMaker's content types (and Parquet, which SageMaker has not).
CSV = "text/csv"
JSON_LINES = "application/jsonlines"
PARQUET = "application/x-parquet"
CONTENT_TYPES = (CSV, JSON_LINES, PARQUET)
ACCEPTS = (CSV, JSON_LINES)
_ALIASES = {"csv": CSV, "text/plain": CSV, "application/json": JSON_LINES, "jsonl": JSON_LINES}
_ALIASES |= {"application/x-jsonlines": JSON_LINES, "parquet": PARQUET}
_ALIASES |= {"application/parquet": PARQUET, "application/vnd.apache.parquet": PARQUET}


def content_type_of(given: str | None, url: str = "") -> str | None:
    """A content type as Skiff names it: SageMaker's, an alias of one, or read from the file
    name (``.csv``, ``.jsonl``, ``.parquet``); None when neither says."""
    if given:
        kind = given.split(";")[0].strip().lower()
        return kind if kind in CONTENT_TYPES else _ALIASES.get(kind, kind)
    for suffix, kind in ((".csv", CSV), (".jsonl", JSON_LINES), (".parquet", PARQUET)):
        if url.lower().removesuffix("/").endswith(suffix):
            return kind
    return None


class TransformJob(BaseModel):
    """What to score, with which model, where to write, and SageMaker's options.

    The model is a registered version (``model_group`` and ``model_version``) or a hosted
    model (``model``: what SageMaker's CreateModel made). ``input_url`` is one object or a
    prefix (every object under it, in name order); ``output_url`` a prefix.
    """

    model_config = ConfigDict(extra="forbid")

    name: JobName
    model_group: str | None = None
    model_version: int | None = Field(None, ge=1)
    model: str | None = None
    input_url: str
    output_url: str
    content_type: Literal["text/csv", "application/jsonlines", "application/x-parquet"] = CSV
    header: bool = Field(False, description="CSV: each object's first line names its columns")
    split_type: Literal["Line", "None"] = "Line"
    batch_strategy: Literal["MultiRecord", "SingleRecord"] = "MultiRecord"
    max_payload_mb: int = Field(6, ge=1, le=100, description="the most bytes of one batch, MB")
    accept: Literal["text/csv", "application/jsonlines"] = CSV
    assemble_with: Literal["Line", "None"] = "Line"
    input_filter: str | None = None  # DataProcessing's JSONPath subset (serving.batch.jsonpath)
    join_source: Literal["None", "Input"] = "None"
    output_filter: str | None = None
    skip_bad_rows: bool = Field(False, description="count and skip rows that cannot be read")
    backend: str = "local"
    resources: JobResources = Field(default_factory=JobResources)
    max_runtime_seconds: float = Field(86400, gt=0)
    request: dict[str, Any] | None = None  # the CreateTransformJob request, as given
    created_at: str = Field(default_factory=now)

    @model_validator(mode="after")
    def _one_model(self) -> TransformJob:
        registered = self.model_group is not None and self.model_version is not None
        if registered == (self.model is not None):
            raise ValueError(
                "a transform job needs a registered version (model_group and model_version) "
                "or a hosted model (model), not both"
            )
        if self.content_type == PARQUET and (self.header or self.split_type == "None"):
            raise ValueError("Parquet input is read by row groups: no header or SplitType")
        return self

    @property
    def source(self) -> str:
        """For people: ``bank-marketing:3`` or ``model xgb-demo``."""
        return f"model {self.model}" if self.model else f"{self.model_group}:{self.model_version}"

    def max_payload_bytes(self) -> int:
        return self.max_payload_mb * 1024 * 1024


class Histogram(BaseModel):
    """Scores counted in equal bins over [low, high]; those outside counted apart."""

    low: float = 0.0
    high: float = 1.0
    counts: list[int] = Field(default_factory=lambda: [0] * 20)
    below: int = 0
    above: int = 0


class TransformStatus(JobStatus):
    """A transform job's status: a training job's, and what it has scored so far."""

    objects: int = 0  # input objects in all
    objects_done: int = 0
    rows: int = 0  # rows scored
    bad_rows: int = 0  # rows skipped (skip_bad_rows), each counted
    bad_row_examples: list[str] = Field(default_factory=list)  # the first few, named
    rows_per_second: float = 0.0
    outputs: list[str] = Field(default_factory=list)  # only once every one is complete
    histogram: Histogram = Field(default_factory=Histogram)


class TransformStore(JobStore):
    """Reads and writes transform job records in a store."""

    FOLDER = "transforms"
    KIND = "transform job"
    Spec = TransformJob
    StatusModel = TransformStatus

    def spec(self, name: str) -> TransformJob:
        return super().spec(name)

    def status(self, name: str) -> TransformStatus:
        return super().status(name)
