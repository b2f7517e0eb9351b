"""Endpoint configs in the store: which registered model versions serve, with what weights.

Layout under the store root::

    endpoints/<name>/configs/<n>.json   every config ever applied, created exclusively (history)
    endpoints/<name>/config.json        the current one, written whole (what servers poll)

An update claims the next config number by exclusive creation, then publishes it as current.
Updates of one endpoint from this machine are serialised by a lock file outside the store, and
the exclusive claim makes a concurrent update from elsewhere fail and retry rather than
interleave.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel, Field, field_validator

from algorithms.errors import AlreadyExistsError, NotFoundError
from algorithms.jobs import now
from algorithms.store import Store
from serving.errors import EndpointNotFound, ServingError

NAME = re.compile(r"^[A-Za-z0-9](-*[A-Za-z0-9]){0,62}$")  # SageMaker's rule: no path tricks


def check_name(name: str, what: str = "endpoint") -> str:
    if not NAME.match(name):
        raise ServingError(f"{what} name {name!r} must be 1-63 letters, digits or hyphens")
    return name


class Variant(BaseModel):
    """A production variant: one registered model version and its share of traffic."""

    name: str
    model_group: str
    model_version: int = Field(ge=1)
    weight: float = Field(1.0, ge=0)

    @field_validator("name")
    @classmethod
    def _valid(cls, name: str) -> str:
        return check_name(name, "variant")


class EndpointConfig(BaseModel):
    endpoint: str
    number: int = 0
    variants: list[Variant]
    created_at: str = Field(default_factory=now)
    reason: str = ""
    # A step of a blue/green update (a canary or linear share): a rollback skips these.
    transitional: bool = False

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


def runtime_root() -> Path:
    """Machine-local state (pids, ports, logs, locks): never in the store."""
    default = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local/state")) / "skiff"
    return Path(os.environ.get("SKIFF_RUNTIME", default))


def runtime_dir(store: Store, endpoint: str) -> Path:
    """This machine's folder for one endpoint of one store."""
    store_id = hashlib.sha256(store.root.encode()).hexdigest()[:10]
    return runtime_root() / "endpoints" / f"{check_name(endpoint)}-{store_id}"


class EndpointStore:
    """Reads and updates endpoint configs in a store."""

    def __init__(self, store: Store):
        self.store = store

    @staticmethod
    def _key(name: str, file: str) -> str:
        return f"endpoints/{check_name(name)}/{file}"

    def names(self) -> list[str]:
        return [n for n in self.store.list("endpoints") if self.exists(n)]

    def exists(self, name: str) -> bool:
        return self.store.exists(self._key(name, "config.json"))

    def current(self, name: str) -> EndpointConfig:
        return EndpointConfig.model_validate_json(self.current_bytes(name))

    def current_bytes(self, name: str) -> bytes:
        """The current config as stored (servers poll this and compare bytes)."""
        try:
            return self.store.read_bytes(self._key(name, "config.json"))
        except NotFoundError:
            known = ", ".join(self.names()) or "none"
            raise EndpointNotFound(f"no endpoint named {name!r} (endpoints: {known})") from None

    def history(self, name: str) -> list[EndpointConfig]:
        files = self.store.list(self._key(name, "configs"))
        numbers = sorted(int(n[:-5]) for n in files if n[:-5].isdigit())
        return [
            EndpointConfig.model_validate(
                self.store.read_json(self._key(name, f"configs/{n}.json"))
            )
            for n in numbers
        ]

    def update(
        self, name: str, change: Callable[[EndpointConfig | None], EndpointConfig]
    ) -> EndpointConfig:
        """Apply ``change`` to the current config (None if there is none) and publish the result.

        The read-change-publish runs under the endpoint's lock, so updates never interleave.
        """
        with self.lock(name):
            while True:
                current = self.current(name) if self.exists(name) else None
                new = change(current)
                last = max((c.number for c in self.history(name)), default=0)
                new = new.model_copy(
                    update={"endpoint": name, "number": last + 1, "created_at": now()}
                )
                try:
                    self.store.create_json_exclusive(
                        self._key(name, f"configs/{new.number}.json"), new.model_dump(mode="json")
                    )
                except AlreadyExistsError:
                    continue  # updated from elsewhere meanwhile: read again and redo the change
                self.store.write_json(self._key(name, "config.json"), new.model_dump(mode="json"))
                return new

    def delete(self, name: str) -> None:
        """Retire the endpoint: its history stays, it has no current config any more."""
        with self.lock(name):
            self.current(name)
            self.store.delete(self._key(name, "config.json"))

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        folder = runtime_dir(self.store, name)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "update.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
