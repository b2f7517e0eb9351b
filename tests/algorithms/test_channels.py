"""SageMaker's channel formats as the job's runner reads them: CSV (no header, label first),
libsvm and Parquet, one object or every object under a prefix."""

from __future__ import annotations

import gzip
import io
import tarfile

import numpy as np
import pandas as pd
import pytest

from algorithms.archive import archive_bytes, read_model_archive
from algorithms.channels import read_channel
from core.errors import AlgorithmError, SchemaError


def test_csv_under_a_prefix_reads_every_object_in_order(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train/part-0.csv").write_text("1,0.5,2\n0,0.25,3\n")
    (tmp_path / "train/part-1.csv").write_text("1,0.75,1\n")
    (tmp_path / "train/_SUCCESS").write_text("")  # what Spark leaves: not data
    (tmp_path / "train/.hidden").write_text("nonsense")
    (tmp_path / "train-extra.csv").write_text("0,1,1\n")  # a key prefix matches it too
    frame = read_channel("train", f"file://{tmp_path}/train/", "text/csv")
    assert list(frame.columns) == ["label", "f0", "f1"]
    assert frame["f0"].tolist() == [0.5, 0.25, 0.75]
    assert len(read_channel("train", f"file://{tmp_path}/train", "csv")) == 4


@pytest.mark.parametrize(
    ("text", "wording"),
    [
        ("y,a,b\n1,2,3\n", r"row 1, column 1 is 'y', not a number \(a header\? SageMaker's CSV has none\)"),
        ("1,2,3\n0,yes,3\n", r"row 2, column 2 is 'yes', not a number"),
        ("1\n0\n", r"one column only: CSV rows are the label, then the features"),
    ],
)  # fmt: skip
def test_a_malformed_csv_is_named_with_its_row_and_column(tmp_path, text, wording):
    (tmp_path / "bad.csv").write_text(text)
    with pytest.raises(SchemaError, match=r"channel 'train': file://.*bad.csv: " + wording):
        read_channel("train", str(tmp_path / "bad.csv"), "csv")


def test_csv_objects_of_different_widths_are_refused(tmp_path):
    (tmp_path / "a.csv").write_text("1,2,3\n")
    (tmp_path / "b.csv").write_text("1,2\n")
    with pytest.raises(SchemaError, match=r"b.csv has 2 columns, the channel's first object 3"):
        read_channel("train", str(tmp_path), "csv")


def test_libsvm_rows_are_sparse_and_validation_takes_trains_width(tmp_path):
    (tmp_path / "train.libsvm").write_text("1 0:0.5 3:1\n0 1:2 # a comment\n")
    (tmp_path / "validation.libsvm").write_text("1 1:4\n")
    train = read_channel("train", str(tmp_path / "train.libsvm"), None)  # libsvm by default
    assert list(train.columns) == ["label", "f0", "f1", "f2", "f3"]
    assert np.isnan(train.loc[0, "f1"]) and train.loc[0, "f3"] == 1  # absent: missing
    like = ("label", ["f0", "f1", "f2", "f3"])
    validation = read_channel(
        "validation", str(tmp_path / "validation.libsvm"), "libsvm", None, like
    )
    assert list(validation.columns) == ["label", *like[1]] and validation.loc[0, "f1"] == 4
    (tmp_path / "wide.libsvm").write_text("1 9:1\n")
    with pytest.raises(SchemaError, match=r"feature index\(es\) 9 beyond the train channel's 4"):
        read_channel("validation", str(tmp_path / "wide.libsvm"), "libsvm", None, like)
    (tmp_path / "bad.libsvm").write_text("1 0:0.5\n1 zero:1\n")
    with pytest.raises(SchemaError, match=r"bad.libsvm line 2: '1 zero:1' is not libsvm"):
        read_channel("train", str(tmp_path / "bad.libsvm"), "text/libsvm")


def test_parquet_takes_its_label_column_else_the_first(tmp_path):
    pd.DataFrame({"x": [1.0, 2.0], "label": [0, 1]}).to_parquet(tmp_path / "named.parquet")
    pd.DataFrame({"y": [0, 1], "x": [1.0, 2.0]}).to_parquet(tmp_path / "first.parquet")
    assert list(read_channel("t", str(tmp_path / "named.parquet"), "application/x-parquet")) == [
        "label",
        "x",
    ]
    assert list(read_channel("t", str(tmp_path / "first.parquet"), "application/x-parquet")) == [
        "y",
        "x",
    ]


def test_unreadable_formats_and_missing_data_are_named(tmp_path):
    with pytest.raises(SchemaError, match=r"RecordIO-protobuf is not supported"):
        read_channel("train", str(tmp_path), "application/x-recordio-protobuf")
    with pytest.raises(SchemaError, match=r"only label_size=1 is supported"):
        read_channel("train", str(tmp_path), "text/csv;label_size=0")
    with pytest.raises(SchemaError, match=r"channel 'train': no data at .*nothing-here"):
        read_channel("train", str(tmp_path / "nothing-here"), "csv")


def test_a_model_archive_holds_xgboost_model_and_refuses_the_legacy_format():
    model = b'{"learner": {}, "version": [3, 2, 0]}'
    assert read_model_archive(archive_bytes(model), "model.tar.gz") == model
    legacy = io.BytesIO()
    with tarfile.open(fileobj=legacy, mode="w:gz") as tar:
        data = b"binf" + bytes(200) + b"gbtree"
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(AlgorithmError, match=r"legacy binary format.*re?-?save|save it again"):
        read_model_archive(legacy.getvalue(), "s3://b/model.tar.gz")
    with pytest.raises(AlgorithmError, match=r"is not a model.tar.gz"):
        read_model_archive(gzip.compress(b"not a tar"), "s3://b/model.tar.gz")
