"""A store written by the code before the re-layout (main at 359ce96) still works.

``tests/fixtures/legacy-store/bucket`` holds every object that code wrote to an S3 bucket
(moto), less the Parquet tables: three training jobs (local, dask, and an ec2 job's record as
that backend writes it before launching), their models and manifests, two registered versions
with approval history, a dataset manifest, and an endpoint with three configs. ``server/``
holds the state file and the ``/skiff/status`` document of an endpoint server that code ran.
On S3 the store's URLs are the same on every machine, so the records are read as written.
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import httpx
import pytest

from core.records.endpoints import EndpointStore
from core.records.jobs import JobStore, Status
from core.records.manifest import MANIFEST_FILE, ModelManifest
from core.records.registry import Approval, ModelRegistry
from core.store import Store
from flows.cli import main as cli
from flows.datasets import find_dataset
from serving.contract import ServerState, ServerStatus
from serving.control import servers

LEGACY = Path(__file__).parents[1] / "fixtures/legacy-store"
BUCKET = "skiff-legacy"


@pytest.fixture(scope="module")
def legacy(aws: str) -> Store:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    for path in sorted((LEGACY / "bucket").rglob("*")):
        if path.is_file():
            key = path.relative_to(LEGACY / "bucket").as_posix()
            s3.put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes())
    return Store(f"s3://{BUCKET}/store")


def test_every_record_reads_as_written(legacy):
    legacy.ensure_layout()  # the layout version is unchanged: no migration
    jobs = JobStore(legacy)
    assert jobs.names() == ["legacy-dask", "legacy-ec2", "legacy-local"]
    for name in jobs.names():
        spec, stored = jobs.spec(name), legacy.read_json(jobs.key(name, "job.json"))
        # Nothing lost or changed (fields added since, such as content_types, stay unset).
        assert json.loads(json.dumps(spec.model_dump(exclude_unset=True))) == stored
    assert jobs.status("legacy-local").status == Status.COMPLETED
    assert jobs.status("legacy-ec2").status == Status.PENDING
    dask = jobs.spec("legacy-dask").resources
    assert (dask.cluster, dask.workers, dask.connect_timeout) == ("LocalCluster 1×1", 1, 10)
    ec2 = jobs.spec("legacy-ec2").resources
    assert (ec2.instance_count, ec2.region, ec2.threads) == (2, "us-east-1", 0)  # 0: the default
    for name in ("legacy-local", "legacy-dask"):
        manifest = jobs.read(jobs.output_key(name, MANIFEST_FILE), ModelManifest)
        assert manifest.job_name == name and manifest.history["validation_auc"]
        stored = legacy.read_json(jobs.output_key(name, MANIFEST_FILE))
        assert manifest.model_dump(exclude_unset=True) == stored  # nothing lost or changed

    registry = ModelRegistry(legacy)
    assert registry.groups() == ["legacy"] and registry.versions("legacy") == [1, 2]
    v2 = registry.get("legacy", 2)
    assert v2.approval_status == Approval.APPROVED and v2.job_name == "legacy-dask"
    assert [(c.status, c.by) for c in v2.approval_history] == [
        (Approval.PENDING, "skiff"),
        (Approval.APPROVED, "ana"),
    ]
    registry.read_artifact(v2.artifact_url, v2.artifact_sha256)  # checksum still matches

    configs = EndpointStore(legacy)
    assert configs.names() == ["legacy-endpoint"]
    assert [c.number for c in configs.history("legacy-endpoint")] == [1, 2, 3]
    current = configs.current("legacy-endpoint")
    assert [(v.name, v.weight) for v in current.variants] == [("v1", 0.7), ("v2", 0.3)]

    dataset = find_dataset(legacy, "0123456789abcdef")
    assert dataset is not None and set(dataset.splits) == {"train", "validation", "test"}


def test_the_commands_read_it(legacy, capsys):
    for area in ("jobs", "models", "endpoints"):
        assert cli(["--store", legacy.root, area, "list"]) == 0
        assert "legacy" in capsys.readouterr().out
    describe = ["--store", legacy.root, "models", "describe", "2", "--group", "legacy"]
    assert cli(describe) == 0
    assert capsys.readouterr().out.startswith("legacy version 2 (Approved)\n")
    assert cli([*describe, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["approval_status"] == "Approved"


def test_its_endpoint_serves_both_legacy_models(legacy):
    server = servers.start(legacy, "legacy-endpoint")
    try:
        seen = set()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for target in ("v1", "v2"):
                r = client.post(
                    "/invocations",
                    content="0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8\n",
                    headers={"Content-Type": "text/csv", "X-Amzn-SageMaker-Target-Variant": target},
                )
                assert r.status_code == 200, r.text
                assert 0 < float(r.text) < 1
                seen.add(r.headers["x-amzn-invoked-production-variant"])
        assert seen == {"v1", "v2"}
    finally:
        servers.stop(legacy, "legacy-endpoint")


def test_a_server_started_before_is_still_understood():
    """The state file and status document of a server the earlier code ran: the commands read
    both through the contract's models, with nothing lost."""
    state = json.loads((LEGACY / "server/state.json").read_text())
    assert ServerState.model_validate(state).model_dump(exclude_unset=True) == state
    status = json.loads((LEGACY / "server/status.json").read_text())
    parsed = ServerStatus.model_validate(status)
    assert parsed.model_dump(exclude_unset=True) == status  # fields added since stay unset
    assert parsed.serves(2) and not parsed.serves(3) and not parsed.rejected(1)
