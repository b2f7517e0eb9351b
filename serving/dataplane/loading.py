"""Registered model versions loaded for serving: predictor, features and schema, warmed up."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from algorithms.catalog import resolve_predictor
from algorithms.schema import FeatureSchema
from core.errors import ModelLoadError, SkiffError
from core.records.registry import ModelRegistry, ModelVersion
from core.store import Store


@dataclass
class LoadedModel:
    version: ModelVersion
    predictor: Any
    schema: FeatureSchema | None

    @property
    def n_features(self) -> int:
        return len(self.version.features)

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Scores for ``rows``, whose width the request's parser has already checked."""
        return np.asarray(self.predictor.predict(rows), dtype=np.float64)


def load_model(store: Store, group: str, version: int) -> LoadedModel:
    """Load a registry version, check its artifact's checksum, and warm it up with one predict.

    Raises:
        ModelLoadError: the version is missing, the file is corrupt, or the warm-up fails.
    """
    try:
        registry = ModelRegistry(store)
        mv = registry.get(group, version)
        data = registry.read_artifact(mv.artifact_url, mv.artifact_sha256)
        with tempfile.TemporaryDirectory(prefix="skiff-model-") as tmp:
            path = Path(tmp) / PurePosixPath(mv.artifact_url).name
            path.write_bytes(data)
            predictor = resolve_predictor(mv.predictor).load(path)
        schema = FeatureSchema.model_validate(mv.feature_schema) if mv.feature_schema else None
        model = LoadedModel(mv, predictor, schema)
        warm = model.predict(np.zeros((1, model.n_features), dtype=np.float32))
        if warm.shape != (1,) or not np.isfinite(warm).all():
            raise ModelLoadError(f"warm-up predict returned {warm!r}, not one finite score")
    except ModelLoadError:
        raise
    except (SkiffError, OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load {group} version {version}: {exc}") from exc
    return model
