"""The whole pipeline (datasets, jobs, registry, endpoint configs, cached results, the
endpoint's models) with ``--store s3://...``, against moto in server mode, through boto3 and
s3fs as against AWS."""

from __future__ import annotations

import json

import boto3
import httpx

from core.records.endpoints import EndpointStore
from core.records.registry import Approval, ModelRegistry
from core.store import Store
from flows.cli import main as cli
from serving.control import servers
from tests.helpers import pipeline_process

SHA = "e689f38cc6bd689f64f031e7a1fbe0849aabb7ad57544fc75068e30129bbd514"


def test_the_whole_pipeline_on_an_s3_store(prefect_server, http_root, bucket, tmp_path):
    """All eight steps with ``--store s3://...``: nothing of the run lands on local disk but
    the endpoint's runtime state, and the endpoint loads its config and model from S3."""
    store_url = f"{bucket}/skiff"
    summary_file = tmp_path / "summary.json"
    source = f"{http_root[1]}/bank-additional.zip"
    arguments = f"--source {source} --sha256 {SHA} --store {store_url} --num-round 30"
    proc = pipeline_process(prefect_server, tmp_path, f"{arguments} --summary-json {summary_file}")
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
