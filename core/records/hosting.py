"""Hosted models and named endpoint configs: what SageMaker's CreateModel and
CreateEndpointConfig make.

Layout under the store root::

    hosting/models/<name>.json             a model: an artifact (model.tar.gz), its checksum
    hosting/endpoint-configs/<name>.json   a named, immutable list of production variants
    hosting/endpoints/<name>.json          an endpoint made from one: which, when, why it failed

A hosted model is an artifact outside the registry (SageMaker code deploys what it trained,
with no approval step); an endpoint's variant names either one of these or a registered
version. Both are claimed by exclusive creation (names are unique) and never change; deleting
one removes its object (endpoints that serve it keep their loaded copy).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field

from core.clock import now
from core.errors import NotFoundError, ServingError
from core.names import VariantName, check_name
from core.records.base import Records
from core.records.endpoints import DataCapture


class HostedModel(BaseModel):
    """An artifact to serve and the image that would serve it on SageMaker."""

    name: str
    image: str
    model_data_url: str
    archive_sha256: str  # of model.tar.gz when the model was created; checked at every load
    environment: dict[str, str] = Field(default_factory=dict)
    created_at: str = Field(default_factory=now)
    request: dict[str, Any] | None = None  # the CreateModel request, as given
    model_package: str | None = None  # "<group>/<version>": made from a registered version


# SageMaker's XGBoost images answer text/csv two ways: the first-party image (xgboost:latest,
# xgboost:1) and sagemaker-xgboost before 1.5-1 join the scores with commas on one line (the
# demo notebooks parse exactly that, np.fromstring(..., sep=",")); 1.5-1 and later write one
# score a line, as Skiff does for its own models.
_SAGEMAKER_XGBOOST_TAG = re.compile(r"(\d+)\.(\d+)")


def csv_separator(image: str) -> str:
    """Between the scores of a CSV answer, as ``image`` writes them."""
    repository, _, tag = image.rpartition("/")[2].partition(":")
    if repository == "xgboost":
        return ","
    version = _SAGEMAKER_XGBOOST_TAG.match(tag)
    if repository == "sagemaker-xgboost" and version:
        return "," if (int(version[1]), int(version[2])) < (1, 5) else "\n"
    return "\n"


class VariantSpec(BaseModel):
    """A production variant of a named config: which model, what share, how many workers."""

    name: VariantName
    model: str
    weight: float = Field(1.0, ge=0, allow_inf_nan=False)
    instance_count: int = Field(1, ge=1)
    instance_type: str | None = None


class NamedEndpointConfig(BaseModel):
    name: str
    variants: list[VariantSpec] = Field(min_length=1)
    created_at: str = Field(default_factory=now)
    request: dict[str, Any] | None = None
    capture: DataCapture | None = None  # its DataCaptureConfig, where it enables one


class HostedEndpoint(BaseModel):
    """What SageMaker's CreateEndpoint asked for: the endpoint itself is Skiff's (its
    numbered configs, ``core.records.endpoints``, and its server); this says which named
    config it was made from, and why it failed if it did."""

    name: str
    config_name: str
    created_at: str = Field(default_factory=now)
    failure_reason: str | None = None  # it never came up
    request: dict[str, Any] | None = None
    updating_to: str | None = None  # an UpdateEndpoint under way, to this config
    update_pid: int | None = None  # the process running it (this machine's)
    update_failure: str | None = None  # why the last update was rolled back
    rolling_back: bool = False  # the update under way is putting the old config back


class HostingStore(Records):
    """Hosted models, named endpoint configs and the endpoints made from them, in a store."""

    MODELS, CONFIGS = "hosting/models", "hosting/endpoint-configs"
    ENDPOINTS = "hosting/endpoints"

    def _key(self, folder: str, name: str) -> str:
        what = {self.MODELS: "model", self.CONFIGS: "endpoint config"}.get(folder, "endpoint")
        return f"{folder}/{check_name(name, what, ServingError)}.json"

    def create_endpoint(self, endpoint: HostedEndpoint) -> None:
        """Raises: AlreadyExistsError: an endpoint of that name was created here before."""
        self.claim(self._key(self.ENDPOINTS, endpoint.name), endpoint)

    def endpoint(self, name: str) -> HostedEndpoint | None:
        return self.find(self._key(self.ENDPOINTS, name), HostedEndpoint)

    def failed(self, endpoint: HostedEndpoint, reason: str) -> None:
        self.save_endpoint(endpoint.model_copy(update={"failure_reason": reason}))

    def save_endpoint(self, endpoint: HostedEndpoint) -> None:
        self.publish(self._key(self.ENDPOINTS, endpoint.name), endpoint)

    def create_model(self, model: HostedModel) -> None:
        """Raises: AlreadyExistsError: a model of that name exists."""
        self.claim(self._key(self.MODELS, model.name), model)

    def model(self, name: str) -> HostedModel:
        """Raises: NotFoundError: no model of that name."""
        return self.read(self._key(self.MODELS, name), HostedModel)

    def create_config(self, config: NamedEndpointConfig) -> None:
        """Raises: AlreadyExistsError: a config of that name exists."""
        self.claim(self._key(self.CONFIGS, config.name), config)

    def config(self, name: str) -> NamedEndpointConfig:
        """Raises: NotFoundError: no config of that name."""
        return self.read(self._key(self.CONFIGS, name), NamedEndpointConfig)

    def delete(self, folder: str, name: str) -> None:
        """Raises: NotFoundError: nothing of that name."""
        key = self._key(folder, name)
        if not self.store.exists(key):
            raise NotFoundError(f"{self.store.url(key)} does not exist")
        self.store.delete(key)

    def names(self, folder: str) -> list[str]:
        return sorted(
            key.removesuffix(".json") for key in self.store.list(folder) if key.endswith(".json")
        )
