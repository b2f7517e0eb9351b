"""The store on S3, against moto in server mode: the same guarantees as on a local folder,
and the whole pipeline (datasets, jobs, registry, endpoint configs, cached results, the
endpoint's models) with ``--store s3://...``, through boto3 and s3fs as against AWS."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import boto3
import httpx
import pytest

from core.errors import AlreadyExistsError, NotFoundError
from core.records.endpoints import EndpointStore
from core.records.registry import Approval, ModelRegistry
from core.store import Store
from flows.cli import main as cli
from serving.control import servers
from tests.conftest import ROOT, in_threads

SHA = "e689f38cc6bd689f64f031e7a1fbe0849aabb7ad57544fc75068e30129bbd514"


def test_store_primitives_on_s3(bucket, tmp_path):
    store = Store(f"{bucket}/prefix")
    store.ensure_layout()
    assert store.root == f"{bucket}/prefix" and not store.is_local
    url = store.write_bytes("a/b.json", b'{"x": 1}')
    assert url == f"{bucket}/prefix/a/b.json" and store.read_json("a/b.json") == {"x": 1}
    assert store.list("a") == ["b.json"] and store.exists("a/b.json")
    store.create_exclusive("claims/1.json", b"first")
    with pytest.raises(AlreadyExistsError):  # If-None-Match: * on the PUT
        store.create_exclusive("claims/1.json", b"second")
    assert store.read_bytes("claims/1.json") == b"first"  # never overwritten
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(6 * 1024 * 1024))  # a multipart-sized upload
    store.upload_file(big, "models/big.bin")
    assert store.read_bytes("models/big.bin") == big.read_bytes()
    store.delete("a/b.json")
    with pytest.raises(NotFoundError):
        store.read_bytes("a/b.json")
    objects = boto3.client("s3").list_objects_v2(Bucket=bucket[5:], Prefix="prefix/")
    assert {o["Key"] for o in objects["Contents"]} >= {
        "prefix/skiff-store.json",
        "prefix/claims/1.json",
    }


def test_concurrent_claims_on_s3_get_distinct_numbers(bucket):
    store = Store(bucket)
    winners: list[int] = []

    def claim(n: int) -> None:
        for number in range(1, 20):
            try:
                store.create_exclusive(f"versions/{number}.json", str(n).encode())
            except AlreadyExistsError:
                continue
            winners.append(number)
            return

    in_threads(claim, 6)
    assert sorted(winners) == [1, 2, 3, 4, 5, 6]


def test_the_whole_pipeline_on_an_s3_store(prefect_server, http_root, bucket, tmp_path):
    """All eight steps with ``--store s3://...``: nothing of the run lands on local disk but
    the endpoint's runtime state, and the endpoint loads its config and model from S3."""
    store_url = f"{bucket}/skiff"
    summary_file = tmp_path / "summary.json"
    env = os.environ | {"PREFECT_API_URL": prefect_server, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "flows.bank_marketing",
            "--source",
            f"{http_root[1]}/bank-additional.zip",
            "--sha256",
            SHA,
            "--store",
            store_url,
            "--num-round",
            "30",
            "--summary-json",
            str(summary_file),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(summary_file.read_text())
    try:
        assert summary["metrics"]["auc"] > 0.78
        store = Store(store_url)
        version = ModelRegistry(store).get("bank-marketing", 1)
        assert version.approval_status == Approval.APPROVED
        assert version.artifact_url.startswith(f"{store_url}/jobs/")
        assert EndpointStore(store).current("bank-marketing").variants[0].model_version == 1
        assert summary["evaluation_url"].startswith(f"{store_url}/runs/")
        keys = {
            o["Key"]
            for o in boto3.client("s3").list_objects_v2(Bucket=bucket[5:], Prefix="skiff/")[
                "Contents"
            ]
        }
        for part in ("datasets/", "jobs/", "registry/", "endpoints/", "cache/", "raw/"):
            assert any(k.startswith(f"skiff/{part}") for k in keys), part
        assert not list(tmp_path.glob("**/*.parquet"))  # nothing of the run on local disk
        server = servers.running(store, "bank-marketing")
        assert server is not None and httpx.get(f"{server.url}/ping").status_code == 200
    finally:
        assert cli(["--store", store_url, "endpoints", "delete", "bank-marketing"]) == 0
