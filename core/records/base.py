"""What every kind of record does with the store: claim, claim the next number, publish,
read typed, list. The record kinds (jobs, model versions, endpoint configs) are subclasses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from core.errors import AlreadyExistsError, NotFoundError, StoreError, describe_invalid
from core.store import Store

M = TypeVar("M", bound=BaseModel)
Exclude = set[str] | None


def _body(record: BaseModel, exclude: Exclude) -> dict[str, Any]:
    """What is stored of ``record``, validated first: a record built with ``model_copy`` (which
    does not validate) or changed in place must not reach the store invalid, where it would
    break every later read.

    Raises:
        StoreError: the record is not valid (the message names the fields and why).
    """
    try:
        valid = type(record).model_validate(record.model_dump())
    except ValidationError as exc:
        raise StoreError(
            f"not writing an invalid {type(record).__name__}: {describe_invalid(exc)}"
        ) from None
    return valid.model_dump(exclude=exclude)


class Records:
    """Records in ``store``, by the rules in ``core.records``' docstring."""

    def __init__(self, store: Store):
        self.store = store

    def claim(self, key: str, record: BaseModel, exclude: Exclude = None) -> str:
        """Create ``key`` holding ``record``, whole, only if nothing is there yet.

        Raises:
            AlreadyExistsError: someone claimed ``key`` first.
        """
        return self.store.create_json_exclusive(key, _body(record, exclude))

    def claim_next(
        self,
        folder: str,
        build: Callable[[int], M],
        file: str | None = None,
        exclude: Exclude = None,
    ) -> M:
        """Claim the next free number under ``folder`` for ``build(number)``; return it.

        Numbers are ``<folder>/<n>.json`` objects, or ``<folder>/<n>/<file>`` ones. Whoever
        claims a number first has it; a writer that loses builds again for the next one
        (``build`` may read what changed meanwhile).
        """
        while True:
            number = max(self.numbers(folder, file), default=0) + 1
            record = build(number)
            try:
                self.claim(self.numbered(folder, number, file), record, exclude)
            except AlreadyExistsError:
                continue
            return record

    @staticmethod
    def numbered(folder: str, number: int, file: str | None = None) -> str:
        return f"{folder}/{number}/{file}" if file else f"{folder}/{number}.json"

    def numbers(self, folder: str, file: str | None = None) -> list[int]:
        """The numbers claimed under ``folder`` (see ``claim_next``), sorted."""
        found = sorted(
            int(entry.removesuffix(".json"))
            for entry in self.store.list(folder)
            if entry.removesuffix(".json").isdigit()
        )
        if file is None:
            return found
        return [n for n in found if self.store.exists(self.numbered(folder, n, file))]

    def names_under(self, folder: str, marker: str) -> list[str]:
        """The entries of ``folder`` that hold ``marker`` (a record that exists), sorted."""
        return [n for n in self.store.list(folder) if self.store.exists(f"{folder}/{n}/{marker}")]

    def publish(self, key: str, record: BaseModel, exclude: Exclude = None) -> str:
        """Write ``record`` to ``key`` whole, replacing what was there."""
        return self.store.write_json(key, _body(record, exclude))

    def read(self, key: str, model: type[M]) -> M:
        """The record at ``key``.

        Raises:
            NotFoundError: there is none.
            StoreError: what is there is not a valid ``model`` (the message says why).
        """
        return self.parse(key, self.store.read_bytes(key), model)

    def find(self, key: str, model: type[M]) -> M | None:
        """The record at ``key`` if it is published, else None."""
        try:
            return self.read(key, model)
        except NotFoundError:
            return None

    def parse(self, key: str, raw: bytes, model: type[M]) -> M:
        """``raw`` (the bytes at ``key``) as a ``model``."""
        try:
            return model.model_validate_json(raw)
        except ValidationError as exc:
            problems = describe_invalid(exc)
            url = self.store.url(key)
            raise StoreError(f"{url} is not a valid {model.__name__}: {problems}") from None
