"""The pipeline's steps as Prefect tasks: thin wrappers, the logic lives in plain functions.

Tasks take store URLs and small values, not live objects, so each step could run elsewhere.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from prefect import task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE

from algorithms.jobs import JobStatus
from algorithms.schema import FeatureSchema
from algorithms.store import Store
from flows import bank, data, datasets, deployment, evaluation, registration, training
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


@_step(name="deploy")
def deploy(store: str, endpoint: str, group: str, version: int, host: str, port: int) -> dict:
    return deployment.deploy(Store(store), endpoint, group, version, host, port).as_dict()


@_step(name="evaluate")
def evaluate(store: str, dataset: datasets.Dataset, endpoint_url: str, run_key: str,
             batch_size: int) -> dict[str, Any]:  # fmt: skip
    progress_id = create_progress_artifact(0.0, description="test rows scored by the endpoint")

    def progress(done: float) -> None:
        if progress_id:
            update_progress_artifact(progress_id, 100 * done)

    result = evaluation.evaluate(Store(store), dataset, endpoint_url, run_key, batch_size, progress)
    metrics = result["metrics"]
    create_table_artifact(
        key="bank-marketing-test-metrics",
        table=[{"metric": k, "value": round(v, 6)} for k, v in metrics.items()],
        description="Test split through the endpoint, cutoff 0.5",
    )
    create_markdown_artifact(key="bank-marketing-evaluation", markdown=evaluation_markdown(result))
    return result


def evaluation_markdown(result: dict[str, Any]) -> str:
    m = result["metrics"]
    return "\n".join([
        f"# Evaluation of {result['endpoint_url']}",
        f"{result['rows']} test rows in {result['seconds']:.1f} s "
        f"({result['batch_size']} rows per request).",
        "",
        "| AUC | error rate | precision | recall |",
        "|---|---|---|---|",
        f"| {m['auc']:.4f} | {m['error_rate']:.4f} | {m['precision']:.4f} | {m['recall']:.4f} |",
        "",
        "| | predicted yes | predicted no |",
        "|---|---|---|",
        f"| **actual yes** | {m['true_positives']} | {m['false_negatives']} |",
        f"| **actual no** | {m['false_positives']} | {m['true_negatives']} |",
        "",
        f"Plots: {result['plots']['roc.png']}, {result['plots']['precision-recall.png']}",
        f"Details: {result['url']}",
    ])  # fmt: skip
