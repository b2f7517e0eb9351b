"""Models loaded for serving: a registered version, or a hosted model (SageMaker's
``model.tar.gz``), its checksum checked, its predictor, features and schema, warmed up."""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import fsspec
import numpy as np

from algorithms.archive import MEMBER, model_format, read_model_archive
from algorithms.catalog import resolve_predictor
from algorithms.schema import FeatureSchema
from core.errors import ModelLoadError, SkiffError
from core.records.endpoints import Variant
from core.records.hosting import HostingStore, csv_separator
from core.records.registry import ModelRegistry
from core.store import Store


@dataclass
class LoadedModel:
    predictor: Any
    n_features: int
    schema: FeatureSchema | None = None
    csv_separator: str = "\n"  # between the scores of a CSV answer (its image's way)
    features: list[str] | None = None  # the columns it was trained on, by name, where known

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Scores for ``rows``, whose width the request's parser has already checked."""
        return np.asarray(self.predictor.predict(rows), dtype=np.float64)

    def warmed_up(self) -> LoadedModel:
        """This model, after one predict of zeros returned one finite score.

        Raises:
            ModelLoadError: it did not.
        """
        warm = self.predict(np.zeros((1, self.n_features), dtype=np.float32))
        if warm.shape != (1,) or not np.isfinite(warm).all():
            raise ModelLoadError(f"warm-up predict returned {warm!r}, not one finite score")
        return self


def load_variant(store: Store, variant: Variant) -> LoadedModel:
    """The model a variant serves, loaded and warmed up.

    Raises:
        ModelLoadError: naming the model and why.
    """
    if variant.model is not None:
        return load_hosted(store, variant.model)
    return load_model(store, str(variant.model_group), int(variant.model_version or 0))


def load_model(store: Store, group: str, version: int) -> LoadedModel:
    """Load a registry version, check its artifact's checksum, and warm it up with one predict.

    Raises:
        ModelLoadError: the version is missing, the file is corrupt, or the warm-up fails.
    """
    try:
        registry = ModelRegistry(store)
        mv = registry.get(group, version)
        data = registry.read_artifact(mv.artifact_url, mv.artifact_sha256)
        if mv.image is not None:  # a model package: SageMaker's model.tar.gz, and its image
            return _from_archive(data, mv.artifact_url, mv.image)
        predictor = _load_predictor(mv.predictor, PurePosixPath(mv.artifact_url).name, data)
        schema = FeatureSchema.model_validate(mv.feature_schema) if mv.feature_schema else None
        return LoadedModel(predictor, len(mv.features), schema, features=mv.features).warmed_up()
    except ModelLoadError:
        raise
    except (SkiffError, OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load {group} version {version}: {exc}") from exc


def load_hosted(store: Store, name: str) -> LoadedModel:
    """Load a hosted model: its ``model.tar.gz``, checked against the checksum taken when the
    model was created, holding XGBoost's JSON or UBJSON (never the legacy binary format).

    Raises:
        ModelLoadError: the model or its artifact is missing, changed, or not loadable.
    """
    try:
        model = HostingStore(store).model(name)
        if model.model_package is not None:  # made from a registered version: served as one
            group, _, version = model.model_package.rpartition("/")
            return load_model(store, group, int(version))
        with fsspec.open(model.model_data_url, "rb", **store.storage_options) as f:
            archive = f.read()
        digest = hashlib.sha256(archive).hexdigest()
        if digest != model.archive_sha256:
            raise ModelLoadError(
                f"model {name}: {model.model_data_url} changed since the model was created "
                f"(SHA-256 {digest[:12]}…, expected {model.archive_sha256[:12]}…)"
            )
        return _from_archive(archive, model.model_data_url, model.image)
    except ModelLoadError:
        raise
    except (SkiffError, OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load model {name}: {exc}") from exc


def _from_archive(archive: bytes, url: str, image: str) -> LoadedModel:
    """SageMaker's ``model.tar.gz``, answering CSV as ``image`` does."""
    raw = read_model_archive(archive, url)
    # Named by its format: XGBoost reads a file's format from its extension.
    predictor = _load_predictor("xgboost", f"{MEMBER}.{model_format(raw)}", raw)
    separator = csv_separator(image)
    return LoadedModel(predictor, predictor.num_features, csv_separator=separator).warmed_up()


def _load_predictor(predictor: str, file_name: str, data: bytes) -> Any:
    with tempfile.TemporaryDirectory(prefix="skiff-model-") as tmp:
        path = Path(tmp) / file_name
        path.write_bytes(data)
        return resolve_predictor(predictor).load(path)
