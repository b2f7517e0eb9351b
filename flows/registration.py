"""Registering a completed job's model, approving it automatically when it is good enough."""

from __future__ import annotations

from core.errors import PipelineError
from core.records.jobs import JobStore, Status
from core.records.registry import Approval, ModelRegistry, ModelVersion
from core.store import Store


def initial_approval(metrics: dict[str, float], threshold: float | None) -> Approval:
    """Approved when the validation AUC reaches ``threshold``; else waits for a person."""
    auc = metrics.get("validation_auc")
    if threshold is not None and auc is not None and auc >= threshold:
        return Approval.APPROVED
    return Approval.PENDING


def register(store: Store, group: str, job: str, threshold: float | None) -> ModelVersion:
    """Register the model of training job ``job`` in ``group`` (idempotent per artifact).

    Raises:
        PipelineError: the job did not complete, so there is no model to register.
    """
    jobs = JobStore(store)
    status = jobs.status(job)
    if status.status != Status.COMPLETED:
        raise PipelineError(
            f"training job {job!r} ended {status.status}"
            + (f": {status.failure_reason}" if status.failure_reason else "")
            + "; there is no model to register"
        )
    manifest = jobs.manifest(job)
    approval = initial_approval(manifest.metrics, threshold)
    manifest_url = store.url(jobs.manifest_key(job))
    return ModelRegistry(store).register(group, manifest, manifest_url, approval)
