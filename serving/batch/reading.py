"""A transform job's input: its objects, and each object cut into batches of whole records.

Line-split input (CSV, JSON lines) is read ``max_payload`` bytes at a time and cut at the last
line end, so memory holds a few batches whatever the object's size; each batch knows the
line number of its first record, so a bad row is named by object and line. Parquet is read a
row group's slice at a time. ``SplitType None`` makes the whole object one record.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import fsspec

from core.errors import TransformError
from core.records.transforms import PARQUET, TransformJob

PARQUET_ROWS = 65_536  # rows of one Parquet batch


@dataclass
class Batch:
    """Records of one object: ``data`` is bytes of whole lines (or an Arrow record batch);
    ``first_line`` the object's line number of its first record (Parquet: its row)."""

    number: int
    first_line: int
    data: Any


def list_inputs(url: str, storage_options: dict[str, Any]) -> list[str]:
    """The input objects: ``url`` itself if it is one, else every object under it, in name
    order (hidden names and folders skipped).

    Raises:
        TransformError: nothing is there, or it cannot be reached (naming the URL and why).
    """
    try:
        fs, path = fsspec.core.url_to_fs(url, **storage_options)
        if fs.isfile(path):
            return [url]
        found = sorted(p for p in fs.find(path) if not p.rsplit("/", 1)[-1].startswith((".", "_")))
    except (OSError, ValueError, ImportError) as exc:
        raise TransformError(f"cannot read the input {url}: {exc}") from None
    if not found:
        raise TransformError(f"no input objects at {url}")
    return [fs.unstrip_protocol(p) if not _is_local(fs) else p for p in found]


def _is_local(fs: Any) -> bool:
    return "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))


def output_name(input_url: str, input_root: str) -> str:
    """SageMaker's name for an object's output: its path under the input prefix, plus
    ``.out`` (an input that is one object: its name plus ``.out``)."""
    base = input_root.rstrip("/")
    tail = input_url.split("://", 1)[-1]
    root = base.split("://", 1)[-1]
    relative = tail[len(root) :].lstrip("/") if tail.startswith(root + "/") else ""
    return (relative or tail.rsplit("/", 1)[-1]) + ".out"


def read_header(f: BinaryIO, url: str) -> list[str]:
    """The first line of a CSV object (its column names), read from ``f``'s start."""
    line = f.readline()
    if not line:
        raise TransformError(f"{url}: empty, but the job says its first line is a header")
    return [n.strip().strip('"') for n in line.decode("utf-8", "replace").rstrip("\r\n").split(",")]


def line_batches(f: BinaryIO, url: str, spec: TransformJob, first_line: int = 1) -> Iterator[Batch]:
    """Batches of whole lines of at most MaxPayloadInMB (SingleRecord: one line each; SplitType
    None: the whole object), from ``f``'s position on.

    Raises:
        TransformError: one record is larger than MaxPayloadInMB (naming its line).
    """
    limit = spec.max_payload_bytes()
    if spec.split_type == "None":
        data = f.read(limit + 1)
        if len(data) > limit:
            raise TransformError(
                f"{url}: the object is one record (SplitType None) larger than "
                f"MaxPayloadInMB {spec.max_payload_mb}"
            )
        if data.strip():
            yield Batch(0, first_line, data)
        return
    number, line, carry = 0, first_line, b""
    while True:
        chunk = f.read(limit - len(carry))
        buffer = carry + chunk
        if not chunk:  # the end: what is left is the last line, without its line end
            if buffer.strip():
                yield from _split(Batch(number, line, buffer), spec)
            return
        end = buffer.rfind(b"\n")
        if end < 0:
            if len(buffer) >= limit:
                raise TransformError(
                    f"{url}, line {line}: the record is larger than MaxPayloadInMB "
                    f"{spec.max_payload_mb}"
                )
            carry = buffer
            continue
        block, carry = buffer[: end + 1], buffer[end + 1 :]
        yield from _split(Batch(number, line, block), spec)
        number += 1
        line += block.count(b"\n")


def _split(batch: Batch, spec: TransformJob) -> Iterator[Batch]:
    if spec.batch_strategy == "MultiRecord":
        yield batch
        return
    for offset, record in enumerate(batch.data.splitlines(keepends=True)):
        yield Batch(batch.number, batch.first_line + offset, record)


def parquet_batches(f: BinaryIO, url: str, columns: list[str] | None) -> Iterator[Batch]:
    """Batches of at most ``PARQUET_ROWS`` rows of ``columns`` (None: all)."""
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(f)
    except Exception as exc:  # pyarrow's errors are several types
        raise TransformError(f"{url} is not a Parquet file: {exc}") from None
    row = 1
    for number, batch in enumerate(parquet.iter_batches(PARQUET_ROWS, columns=columns)):
        yield Batch(number, row, batch)
        row += batch.num_rows


def table_batches(table: Any) -> Iterator[Batch]:
    """An Arrow table (a Parquet row group) in batches of at most ``PARQUET_ROWS`` rows."""
    row = 1
    for number, batch in enumerate(table.to_batches(PARQUET_ROWS)):
        yield Batch(number, row, batch)
        row += batch.num_rows


def parquet_columns(f: BinaryIO, url: str) -> list[str]:
    import pyarrow.parquet as pq

    try:
        return list(pq.ParquetFile(f).schema_arrow.names)
    except Exception as exc:
        raise TransformError(f"{url} is not a Parquet file: {exc}") from None


def is_parquet(spec: TransformJob) -> bool:
    return spec.content_type == PARQUET
