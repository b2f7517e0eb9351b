"""The pipeline's steps as Prefect tasks: thin wrappers, the logic lives in plain functions.

Tasks take store URLs and small values and return ids and URLs (pydantic models), never live
objects or frames: so each step could run elsewhere, and a cached step's result is a little
JSON under the store (see ``flows/caching.py``). Which steps are cached is the flow's choice.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from prefect import task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from algorithms.schema import FeatureSchema
from core.errors import StoreError
from core.records.endpoints import DataCapture
from core.records.jobs import JobStatus
from core.records.registry import ModelVersion
from core.store import Store
from flows import bank, champion, data, datasets, evaluation, registration, training
from flows.approval import deploy_approved
from serving.control.rollouts import UpdatePolicy
from serving.options import ServerOptions

if TYPE_CHECKING:
    from flows.tuning.pipeline import TuningRequest

logger = logging.getLogger(__name__)
_step = task(cache_policy=NO_CACHE)


class CleanTable(BaseModel):
    """The cleaned table, staged in the store, and the schema that encodes it."""

    url: str
    rows: int
    feature_schema: FeatureSchema


class SplitTables(BaseModel):
    """Each split, staged in the store."""

    urls: dict[str, str]
    rows: dict[str, int]


@_step(name="download", task_run_name="download archive")
def download(source: str, store: str, sha256: str | None, max_bytes: int) -> data.RawArchive:
    return data.download(source, Store(store), sha256, max_bytes)


@_step(name="clean", task_run_name="clean and encode")
def clean(
    store: str,
    dataset_id: str,
    archive: data.RawArchive,
    options: bank.CleanOptions,
    max_bytes: int,
) -> CleanTable:
    s = Store(store)
    raw = s.read_bytes(archive.key)
    csv = data.extract_member(raw, bank.CSV_MEMBER, archive.source, max_bytes)
    table, schema = bank.clean(csv, options)
    url = datasets.stage(s, dataset_id, "clean", table)
    return CleanTable(url=url, rows=len(table), feature_schema=schema)


@_step(name="split", task_run_name="split {method}")
def split(
    store: str, dataset_id: str, table: CleanTable, method: datasets.SplitMethod, seed: int
) -> SplitTables:
    s = Store(store)
    parts = datasets.split(datasets.read_table(table.url), method, seed)
    datasets.check_trainable(parts, bank.LABEL)
    return SplitTables(
        urls={name: datasets.stage(s, dataset_id, name, frame) for name, frame in parts.items()},
        rows={name: len(frame) for name, frame in parts.items()},
    )


@_step(name="upload", task_run_name="publish dataset {dataset_id}")
def upload(
    store: str,
    dataset_id: str,
    splits: SplitTables,
    schema: FeatureSchema,
    archive: data.RawArchive,
    options: dict[str, Any],
) -> datasets.Dataset:
    s = Store(store)
    try:
        published = datasets.find_dataset(s, dataset_id)
    except StoreError as exc:
        published, problem = None, str(exc)
    else:
        problem = datasets.damaged_split(s, published) if published else None
    if published is not None and problem is None:  # never rewrite a sound dataset: reuse it
        return published
    if problem is not None:
        logger.warning("%s: rebuilding the dataset from this run's splits", problem)
    frames = {name: datasets.read_table(url) for name, url in splits.urls.items()}
    return datasets.publish(
        s,
        dataset_id,
        frames,
        schema,
        source=archive.source,
        archive_sha256=archive.sha256,
        options=options,
        replace=problem is not None,
    )


@_step(name="train", task_run_name="train {request.algorithm} on {request.backend}")
def train(store: str, request: training.TrainingRequest, dataset: datasets.Dataset) -> JobStatus:
    s = Store(store)
    datasets.check_intact(s, dataset)  # a cached dataset may have been damaged since
    return training.train(request, dataset, s)


@_step(name="tune", task_run_name="tune {request.trials} trials on {request.training.backend}")
def tune(store: str, request: TuningRequest, dataset: datasets.Dataset) -> JobStatus:
    """A tuning job; its best trial's job status (``flows.tuning.pipeline``)."""
    from flows.tuning import pipeline  # optuna: only when tuning

    s = Store(store)
    datasets.check_intact(s, dataset)
    return pipeline.tune(request, dataset, s)


@_step(name="register", task_run_name="register in {group}")
def register(store: str, group: str, job: str, threshold: float | None) -> ModelVersion:
    return registration.register(Store(store), group, job, threshold)


@_step(name="compare", task_run_name="compare v{version} with the live model of {endpoint}")
def compare_with_live(
    store: str, dataset: datasets.Dataset, endpoint: str, group: str, version: int
) -> champion.Verdict:
    return champion.judge(Store(store), dataset, endpoint, group, version)


@_step(name="deploy", task_run_name="deploy {group} v{version} to {endpoint}")
def deploy(
    store: str,
    endpoint: str,
    group: str,
    version: int,
    host: str,
    port: int,
    policy: UpdatePolicy,
    server: ServerOptions,
    capture_to: str | None = None,
    capture_percent: float = 100.0,
    weight: float | None = None,
) -> dict:
    capture = DataCapture(destination=capture_to, percent=capture_percent) if capture_to else None
    deployed = deploy_approved(
        Store(store), endpoint, group, version, host=host, port=port, policy=policy,
        server=server, capture=capture, weight=weight,
    )  # fmt: skip
    return deployed.as_dict()


@_step(name="evaluate", task_run_name="evaluate through the endpoint")
def evaluate(
    store: str, dataset: datasets.Dataset, endpoint: str, run_key: str, batch_size: int
) -> dict[str, Any]:
    progress_id = create_progress_artifact(0.0, description="test rows scored by the endpoint")

    def progress(done: float) -> None:
        if progress_id:
            update_progress_artifact(progress_id, 100 * done)

    return evaluation.evaluate(Store(store), dataset, endpoint, run_key, batch_size, progress)
