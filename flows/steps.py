"""The pipeline's steps as Prefect tasks: thin wrappers, the logic lives in plain functions.

Tasks take store URLs and small values, not live objects, so each step could run elsewhere.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from algorithms.jobs import JobStatus
from algorithms.schema import FeatureSchema
from algorithms.store import Store
from flows import bank, data, datasets, registration, training
from flows.config import PipelineConfig
from serving.registry import ModelVersion

# Results are not cached across runs yet: a rerun finds its dataset by id instead.
_step = task(cache_policy=NO_CACHE)


@_step(name="download")
def download(source: str, store: str, sha256: str | None) -> data.RawArchive:
    return data.download(source, Store(store), sha256)


@_step(name="clean")
def clean(
    store: str, archive: data.RawArchive, options: bank.CleanOptions
) -> tuple[pd.DataFrame, FeatureSchema]:
    raw = Store(store).read_bytes(archive.key)
    csv = data.extract_member(raw, bank.CSV_MEMBER, archive.source)
    return bank.clean(csv, options)


@_step(name="split")
def split(table: pd.DataFrame, method: datasets.SplitMethod, seed: int) -> dict[str, pd.DataFrame]:
    return datasets.split(table, method, seed)


@_step(name="upload")
def upload(
    store: str,
    dataset_id: str,
    splits: dict[str, pd.DataFrame],
    schema: FeatureSchema,
    archive: data.RawArchive,
    options: dict[str, Any],
) -> datasets.Dataset:
    return datasets.publish(
        Store(store),
        dataset_id,
        splits,
        schema,
        source=archive.source,
        archive_sha256=archive.sha256,
        options=options,
    )


@_step(name="train")
def train(config: PipelineConfig, dataset: datasets.Dataset) -> JobStatus:
    return training.train(config, dataset, Store(config.store))


@_step(name="register")
def register(store: str, group: str, job: str, threshold: float | None) -> ModelVersion:
    return registration.register(Store(store), group, job, threshold)
