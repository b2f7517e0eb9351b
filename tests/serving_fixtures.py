"""Builders for serving tests: real bank models (trained on a slice of the real CSV) in a store."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from backends.local import LocalBackend
from core.records.jobs import JobStore, TrainingJob
from core.records.registry import ModelVersion
from core.store import Store
from flows.bank import CleanOptions, clean
from flows.registration import register


def bank_channels(
    store: Store, csv: bytes, rows: int = 3000
) -> tuple[dict[str, str], dict, list[str]]:
    """Train/validation Parquet from the first ``rows`` records; returns URLs, schema, features."""
    head = b"\n".join(csv.split(b"\n")[: rows + 1])
    table, schema = clean(head, CleanOptions())
    cut = int(0.8 * len(table))
    urls = {}
    for name, part in {"train": table[:cut], "validation": table[cut:]}.items():
        buffer = io.BytesIO()
        part.to_parquet(buffer, index=False)
        urls[name] = store.write_bytes(f"datasets/slice/{name}.parquet", buffer.getvalue())
    return urls, schema.model_dump(), schema.features


def train_and_register(
    store: Store,
    channels,
    schema,
    features,
    name: str,
    threshold=0.0,
    algorithm="xgboost",
    **hyperparameters,
) -> ModelVersion:
    job = TrainingJob(
        name=name,
        channels=channels,
        label="y",
        features=features,
        algorithm=algorithm,
        output_url=store.url(JobStore.output_key(name)),
        feature_schema=schema,
        hyperparameters={"num_round": 20, **hyperparameters},
    )
    LocalBackend().run(job, store)
    return register(store, "bank-marketing", name, threshold)


def raw_records(csv: bytes, rows: int = 5) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(csv), sep=";", nrows=rows)


def path_of(url: str) -> Path:
    return Path(url)


def bank_store(
    folder: Path, csv: bytes, models: dict[str, dict]
) -> tuple[Store, list[str], pd.DataFrame]:
    """A store with one registered version per entry of ``models`` (job name → keyword
    arguments of :func:`train_and_register`), in order; returns it, the features and the
    validation rows."""
    store = Store(str(folder / "store"))
    store.ensure_layout()
    channels, schema, features = bank_channels(store, csv)
    for name, options in models.items():
        train_and_register(store, channels, schema, features, name, **options)
    return store, features, pd.read_parquet(channels["validation"])
