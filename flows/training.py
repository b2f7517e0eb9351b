"""Building a training job from the pipeline's options and running it on the chosen backend."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, SerializeAsAny

from backends import get_backend
from backends.base import BackendOptions
from core.errors import TrainingFailed
from core.records.jobs import JobStatus, JobStore, Status, TrainingJob
from core.store import Store
from flows.config import PipelineConfig
from flows.datasets import Dataset


class TrainingRequest(BaseModel):
    """The options that decide a training job's outcome, and nothing else.

    With the dataset, this is the training step's cache key: changing the endpoint's name or
    the evaluation batch size does not retrain, changing a hyperparameter or the backend does.
    """

    algorithm: str
    hyperparameters: dict[str, Any]
    backend: str
    backend_options: SerializeAsAny[BackendOptions]  # validated once, by the config
    max_runtime: float
    model_group: str
    job_name: str | None = None

    @classmethod
    def from_config(cls, config: PipelineConfig) -> TrainingRequest:
        return cls(
            algorithm=config.algorithm,
            hyperparameters=config.training_hyperparameters(),
            backend=config.backend,
            backend_options=config.chosen_backend_options(),
            max_runtime=config.max_runtime,
            model_group=config.model_group,
            job_name=config.job_name,
        )


def job_name(group: str) -> str:
    """``<group>-YYYYmmdd-HHMMSS-xxxx``: sortable by time, unique without coordination."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{group[:40]}-{stamp}-{secrets.token_hex(2)}"


def make_job(request: TrainingRequest, dataset: Dataset, store: Store) -> TrainingJob:
    name = request.job_name or job_name(request.model_group)
    channels = {c: dataset.splits[c].url for c in ("train", "validation")}
    return TrainingJob(
        name=name,
        algorithm=request.algorithm,
        hyperparameters=request.hyperparameters,
        channels=channels,
        label=dataset.label,
        features=dataset.features,
        output_url=store.url(JobStore.output_key(name)),
        backend=request.backend,
        max_runtime_seconds=request.max_runtime,
        dataset_id=dataset.dataset_id,
        feature_schema=dataset.feature_schema,
    )


def train(request: TrainingRequest, dataset: Dataset, store: Store) -> JobStatus:
    """Run one training job to its end.

    Raises:
        TrainingFailed: the job ended Failed or Stopped (the message gives its reason).
    """
    job = make_job(request, dataset, store)
    with get_backend(request.backend, request.backend_options) as backend:
        status = backend.run(job, store)
    if status.status != Status.COMPLETED:
        raise TrainingFailed(
            f"training job {status.name} ended {status.status}: {status.failure_reason}",
            {
                "job_name": status.name,
                "job_status": str(status.status),
                "metrics": dict(status.metrics),
            },
        )
    return status
