"""One trained store for every serving test: the models of ``SERVED_MODELS``, trained once
on a slice of the real CSV, the erratic and sleepy ones approved by hand."""

from __future__ import annotations

import pytest

from core.records.registry import Approval, ModelRegistry
from tests.serving_fixtures import ERRATIC, SERVED_MODELS, SLEEPY, bank_store


@pytest.fixture(scope="session")
def models(tmp_path_factory, csv_bytes):
    """(store, features, validation rows) of the serving tests' models."""
    store, features, test = bank_store(tmp_path_factory.mktemp("served"), csv_bytes, SERVED_MODELS)
    registry = ModelRegistry(store)
    for version, why in ((ERRATIC, "canary"), (SLEEPY, "slow")):
        registry.set_approval("bank-marketing", version, Approval.APPROVED, by="test", reason=why)
    return store, features, test
