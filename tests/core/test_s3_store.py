"""The store on S3, against moto in server mode: the same guarantees as on a local folder,
through s3fs as against AWS."""

from __future__ import annotations

import os

import boto3
import pytest

from core.errors import AlreadyExistsError, NotFoundError
from core.store import Store
from tests.helpers import in_threads


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
