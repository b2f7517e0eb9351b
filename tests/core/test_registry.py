"""The model registry: numbering, idempotence, concurrency, crash safety, approval."""

from __future__ import annotations

import hashlib
import multiprocessing

import pytest

from core.errors import RegistryError, VersionNotFound
from core.records.manifest import ModelManifest
from core.records.registry import Approval, ModelRegistry
from core.store import Store

GROUP = "bank-marketing"


def fake_model(store: Store, job: str, content: bytes) -> tuple[ModelManifest, str]:
    """A job output as the runner leaves it: the model, then its manifest."""
    url = store.write_bytes(f"jobs/{job}/output/model.ubj", content)
    manifest = ModelManifest(
        model_file="model.ubj", model_url=url, sha256=hashlib.sha256(content).hexdigest(),
        predictor="xgboost", label="y", algorithm="xgboost", hyperparameters={"max_depth": 5},
        metrics={"validation_auc": 0.8}, dataset_id="d1", job_name=job, features=["a", "b"],
        feature_schema={"columns": []}, provenance={"python": "3"},
    )  # fmt: skip
    manifest_url = store.write_json(f"jobs/{job}/output/model.json", manifest.model_dump())
    return manifest, manifest_url


def test_versions_count_up_and_keep_lineage(store):
    registry = ModelRegistry(store)
    v1 = registry.register(GROUP, *fake_model(store, "j1", b"one"), Approval.APPROVED)
    v2 = registry.register(GROUP, *fake_model(store, "j2", b"two"), Approval.PENDING)
    assert (v1.version, v2.version) == (1, 2)
    assert v2.job_name == "j2" and v2.dataset_id == "d1" and v2.metrics["validation_auc"] == 0.8
    assert v2.approval_status == Approval.PENDING
    assert registry.latest(GROUP).version == 2
    assert registry.latest(GROUP, approved_only=True).version == 1


def test_registering_the_same_artifact_returns_its_version(store):
    registry = ModelRegistry(store)
    first = registry.register(GROUP, *fake_model(store, "j1", b"same"), Approval.APPROVED)
    again = registry.register(GROUP, *fake_model(store, "j2", b"same"), Approval.APPROVED)
    assert again.version == first.version == 1
    assert registry.versions(GROUP) == [1]


def _register_in_process(args: tuple[str, int]) -> int:
    root, i = args
    store = Store(root)
    meta = fake_model(store, f"job{i}", f"model {i}".encode())
    return ModelRegistry(store).register(GROUP, *meta, Approval.PENDING).version


def test_concurrent_registrations_never_share_a_version(store):
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        versions = pool.map(_register_in_process, [(store.root, i) for i in range(8)])
    assert sorted(versions) == list(range(1, 9))
    registry = ModelRegistry(store)
    assert {registry.get(GROUP, v).job_name for v in versions} == {f"job{i}" for i in range(8)}


def test_half_registered_version_is_invisible(store):
    """A crash before version.json was written leaves nothing visible; after it, a safe default."""
    registry = ModelRegistry(store)
    store.write_json(f"registry/{GROUP}/1/approval.json", {"status": "Approved", "history": []})
    assert registry.versions(GROUP) == []
    v = registry.register(GROUP, *fake_model(store, "j1", b"m"), Approval.APPROVED)
    assert v.version == 1  # the half version's number was free
    store.delete(f"registry/{GROUP}/1/approval.json")  # crash between the two writes
    assert registry.get(GROUP, 1).approval_status == Approval.PENDING


def test_approval_history(store):
    registry = ModelRegistry(store)
    registry.register(GROUP, *fake_model(store, "j1", b"m"), Approval.PENDING)
    registry.set_approval(GROUP, 1, Approval.APPROVED, by="ana", reason="looks good")
    v = registry.set_approval(GROUP, 1, Approval.REJECTED, by="bo", reason="drift")
    assert v.approval_status == Approval.REJECTED
    assert [(c.status, c.by) for c in v.approval_history] == [
        (Approval.PENDING, "skiff"),
        (Approval.APPROVED, "ana"),
        (Approval.REJECTED, "bo"),
    ]


def test_unknown_version_lists_the_versions(store):
    registry = ModelRegistry(store)
    registry.register(GROUP, *fake_model(store, "j1", b"m"), Approval.PENDING)
    with pytest.raises(VersionNotFound, match=r"has no version 7 \(versions: 1\)"):
        registry.set_approval(GROUP, 7, Approval.APPROVED)


def test_artifact_not_matching_its_checksum_is_refused(store):
    meta, url = fake_model(store, "j1", b"original")
    store.write_bytes("jobs/j1/output/model.ubj", b"tampered")
    with pytest.raises(RegistryError, match="does not match its recorded checksum"):
        ModelRegistry(store).register(GROUP, meta, url, Approval.APPROVED)
    assert ModelRegistry(store).versions(GROUP) == []


def test_bad_group_name_is_refused(store):
    with pytest.raises(RegistryError, match="model group name '../x' must be"):
        ModelRegistry(store).register("../x", *fake_model(store, "j1", b"m"), Approval.PENDING)
