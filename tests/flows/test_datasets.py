"""Splitting and publishing datasets."""

import numpy as np
import pandas as pd
import pytest

from algorithms.schema import FeatureSchema, RawColumn
from core.errors import SchemaError, StoreError
from flows.datasets import (
    check_intact,
    check_trainable,
    corruption,
    dataset_id,
    find_dataset,
    publish,
    split,
)


def _frame(n: int = 1000) -> pd.DataFrame:
    return pd.DataFrame({"y": np.arange(n) % 2, "x": np.arange(n, dtype=float)})


def test_random_split_is_exactly_the_demos():
    frame = _frame()
    ours = split(frame, "random", 1729)
    # SageMaker's demo (np.split of the shuffled frame; numpy 2 splits its values):
    shuffled = frame.sample(frac=1, random_state=1729).to_numpy()
    parts = np.split(shuffled, [int(0.7 * len(frame)), int(0.9 * len(frame))])
    for got, want in zip(ours.values(), parts, strict=True):
        assert got.to_numpy().tolist() == want.tolist()
    assert [len(v) for v in ours.values()] == [700, 200, 100]


def test_time_split_keeps_order_and_tests_on_the_latest():
    ours = split(_frame(), "time")
    assert ours["train"]["x"].max() < ours["validation"]["x"].min()
    assert ours["validation"]["x"].max() < ours["test"]["x"].min()
    assert ours["test"]["x"].iloc[-1] == 999


def test_dataset_id_follows_archive_and_options():
    a = dataset_id("abc", {"split": "random", "split_seed": 1})
    assert a == dataset_id("abc", {"split_seed": 1, "split": "random"})
    assert a != dataset_id("abc", {"split": "time", "split_seed": 1})
    assert a != dataset_id("abd", {"split": "random", "split_seed": 1})


def test_publish_writes_manifest_last_and_is_found(store):
    schema = FeatureSchema(columns=[RawColumn(name="x", kind="numeric")], label="y")
    parts = split(_frame(), "random", 1)
    assert find_dataset(store, "d1") is None
    ds = publish(store, "d1", parts, schema, source="s", archive_sha256="h", options={})
    assert find_dataset(store, "d1") == ds
    assert ds.splits["train"].rows == 700
    assert ds.splits["test"].positive_rate == pytest.approx(parts["test"]["y"].mean())
    assert pd.read_parquet(ds.splits["validation"].url).equals(parts["validation"])


def test_dataset_without_manifest_is_not_trusted(store):
    """A crash after the Parquet files but before the manifest leaves no visible dataset."""
    store.write_bytes("datasets/d2/train.parquet", b"partial")
    assert find_dataset(store, "d2") is None


def test_splits_too_small_or_of_one_label_are_refused():
    check_trainable(split(_frame(100)), "y")  # both labels everywhere: fine
    with pytest.raises(SchemaError, match="the train split has no rows: the data has 0 row"):
        check_trainable(split(_frame(0)), "y")
    one_label = split(_frame(100).assign(y=0))
    with pytest.raises(SchemaError, match=r"the train split's 70 row\(s\) are all negative"):
        check_trainable(one_label, "y")


def test_a_corrupt_dataset_is_named(store):
    schema = FeatureSchema(columns=[RawColumn(name="x", kind="numeric")], label="y")
    ds = publish(store, "d3", split(_frame()), schema, source="s", archive_sha256="h", options={})
    assert corruption(store, ds) is None
    store.write_bytes("datasets/d3/validation.parquet", b"other bytes")
    assert corruption(store, ds) == "dataset d3's validation split does not match its checksum"
    with pytest.raises(SchemaError, match="does not match its checksum: not training on it"):
        check_intact(store, ds)
    store.write_bytes("datasets/d3/manifest.json", b"[1, 2")
    assert "d3/manifest.json is not a valid Dataset" in corruption(store, ds)
    with pytest.raises(StoreError, match="is not a valid Dataset"):
        find_dataset(store, "d3")
    rebuilt = publish(
        store,
        "d3",
        split(_frame()),
        schema,
        source="s",
        archive_sha256="h",
        options={},
        replace=True,
    )
    assert corruption(store, rebuilt) is None
