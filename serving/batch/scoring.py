"""One batch of records → the text of its output: read the rows as the endpoint reads a body
(the same parser, the same rules), apply the InputFilter, predict, format the scores as the
endpoint answers them, join them to their input and apply the OutputFilter where asked.

A row that cannot be read is named by object and line: it fails the job, or, where the job
says to skip bad rows, is counted and left out of the output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from core.errors import BadRequest, TransformError
from core.records.transforms import CSV, JSON_LINES, Histogram, TransformJob
from serving.batch.jsonpath import JsonPath
from serving.batch.reading import Batch
from serving.dataplane.answers import csv_scores
from serving.dataplane.loading import LoadedModel
from serving.dataplane.parsing import parse_csv, parse_json

EXAMPLES = 10  # bad rows named in the job's record (all are counted)
JOINED = "SageMakerOutput"  # the member a joined JSON object's output is put in


class BadRow(TransformError):
    """A record that cannot be read: its object, its line, what is wrong."""

    def __init__(self, url: str, line: int, problem: str):
        self.url, self.line, self.problem = url, line, problem
        super().__init__(f"{url}, line {line}: {problem}")

    def __reduce__(self) -> tuple[type[BadRow], tuple[str, int, str]]:
        return BadRow, (self.url, self.line, self.problem)  # from a Dask worker, whole

    def shifted(self, lines: int) -> BadRow:
        """The same row, numbered in its object rather than in a block ``lines`` lines in."""
        return BadRow(self.url, self.line + lines, self.problem)


@dataclass
class Layout:
    """How one object's records become the model's rows: CSV's width, and the columns taken
    (by the InputFilter, or by the header's names); Parquet's columns by name."""

    width: int = 0
    columns: list[int] | None = None
    names: list[str] | None = None


@dataclass
class Scored:
    text: bytes
    rows: int
    scores: np.ndarray
    bad: int = 0
    examples: list[BadRow] = field(default_factory=list)


class Scorer:
    """Scores batches of one job with one loaded model."""

    def __init__(self, spec: TransformJob, model: LoadedModel):
        self.spec, self.model = spec, model
        self.input_filter = JsonPath(spec.input_filter) if spec.input_filter else None
        self.output_filter = JsonPath(spec.output_filter) if spec.output_filter else None
        self.joined = spec.join_source == "Input"

    # -- planning an object -----------------------------------------------------------------
    def csv_layout(self, url: str, first_line: bytes, header: list[str] | None) -> Layout:
        """The layout of a CSV object from its first data line (and header, if it has one).

        Raises:
            TransformError: the rows, filtered, are not as wide as the model's input.
        """
        width = first_line.count(b",") + 1
        columns = self.input_filter.columns(width) if self.input_filter else None
        if self.input_filter and columns is None:
            raise TransformError(
                f"InputFilter {self.input_filter.text!r} does not pick columns of a CSV row "
                "(use $[i], $[i,j] or $[a:b])"
            )
        wanted = self.model.features
        named = columns is None and header and wanted and set(wanted) <= set(header)
        if named and header != wanted:  # the model's columns by name, in its order
            columns = [header.index(name) for name in wanted]
        taken = len(columns) if columns is not None else width
        if taken != self.model.n_features:
            how = f" after InputFilter {self.input_filter.text!r}" if self.input_filter else ""
            raise TransformError(
                f"{url}: rows have {width} fields, {taken}{how}; the model takes "
                f"{self.model.n_features} features"
            )
        if columns == list(range(width)):
            columns = None
        return Layout(width=width, columns=columns)

    def parquet_layout(self, url: str, names: list[str]) -> Layout:
        """The columns of a Parquet object to read: the model's by name where it names them
        all, else those the InputFilter picks, else all."""
        wanted = self.model.features
        if self.input_filter is None and wanted and set(wanted) <= set(names):
            chosen = list(wanted)
        else:
            picked = self.input_filter.columns(len(names)) if self.input_filter else None
            chosen = [names[i] for i in picked] if picked is not None else names
        if len(chosen) != self.model.n_features:
            raise TransformError(
                f"{url}: {len(chosen)} columns to read ({', '.join(chosen[:5])}...); the "
                f"model takes {self.model.n_features} features"
            )
        return Layout(names=chosen)

    # -- scoring a batch --------------------------------------------------------------------
    def score(self, batch: Batch, layout: Layout, url: str) -> Scored:
        bad: list[BadRow] = []
        if self.spec.content_type == CSV:
            rows, records = self._csv_rows(batch, layout, url, bad)
        elif self.spec.content_type == JSON_LINES:
            rows, records = self._json_rows(batch, url, bad)
        else:
            rows, records = self._parquet_rows(batch, url), None
        scores = self.model.predict(rows) if len(rows) else np.empty(0)
        text = self._output(scores, records)
        return Scored(text.encode(), len(rows), scores, len(bad), bad[:EXAMPLES])

    def _bad(self, url: str, line: int, problem: str, bad: list[BadRow]) -> None:
        row = BadRow(url, line, problem)
        if not self.spec.skip_bad_rows:
            raise row
        bad.append(row)

    def _csv_rows(
        self, batch: Batch, layout: Layout, url: str, bad: list[BadRow]
    ) -> tuple[np.ndarray, list[str] | None]:
        data: bytes = batch.data
        try:
            values = parse_csv(data, layout.width)
            lines = _lines(data) if self.joined else None
        except BadRequest:  # name the row at fault: read line by line
            values, lines = self._csv_line_by_line(batch, layout, url, bad)
        if layout.columns is not None:
            values = np.ascontiguousarray(values[:, layout.columns])
        return values, lines

    def _csv_line_by_line(
        self, batch: Batch, layout: Layout, url: str, bad: list[BadRow]
    ) -> tuple[np.ndarray, list[str]]:
        rows, kept = [], []
        for offset, line in enumerate(_lines(batch.data, keep_blank=True)):
            if not line.strip():
                continue  # a blank line is no record
            try:
                rows.append(parse_csv(line.encode(), layout.width)[0])
                kept.append(line)
            except BadRequest as exc:
                problem = str(exc).removeprefix("row 1: ").removeprefix("row 1, ")
                self._bad(url, batch.first_line + offset, problem, bad)
        values = np.array(rows, dtype=np.float32).reshape(len(rows), layout.width)
        return values, kept

    def _json_rows(self, batch: Batch, url: str, bad: list[BadRow]) -> tuple[np.ndarray, list[Any]]:
        records, instances = [], []
        for offset, line in enumerate(_lines(batch.data, keep_blank=True)):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
                instance = self.input_filter.apply(record) if self.input_filter else record
                parse_json(orjson.dumps([instance]), self.model.n_features, self.model.schema)
            except (orjson.JSONDecodeError, BadRequest, TransformError) as exc:
                problem = f"invalid JSON: {exc}" if isinstance(exc, ValueError) else str(exc)
                self._bad(url, batch.first_line + offset, problem.removeprefix("row 1: "), bad)
                continue
            records.append(record)
            instances.append(instance)
        if not instances:
            return np.empty((0, self.model.n_features), dtype=np.float32), records
        rows = parse_json(orjson.dumps(instances), self.model.n_features, self.model.schema)
        return rows, records

    def _parquet_rows(self, batch: Batch, url: str) -> np.ndarray:
        import pyarrow as pa

        columns = []
        for name, column in zip(batch.data.schema.names, batch.data.columns, strict=True):
            if not (
                pa.types.is_integer(column.type)
                or pa.types.is_floating(column.type)
                or pa.types.is_boolean(column.type)
            ):
                raise TransformError(
                    f"{url}: column {name!r} is {column.type}, not numbers (rows from "
                    f"{batch.first_line})"
                )
            columns.append(column.to_numpy(zero_copy_only=False).astype(np.float32))
        values = np.column_stack(columns) if columns else np.empty((batch.data.num_rows, 0))
        if not np.isfinite(values[~np.isnan(values)]).all():
            raise TransformError(f"{url}: a value beyond float32 in rows from {batch.first_line}")
        return np.ascontiguousarray(values, dtype=np.float32)

    # -- the output -------------------------------------------------------------------------
    def _output(self, scores: np.ndarray, records: list[Any] | None) -> str:
        if not len(scores):
            return ""
        if self.spec.accept == CSV and not (self.joined or self.output_filter):
            text = csv_scores(scores, self.model.csv_separator)
            if not text.endswith("\n") and self.spec.assemble_with == "Line":
                text += "\n"  # an older image's one line of commas: a line per batch
            return text
        if self.spec.accept == CSV:
            return self._csv_records(scores, records)
        return self._json_records(scores, records)

    def _csv_records(self, scores: np.ndarray, lines: list[str] | None) -> str:
        shown = csv_scores(scores).split("\n")
        out = []
        for i, score in enumerate(shown[: len(scores)]):
            fields = (lines[i].split(",") if self.joined and lines else []) + [score]
            if self.output_filter:
                picked = self.output_filter.apply(fields)
                fields = picked if isinstance(picked, list) else [picked]
            out.append(",".join(fields))
        return "\n".join(out) + "\n"

    def _json_records(self, scores: np.ndarray, records: list[Any] | None) -> str:
        out = []
        for i, score in enumerate(scores.tolist()):
            output: Any = {"score": score}
            if self.joined and records is not None:
                record = records[i]
                if isinstance(record, dict):
                    output = record | {JOINED: output}
                elif isinstance(record, list):
                    output = [*record, output]
                else:
                    output = [record, output]
            if self.output_filter:
                output = self.output_filter.apply(output)
            out.append(orjson.dumps(output).decode())
        return "\n".join(out) + "\n"


def _lines(data: bytes, keep_blank: bool = False) -> list[str]:
    """The lines of ``data``, without their line ends; trailing blank ones dropped (blank
    lines inside kept where ``keep_blank``, so offsets stay line numbers)."""
    lines = [line.rstrip("\r") for line in data.decode("utf-8", "replace").split("\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    return lines if keep_blank else [line for line in lines if line.strip()]


def add_to_histogram(histogram: Histogram, scores: np.ndarray) -> None:
    """Count ``scores`` into ``histogram`` (in place)."""
    if not len(scores):
        return
    counts, _ = np.histogram(
        scores, bins=len(histogram.counts), range=(histogram.low, histogram.high)
    )
    histogram.counts = [a + int(b) for a, b in zip(histogram.counts, counts, strict=True)]
    histogram.below += int((scores < histogram.low).sum())
    histogram.above += int((scores > histogram.high).sum())
