"""Splitting the cleaned table and publishing it to the store as a dataset with a manifest."""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel

from algorithms.schema import FeatureSchema
from core.clock import now
from core.errors import AlreadyExistsError, NotFoundError, SchemaError, StoreError
from core.records.base import Records
from core.store import Store

SplitMethod = Literal["random", "time"]
SPLITS = ("train", "validation", "test")


def split(
    frame: pd.DataFrame, method: SplitMethod = "random", seed: int = 1729
) -> dict[str, pd.DataFrame]:
    """70% train, 20% validation, 10% test.

    ``random`` is exactly SageMaker's demo: shuffle with ``frame.sample(frac=1,
    random_state=seed)``, then cut at ``int(0.7 n)`` and ``int(0.9 n)``. ``time`` keeps the
    file's order (the file is in date order): the latest 10% is the test set.
    """
    if method == "random":
        frame = frame.sample(frac=1, random_state=seed)
    elif method != "time":
        raise ValueError(f"unknown split method {method!r}; choose 'random' or 'time'")
    n = len(frame)
    cuts = [0, int(0.7 * n), int(0.9 * n), n]
    return {
        name: frame.iloc[cuts[i] : cuts[i + 1]].reset_index(drop=True)
        for i, name in enumerate(SPLITS)
    }


def check_trainable(parts: dict[str, pd.DataFrame], label: str) -> None:
    """Every split has rows of both labels, or training would "complete" a model that learned
    nothing (AUC nan) and the registry would keep it.

    Raises:
        SchemaError: naming the split and what it lacks.
    """
    total = sum(len(frame) for frame in parts.values())
    for name, frame in parts.items():
        if frame.empty:
            raise SchemaError(
                f"the {name} split has no rows: the data has {total} row(s), too few to split "
                "70/20/10 and train"
            )
        positives = int(frame[label].sum())
        if positives in (0, len(frame)):
            value = "positive" if positives else "negative"
            raise SchemaError(
                f"the {name} split's {len(frame)} row(s) are all {value} ({label!r}): a model "
                "needs both labels to learn from and to be judged on"
            )


def dataset_id(archive_sha256: str, options: dict[str, Any]) -> str:
    """Same archive and same options → same id, so a rerun finds the dataset it made before."""
    blob = json.dumps({"archive": archive_sha256, **options}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class SplitInfo(BaseModel):
    url: str
    rows: int
    positive_rate: float
    sha256: str


class Dataset(BaseModel):
    """A published dataset: what its manifest says."""

    dataset_id: str
    created_at: str
    source: str
    archive_sha256: str
    options: dict[str, Any]
    label: str
    features: list[str]
    feature_schema: dict[str, Any]
    splits: dict[str, SplitInfo]


def _key(dataset: str, file: str) -> str:
    return f"datasets/{dataset}/{file}"


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def stage(store: Store, dataset: str, name: str, frame: pd.DataFrame) -> str:
    """Keep an intermediate table (cleaned, or one split) until the dataset is published.

    Steps hand each other these URLs rather than frames, so a step's cached result is a URL.
    ``staging/`` holds nothing that a rerun cannot make again.
    """
    return store.write_bytes(f"staging/{dataset}/{name}.parquet", _parquet(frame))


def read_table(url: str) -> pd.DataFrame:
    return pd.read_parquet(url)


def read_split(store: Store, dataset: Dataset, name: str) -> pd.DataFrame:
    """One split of a published dataset (``train``, ``validation``, ``test``), from wherever
    the store keeps it."""
    options = None if store.is_local else store.storage_options
    return pd.read_parquet(dataset.splits[name].url, storage_options=options)


def find_dataset(store: Store, dataset: str) -> Dataset | None:
    """The dataset if its manifest is published; a half-written one counts as absent.

    Raises:
        StoreError: the manifest is there but is not a valid one (naming why).
    """
    return Records(store).find(_key(dataset, "manifest.json"), Dataset)


def corruption(store: Store, dataset: Dataset) -> str | None:
    """What is wrong with the stored ``dataset``, or None: its manifest unreadable, or not
    the one given, or a split that does not match its checksum."""
    try:
        published = find_dataset(store, dataset.dataset_id)
    except StoreError as exc:
        return str(exc)
    if published is None:
        return f"dataset {dataset.dataset_id} has no manifest in {store.root}"
    if published != dataset:
        return f"dataset {dataset.dataset_id}'s manifest is not the one this run made"
    return damaged_split(store, published)


def damaged_split(store: Store, dataset: Dataset) -> str | None:
    """Which of a published ``dataset``'s splits is missing or does not match its checksum,
    or None."""
    for name, split in dataset.splits.items():
        try:
            data = store.read_bytes(_key(dataset.dataset_id, f"{name}.parquet"))
        except NotFoundError as exc:
            return str(exc)
        if hashlib.sha256(data).hexdigest() != split.sha256:
            return f"dataset {dataset.dataset_id}'s {name} split does not match its checksum"
    return None


def check_intact(store: Store, dataset: Dataset) -> None:
    """Train only on what the manifest says.

    Raises:
        SchemaError: the stored dataset is corrupt; ``--refresh`` rebuilds it.
    """
    if (problem := corruption(store, dataset)) is not None:
        raise SchemaError(f"{problem}: not training on it; rerun with --refresh to rebuild it")


def publish(
    store: Store,
    dataset: str,
    splits: dict[str, pd.DataFrame],
    schema: FeatureSchema,
    *,
    source: str,
    archive_sha256: str,
    options: dict[str, Any],
    replace: bool = False,
) -> Dataset:
    """Write each split as Parquet, then the manifest, last: readers trust only the manifest
    (``replace``: over a corrupt one)."""
    infos = {}
    for name, frame in splits.items():
        data = _parquet(frame)
        url = store.write_bytes(_key(dataset, f"{name}.parquet"), data)
        infos[name] = SplitInfo(
            url=url,
            rows=len(frame),
            positive_rate=float(frame[schema.label].mean()) if len(frame) else 0.0,
            sha256=hashlib.sha256(data).hexdigest(),
        )
    manifest = Dataset(
        dataset_id=dataset,
        created_at=now(),
        source=source,
        archive_sha256=archive_sha256,
        options=options,
        label=schema.label or "",
        features=schema.features,
        feature_schema=schema.model_dump(),
        splits=infos,
    )
    key, records = _key(dataset, "manifest.json"), Records(store)
    if replace:  # a corrupt dataset, rebuilt: what was there is not to be trusted
        records.publish(key, manifest)
        return manifest
    try:
        records.claim(key, manifest)
    except AlreadyExistsError:  # a concurrent run published the same dataset first
        return find_dataset(store, dataset)  # type: ignore[return-value]
    return manifest
