"""Reading a job's channels in SageMaker's formats: CSV (no header, the label first), libsvm,
and Parquet, from one object or every object under a prefix, over any fsspec URL.

SageMaker's built-in XGBoost reads its channels this way; Skiff's own datasets (Parquet with
named columns, a schema beside them) are read by the runner directly. Data without a header
gets XGBoost's own feature names, ``f0..fN``; its label column is ``label``.
"""

from __future__ import annotations

import io
from typing import Any

import fsspec
import numpy as np
import pandas as pd

from algorithms.base import TrainingData
from core.errors import SchemaError
from core.records.jobs import TrainingJob
from core.store import Store

LABEL = "label"
# SageMaker's content types → the format read. An absent content type is libsvm, as there.
FORMATS = {
    "csv": "csv",
    "text/csv": "csv",
    "text/csv;label_size=1": "csv",
    "libsvm": "libsvm",
    "text/libsvm": "libsvm",
    "text/x-libsvm": "libsvm",
    "application/x-parquet": "parquet",
    "parquet": "parquet",
}
DEFAULT_CONTENT_TYPE = "text/libsvm"


def channel_format(content_type: str | None) -> str:
    """The format of a channel of ``content_type`` (``csv``, ``libsvm`` or ``parquet``).

    Raises:
        SchemaError: a content type Skiff cannot read, named with those it can.
    """
    given = (content_type or DEFAULT_CONTENT_TYPE).replace(" ", "").lower()
    if given in FORMATS:
        return FORMATS[given]
    hint = ""
    if "recordio" in given:
        hint = " (RecordIO-protobuf is not supported: convert the data to CSV, libsvm or Parquet)"
    elif given.startswith("text/csv;label_size="):
        hint = " (only label_size=1 is supported: one label column, first)"
    raise SchemaError(
        f"unsupported ContentType {content_type!r}{hint}; supported: {', '.join(FORMATS)}"
    )


def channel_files(url: str, storage_options: dict[str, Any] | None = None) -> tuple[Any, list]:
    """The file system and the objects of a channel: ``url`` itself when it is one object,
    else every object whose key starts with it (SageMaker's S3Prefix), hidden ones (``.x``,
    ``_SUCCESS``) left out, in key order.

    Raises:
        SchemaError: nothing is there.
    """
    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    if fs.isfile(path):
        return fs, [path]
    stem = path.rstrip("/")
    if url.endswith("/"):  # a folder: what is under it
        found = fs.find(stem)
    else:  # a key prefix, as on S3: s3://b/data/train matches train-1.csv and train/x.csv
        found = []
        for match in fs.glob(glob_escape(stem) + "*"):
            found += fs.find(match) if fs.isdir(match) else [match]
    files = sorted(p for p in found if not p.rpartition("/")[2].startswith((".", "_")))
    if not files:
        raise SchemaError(f"no data at {url}")
    return fs, files


def glob_escape(path: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in path)


def read_channel(
    name: str,
    url: str,
    content_type: str | None,
    storage_options: dict[str, Any] | None = None,
    like: tuple[str, list[str]] | None = None,
) -> pd.DataFrame:
    """The channel as one frame: a ``label`` column (Parquet: its own label column) and the
    features. ``like`` (the train channel's label and features) fixes the columns of the
    other channels.

    Raises:
        SchemaError: naming the channel, the object and what is wrong with it.
    """
    fmt = channel_format(content_type)
    try:
        fs, files = channel_files(url, storage_options)
    except SchemaError as exc:
        raise SchemaError(f"channel {name!r}: {exc}") from None
    except (OSError, ValueError) as exc:  # no such bucket, no access, a malformed URL
        raise SchemaError(f"channel {name!r}: cannot read {url}: {exc}") from None
    frames = []
    for path in files:
        where = f"channel {name!r}: {fs.unstrip_protocol(path)}"
        data = fs.cat_file(path)
        if not data.strip():
            continue  # an empty part, as Spark writes
        frame = {"csv": _csv, "libsvm": _libsvm, "parquet": _parquet}[fmt](data, where)
        if frames and fmt == "csv" and frame.shape[1] != frames[0].shape[1]:
            raise SchemaError(
                f"{where} has {frame.shape[1]} columns, the channel's first object "
                f"{frames[0].shape[1]}: every row is the label and the same features"
            )
        frames.append(frame)
    if not frames:
        raise SchemaError(f"channel {name!r} has no rows at {url}")
    whole = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if fmt == "libsvm":  # rows name their highest index: the channel's width is the widest
        whole = whole.reindex(columns=[LABEL, *_feature_names(whole)])
    return _fit(whole, name, fmt, *like) if like is not None else whole


def read_job_channels(spec: TrainingJob, store: Store) -> dict[str, pd.DataFrame]:
    """A job's channels, read: Skiff's datasets as Parquet, SageMaker's in their format (the
    train channel first: the others take its columns)."""
    options = None if store.is_local else store.storage_options
    frames: dict[str, pd.DataFrame] = {}
    like = None
    for name in sorted(spec.channels, key=lambda n: n != "train"):
        url = spec.channels[name]
        if name not in spec.content_types:
            frames[name] = pd.read_parquet(url, storage_options=options)
            continue
        frames[name] = read_channel(name, url, spec.content_types[name], options, like)
        if name == "train":
            label = label_of(frames[name])
            like = (label, [c for c in frames[name].columns if c != label])
    return frames


def training_data(spec: TrainingJob, frames: dict[str, Any]) -> TrainingData:
    """A job's channels, read (pandas or Dask frames), as an algorithm takes them. A job
    whose data names its own columns (SageMaker's formats: ``spec.features`` empty) takes
    them from its train channel."""
    label, features = spec.label, spec.features
    if not features:
        train = frames["train"]
        label = label_of(train)
        features = [str(c) for c in train.columns if c != label]
    return TrainingData(
        train=frames["train"],
        validation=frames.get("validation"),
        label=label,
        features=features,
        test=frames.get("test"),
    )


def label_of(frame: pd.DataFrame) -> str:
    """The label column of a frame ``read_channel`` returned."""
    return LABEL if LABEL in frame.columns else str(frame.columns[0])


def _feature_names(frame: pd.DataFrame) -> list[str]:
    width = max((int(c[1:]) + 1 for c in frame.columns if c != LABEL), default=0)
    return [f"f{i}" for i in range(width)]


def _fit(frame: pd.DataFrame, name: str, fmt: str, label: str, features: list[str]):
    """The frame with the train channel's columns, in its order, its label named ``label``."""
    own = label_of(frame)
    have = [c for c in frame.columns if c != own]
    if fmt == "csv" and len(have) != len(features):
        raise SchemaError(
            f"channel {name!r} has {len(have)} features, the train channel {len(features)}"
        )
    if fmt == "libsvm":  # narrower is fine (its highest indexes are missing), wider is not
        extra = [c for c in have if c not in features and frame[c].notna().any()]
        if extra:
            raise SchemaError(
                f"channel {name!r} has feature index(es) {', '.join(c[1:] for c in extra[:5])} "
                f"beyond the train channel's {len(features)} features"
            )
    elif missing := [c for c in features if c not in have]:
        raise SchemaError(f"channel {name!r} lacks column(s) {', '.join(missing[:10])}")
    return frame.rename(columns={own: label}).reindex(columns=[label, *features])


def _csv(data: bytes, where: str) -> pd.DataFrame:
    try:
        frame = pd.read_csv(io.BytesIO(data), header=None, skip_blank_lines=True)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{where} is not CSV: {exc}") from None
    bad = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        column = frame[bad[0]]
        row = int(pd.to_numeric(column, errors="coerce").isna().to_numpy().argmax())
        header = " (a header? SageMaker's CSV has none)" if row == 0 else ""
        raise SchemaError(
            f"{where}: row {row + 1}, column {bad[0] + 1} is {column.iloc[row]!r}, not a "
            f"number{header}; CSV channels are numbers only, the label first"
        )
    if frame.shape[1] < 2:
        raise SchemaError(f"{where}: one column only: CSV rows are the label, then the features")
    frame.columns = [LABEL, *(f"f{i}" for i in range(frame.shape[1] - 1))]
    return frame.astype(np.float32)


def _libsvm(data: bytes, where: str) -> pd.DataFrame:
    labels: list[float] = []
    rows: list[int] = []
    columns: list[int] = []
    values: list[float] = []
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        tokens = line.split("#", 1)[0].split()
        if not tokens:
            continue
        if any(t.startswith("qid:") for t in tokens):
            raise SchemaError(f"{where} line {number}: qid (ranking groups) is not supported")
        try:
            labels.append(float(tokens[0]))
            for token in tokens[1:]:
                index, _, value = token.partition(":")
                columns.append(int(index))
                values.append(float(value))
                rows.append(len(labels) - 1)
        except ValueError:
            raise SchemaError(
                f"{where} line {number}: {line.strip()[:80]!r} is not libsvm "
                "('label index:value index:value ...')"
            ) from None
    if not labels:
        raise SchemaError(f"{where} has no rows")
    if columns and min(columns) < 0:
        raise SchemaError(f"{where}: a negative feature index")
    width = max(columns, default=-1) + 1
    dense = np.full((len(labels), width), np.nan, dtype=np.float32)  # absent: missing
    dense[rows, columns] = values
    frame = pd.DataFrame(dense, columns=[f"f{i}" for i in range(width)])
    frame.insert(0, LABEL, np.asarray(labels, dtype=np.float32))
    return frame


def _parquet(data: bytes, where: str) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(io.BytesIO(data))
    except Exception as exc:  # pyarrow's errors have no common base worth naming
        raise SchemaError(f"{where} is not Parquet: {exc}") from None
    frame.columns = [str(c) for c in frame.columns]
    bad = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise SchemaError(f"{where}: column(s) {', '.join(bad)} are not numeric")
    label = label_of(frame)
    return frame[[label, *(c for c in frame.columns if c != label)]]
