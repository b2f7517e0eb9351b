"""The feature schema: which raw columns a model reads and how they become its features.

It is saved beside every model, so the model server can encode raw records exactly as the
training data was encoded, with category levels fixed by the schema rather than by whatever
values a particular batch happens to contain.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from core.errors import SchemaError


class RawColumn(BaseModel):
    """One column of the raw records: a number, or a category from a fixed list of levels."""

    name: str
    kind: Literal["numeric", "categorical"]
    levels: list[str] = Field(default_factory=list)


class Indicator(BaseModel):
    """A 0/1 feature: 1 where ``column`` takes one of ``values``."""

    name: str
    column: str
    values: list[str | float]


class FeatureSchema(BaseModel):
    """Raw columns in, ordered float features out.

    Feature order follows ``pandas.get_dummies`` (as SageMaker's demo used it): numeric
    columns, then indicators, then one ``<column>_<level>`` feature per categorical level.
    """

    columns: list[RawColumn]
    indicators: list[Indicator] = Field(default_factory=list)
    label: str | None = None
    positive_label: str | None = None

    @property
    def features(self) -> list[str]:
        numeric = [c.name for c in self.columns if c.kind == "numeric"]
        dummies = [
            f"{c.name}_{level}"
            for c in self.columns
            if c.kind == "categorical"
            for level in c.levels
        ]
        return numeric + [i.name for i in self.indicators] + dummies

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns]

    def encode(self, records: pd.DataFrame, first_row: int = 1) -> pd.DataFrame:
        """Validate raw records and return their features as a float32 frame.

        Args:
            records: raw records, one column per raw column (extra columns are ignored).
            first_row: the number reported for the first record in error messages.

        Raises:
            SchemaError: a column is missing, a number does not parse, or a category is unknown;
                the message names the column, the row and the value.
        """
        missing = [c for c in self.required_columns if c not in records.columns]
        if missing:
            raise SchemaError(f"missing column(s): {', '.join(missing)}")
        out: dict[str, np.ndarray] = {}
        for column in self.columns:
            if column.kind == "numeric":
                out[column.name] = to_numeric(records[column.name], column.name, first_row)
        for ind in self.indicators:
            if ind.column in out:  # a numeric column: compare numbers, whatever their spelling
                hit = np.isin(out[ind.column], np.asarray(ind.values, dtype=np.float32))
            else:
                hit = records[ind.column].astype(str).isin([str(v) for v in ind.values])
            out[ind.name] = np.asarray(hit, dtype=np.float32)
        for column in self.columns:
            if column.kind == "categorical":
                values = check_levels(records[column.name], column, first_row)
                for level in column.levels:
                    out[f"{column.name}_{level}"] = (values == level).to_numpy(dtype=np.float32)
        return pd.DataFrame(out, index=records.index)[self.features]


def to_numeric(values: pd.Series, column: str, first_row: int = 1) -> np.ndarray:
    """Parse a column as finite float32 numbers; the error names the first bad row and value."""
    parsed = pd.to_numeric(values, errors="coerce")
    bad = parsed.isna() | ~np.isfinite(parsed.astype("float64"))
    if bad.any():
        pos = int(np.flatnonzero(bad.to_numpy())[0])
        raise SchemaError(
            f"column {column!r}, row {first_row + pos}: {values.iloc[pos]!r} is not a number"
        )
    return parsed.to_numpy(dtype=np.float32)


def check_levels(values: pd.Series, column: RawColumn, first_row: int = 1) -> pd.Series:
    """Check every value is one of the column's levels; the error names the first that is not."""
    values = values.astype(str)
    bad = ~values.isin(column.levels)
    if bad.any():
        pos = int(np.flatnonzero(bad.to_numpy())[0])
        raise SchemaError(
            f"column {column.name!r}, row {first_row + pos}: unknown category "
            f"{values.iloc[pos]!r}; expected one of {', '.join(column.levels)}"
        )
    return values


def check_columns(found: Sequence[str], expected: Sequence[str], where: str) -> None:
    """Exactly the expected columns, in any order; the error names missing and unexpected ones."""
    missing = [c for c in expected if c not in found]
    extra = [c for c in found if c not in expected]
    problems = []
    if missing:
        problems.append(f"missing column(s) {', '.join(map(repr, missing))}")
    if extra:
        problems.append(f"unexpected column(s) {', '.join(map(repr, extra))}")
    if problems:
        raise SchemaError(f"{where}: {'; '.join(problems)}")
