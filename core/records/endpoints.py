"""Endpoint configs in the store: which registered model versions serve, with what weights.

Layout under the store root::

    endpoints/<name>/configs/<n>.json   every config ever applied, claimed in turn (history)
    endpoints/<name>/config.json        the current one, written whole (what servers poll)

An update claims the next config number, then publishes it as current. Updates of one
endpoint from this machine are serialised by a lock file in the runtime folder, and the
exclusive claim makes a concurrent update from elsewhere build again on what it finds rather
than interleave.
"""

from __future__ import annotations

import fcntl
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pydantic import BaseModel, Field, field_validator, model_validator

from core.clock import now
from core.errors import EndpointNotFound, NotFoundError, ServingError
from core.names import VariantName, check_name
from core.records.base import Records
from core.runtime import endpoint_folder


class Variant(BaseModel):
    """A production variant: one model and its share of traffic. The model is a registered
    version (``model_group`` and ``model_version``: what the pipeline deploys), or a hosted
    model (``model``: what SageMaker's CreateModel made, ``core.records.hosting``)."""

    name: VariantName
    model_group: str | None = None
    model_version: int | None = Field(None, ge=1)
    model: str | None = None
    weight: float = Field(1.0, ge=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one_model(self) -> Variant:
        registered = self.model_group is not None and self.model_version is not None
        if registered == (self.model is not None) or (
            not registered and (self.model_group or self.model_version)
        ):
            raise ValueError(
                f"variant {self.name!r} needs a registered version (model_group and "
                "model_version) or a hosted model (model), not both"
            )
        return self

    @property
    def key(self) -> tuple[str, ...]:
        """What the variant serves, as a key (two variants may serve the same model)."""
        if self.model is not None:
            return ("model", self.model)
        return (str(self.model_group), str(self.model_version))

    @property
    def source(self) -> str:
        """For people: ``bank-marketing:3`` or ``model xgb-demo``."""
        return f"model {self.model}" if self.model else f"{self.model_group}:{self.model_version}"


class DataCapture(BaseModel):
    """SageMaker's DataCaptureConfig: record a share of what the endpoint is asked and
    answers, as JSON lines in SageMaker's capture format, under ``destination`` (any fsspec
    URL) ``/<endpoint>/<variant>/yyyy/mm/dd/hh/``. Content types listed as CSV or JSON are
    recorded as text, others base64-encoded (SageMaker's CaptureContentTypeHeader)."""

    percent: float = Field(100.0, ge=0, le=100, description="InitialSamplingPercentage")
    destination: str = Field(description="DestinationS3Uri: any fsspec URL")
    capture_input: bool = True
    capture_output: bool = True
    csv_types: list[str] = Field(default_factory=lambda: ["text/csv"])
    json_types: list[str] = Field(default_factory=lambda: ["application/json"])
    seed: int | None = Field(None, description="the sampling's seed (reproducible samples)")

    @model_validator(mode="after")
    def _something(self) -> DataCapture:
        if not (self.capture_input or self.capture_output):
            raise ValueError("data capture needs Input, Output or both")
        return self


class EndpointConfig(BaseModel):
    endpoint: str
    number: int = 0
    variants: list[Variant]
    created_at: str = Field(default_factory=now)
    reason: str = ""
    # A step of a blue/green update (a canary or linear share): a rollback skips these.
    transitional: bool = False
    # What the servers record of their traffic; carried from config to config unless a
    # change sets it (``EndpointStore.update``).
    capture: DataCapture | None = None

    def shares(self) -> dict[str, float]:
        """Each variant's share of the traffic (its weight over all of theirs), by name."""
        total = sum(v.weight for v in self.variants)
        return {v.name: v.weight / total for v in self.variants}

    @field_validator("variants")
    @classmethod
    def _some_traffic(cls, variants: list[Variant]) -> list[Variant]:
        if not variants:
            raise ValueError("an endpoint config needs at least one variant")
        if sum(v.weight for v in variants) <= 0:
            raise ValueError("the variants' weights must not all be zero")
        if len({v.name for v in variants}) != len(variants):
            raise ValueError("variant names must be unique")
        return variants


class EndpointStore(Records):
    """Reads and updates endpoint configs in a store."""

    @staticmethod
    def _key(name: str, file: str) -> str:
        return f"endpoints/{check_name(name, 'endpoint', ServingError)}/{file}"

    def names(self) -> list[str]:
        return self.names_under("endpoints", "config.json")

    def exists(self, name: str) -> bool:
        return self.store.exists(self._key(name, "config.json"))

    def current(self, name: str) -> EndpointConfig:
        return self.parse(self._key(name, "config.json"), self.current_bytes(name), EndpointConfig)

    def current_bytes(self, name: str) -> bytes:
        """The current config as stored (servers poll this and compare bytes)."""
        try:
            return self.store.read_bytes(self._key(name, "config.json"))
        except NotFoundError:
            known = ", ".join(self.names()) or "none"
            raise EndpointNotFound(f"no endpoint named {name!r} (endpoints: {known})") from None

    def history(self, name: str) -> list[EndpointConfig]:
        folder = self._key(name, "configs")
        return [self.read(self.numbered(folder, n), EndpointConfig) for n in self.numbers(folder)]

    def update(
        self, name: str, change: Callable[[EndpointConfig | None], EndpointConfig]
    ) -> EndpointConfig:
        """Apply ``change`` to the current config (None if there is none) and publish the result.

        The read-change-publish runs under the endpoint's lock, so updates never interleave.
        """
        with self.lock(name):
            return self._publish(name, change)

    def update_unless_changed(
        self, name: str, number: int, config: EndpointConfig
    ) -> EndpointConfig | None:
        """Publish ``config`` if the current config is still number ``number``; None if
        someone changed the endpoint since (their config stands)."""
        with self.lock(name):
            if self.current(name).number != number:
                return None
            return self._publish(name, lambda _: config)

    def _publish(
        self, name: str, change: Callable[[EndpointConfig | None], EndpointConfig]
    ) -> EndpointConfig:
        """The next config, claimed and published (the caller holds the lock)."""

        def build(number: int) -> EndpointConfig:
            current = self.current(name) if self.exists(name) else None
            new = change(current)
            kept = (
                {}
                if "capture" in new.model_fields_set or current is None
                else {
                    "capture": current.capture  # a weight change or a rollout keeps the capture
                }
            )
            return new.model_copy(
                update={"endpoint": name, "number": number, "created_at": now(), **kept}
            )

        new = self.claim_next(self._key(name, "configs"), build)
        self.publish(self._key(name, "config.json"), new)
        return new

    def delete(self, name: str) -> None:
        """Retire the endpoint: its history stays, it has no current config any more."""
        with self.lock(name):
            self.current_bytes(name)  # exists (however broken: delete is how to get rid of it)
            self.store.delete(self._key(name, "config.json"))

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        folder = endpoint_folder(self.store.root, name)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "update.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
