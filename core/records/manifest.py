"""The model manifest: ``jobs/<name>/output/model.json``, what a job says about its model.

The job's runner writes it after the model file (so readers trust what it names), and the
registry reads it to register the model. It is the one contract between them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from core.clock import now

MANIFEST_FILE = "model.json"


class ModelManifest(BaseModel):
    """A trained model: its file and checksum, how to load it, what it reads, how it scored,
    and where it came from."""

    model_file: str = Field(description="the model's file name in the job's output folder")
    model_url: str = Field(description="the model file's URL in the store")
    sha256: str = Field(description="the model file's SHA-256, checked whenever it is loaded")
    predictor: str = Field(description="what loads it: 'xgboost' or 'package.module:Class'")
    label: str
    features: list[str] = Field(description="the encoded features a row holds, in order")
    feature_schema: dict[str, Any] | None = Field(
        None, description="how raw records become those features (algorithms.schema)"
    )
    metrics: dict[str, float] = Field(default_factory=dict)
    history: dict[str, list[float]] = Field(default_factory=dict, description="per round")
    info: dict[str, Any] = Field(default_factory=dict)
    algorithm: str
    hyperparameters: dict[str, Any]
    job_name: str
    dataset_id: str | None = None
    tuning_job: str | None = Field(None, description="the tuning job its job was a trial of")
    provenance: dict[str, Any] = Field(default_factory=dict)
    created_at: str = Field(default_factory=now)
