"""Building a training job from the pipeline's options and running it on the chosen backend."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from algorithms.jobs import JobStatus, JobStore, TrainingJob
from algorithms.store import Store
from backends import get_backend
from flows.config import PipelineConfig
from flows.datasets import Dataset


def job_name(group: str) -> str:
    """``<group>-YYYYmmdd-HHMMSS-xxxx``: sortable by time, unique without coordination."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{group[:40]}-{stamp}-{secrets.token_hex(2)}"


def make_job(config: PipelineConfig, dataset: Dataset, store: Store) -> TrainingJob:
    name = config.job_name or job_name(config.model_group)
    channels = {c: dataset.splits[c].url for c in ("train", "validation")}
    return TrainingJob(
        name=name,
        algorithm=config.algorithm,
        hyperparameters=config.training_hyperparameters(),
        channels=channels,
        label=dataset.label,
        features=dataset.features,
        output_url=store.url(JobStore.output_key(name)),
        backend=config.backend,
        max_runtime_seconds=config.max_runtime,
        dataset_id=dataset.dataset_id,
        feature_schema=dataset.feature_schema,
    )


def train(config: PipelineConfig, dataset: Dataset, store: Store) -> JobStatus:
    """Run one training job to its end; the status says how it ended."""
    job = make_job(config, dataset, store)
    with get_backend(config.backend, **config.backend_options()) as backend:
        return backend.run(job, store)
