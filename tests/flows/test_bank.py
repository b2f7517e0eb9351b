"""Cleaning the bank CSV: validation messages and the demo's transform."""

import numpy as np
import pandas as pd
import pytest

from core.errors import SchemaError
from flows.bank import ECONOMIC, CleanOptions, clean, feature_schema


def _with_line(csv: bytes, line: int, column: str, value: str) -> bytes:
    """The CSV with one field replaced (``line`` counts from 1, the header)."""
    lines = csv.decode().splitlines()
    header = [h.strip('"') for h in lines[0].split(";")]
    fields = lines[line - 1].split(";")
    fields[header.index(column)] = value
    lines[line - 1] = ";".join(fields)
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(scope="module")
def cleaned(csv_bytes):
    return clean(csv_bytes, CleanOptions())


def test_clean_keeps_every_row_with_demo_features(cleaned):
    table, schema = cleaned
    assert len(table) == 41188
    assert table.columns[0] == "y"
    assert list(table.columns[1:]) == schema.features
    assert table["y"].mean() == pytest.approx(4640 / 41188)
    assert "duration" not in schema.features
    assert set(ECONOMIC) <= set(schema.features)
    assert table.dtypes.eq(np.float32).all()


def test_indicators_match_the_demo(csv_bytes, cleaned):
    table, _ = cleaned
    raw = pd.read_csv(__import__("io").BytesIO(csv_bytes), sep=";")
    assert (table["no_previous_contact"] == (raw["pdays"] == 999)).all()
    not_working = raw["job"].isin(["student", "retired", "unemployed"])
    assert (table["not_working"] == not_working).all()


def test_levels_come_from_the_schema_not_the_data(cleaned):
    table, schema = cleaned
    # January and February never occur in the data, yet they are features: a model's inputs
    # must not depend on which values one file happens to hold.
    assert "month_jan" in schema.features and table["month_jan"].sum() == 0
    assert len([f for f in schema.features if f.startswith("job_")]) == 12


def test_options_change_the_features():
    with_duration = feature_schema(CleanOptions(drop_duration=False)).features
    no_economic = feature_schema(CleanOptions(drop_economic=True)).features
    assert "duration" in with_duration
    assert not set(ECONOMIC) & set(no_economic)


@pytest.mark.parametrize(
    ("line", "column", "value", "message"),
    [
        (5, "age", "forty", r"column 'age', row 5: 'forty' is not a number"),
        # A column the features drop is checked all the same: a bad file is bad.
        (7, "duration", "", r"column 'duration', row 7: '' is not a number"),
        (3, "marital", '"complicated"',
         r"column 'marital', row 3: unknown category 'complicated'; expected one of divorced"),
        (9, "y", '"maybe"', r"column 'y', row 9: unknown category 'maybe'"),
    ],
)  # fmt: skip
def test_a_bad_value_is_named_by_column_line_and_value(csv_bytes, line, column, value, message):
    with pytest.raises(SchemaError, match=message):
        clean(_with_line(csv_bytes, line, column, value), CleanOptions())


def test_missing_and_unexpected_columns_are_named(csv_bytes):
    frame = pd.read_csv(__import__("io").BytesIO(csv_bytes), sep=";", nrows=20)
    renamed = frame.drop(columns=["euribor3m"]).assign(bonus=1)
    data = renamed.to_csv(sep=";", index=False).encode()
    with pytest.raises(
        SchemaError, match=r"missing column\(s\) 'euribor3m'; unexpected column\(s\) 'bonus'"
    ):
        clean(data, CleanOptions())


def test_malformed_csv_is_named(csv_bytes):
    lines = csv_bytes.decode().splitlines()[:10]
    lines[4] += ';"extra";"fields"'
    with pytest.raises(SchemaError, match=r"bank-additional-full.csv: malformed CSV: .*line 5"):
        clean("\n".join(lines).encode(), CleanOptions())


def test_empty_file_is_named():
    with pytest.raises(SchemaError, match="malformed CSV"):
        clean(b"", CleanOptions())
