"""The UCI bank-marketing data set: its raw schema and the demo's cleaning recipe."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from algorithms.schema import FeatureSchema, Indicator, RawColumn, check_columns, check_levels
from core.errors import SchemaError

CSV_MEMBER = "bank-additional-full.csv"
LABEL = "y"
_YES_NO = ["no", "yes", "unknown"]

# The 21 columns with the category levels that bank-additional-names.txt documents (the data
# lacks some of them, January for one: levels come from here, never from the data).
RAW_COLUMNS: list[RawColumn] = [
    RawColumn(name="age", kind="numeric"),
    RawColumn(
        name="job",
        kind="categorical",
        levels=[
            "admin.", "blue-collar", "entrepreneur", "housemaid", "management", "retired",
            "self-employed", "services", "student", "technician", "unemployed", "unknown",
        ],
    ),
    RawColumn(name="marital", kind="categorical",
              levels=["divorced", "married", "single", "unknown"]),
    RawColumn(
        name="education",
        kind="categorical",
        levels=[
            "basic.4y", "basic.6y", "basic.9y", "high.school", "illiterate",
            "professional.course", "university.degree", "unknown",
        ],
    ),
    RawColumn(name="default", kind="categorical", levels=_YES_NO),
    RawColumn(name="housing", kind="categorical", levels=_YES_NO),
    RawColumn(name="loan", kind="categorical", levels=_YES_NO),
    RawColumn(name="contact", kind="categorical", levels=["cellular", "telephone"]),
    RawColumn(
        name="month",
        kind="categorical",
        levels=["jan", "feb", "mar", "apr", "may", "jun",
                "jul", "aug", "sep", "oct", "nov", "dec"],
    ),
    RawColumn(name="day_of_week", kind="categorical", levels=["mon", "tue", "wed", "thu", "fri"]),
    RawColumn(name="duration", kind="numeric"),
    RawColumn(name="campaign", kind="numeric"),
    RawColumn(name="pdays", kind="numeric"),
    RawColumn(name="previous", kind="numeric"),
    RawColumn(name="poutcome", kind="categorical", levels=["failure", "nonexistent", "success"]),
    RawColumn(name="emp.var.rate", kind="numeric"),
    RawColumn(name="cons.price.idx", kind="numeric"),
    RawColumn(name="cons.conf.idx", kind="numeric"),
    RawColumn(name="euribor3m", kind="numeric"),
    RawColumn(name="nr.employed", kind="numeric"),
]  # fmt: skip
LABEL_COLUMN = RawColumn(name=LABEL, kind="categorical", levels=["no", "yes"])
# One raw record, as a client would send it (the endpoint encodes it with the saved schema).
EXAMPLE_RECORD = {
    "age": 41, "job": "admin.", "marital": "married", "education": "university.degree",
    "default": "no", "housing": "yes", "loan": "no", "contact": "cellular", "month": "may",
    "day_of_week": "thu", "duration": 0, "campaign": 1, "pdays": 999, "previous": 0,
    "poutcome": "nonexistent", "emp.var.rate": -1.8, "cons.price.idx": 92.893,
    "cons.conf.idx": -46.2, "euribor3m": 1.299, "nr.employed": 5099.1,
}  # fmt: skip
ECONOMIC = ["emp.var.rate", "cons.price.idx", "cons.conf.idx", "euribor3m", "nr.employed"]


class CleanOptions(BaseModel):
    """How raw records become features."""

    drop_duration: bool = Field(
        True, description="drop 'duration' (known only after the call: it leaks the label)"
    )
    drop_economic: bool = Field(
        False, description="drop the five economic indicators, as SageMaker's demo did"
    )


def feature_schema(options: CleanOptions) -> FeatureSchema:
    """The demo's features: indicators for 'no previous contact' and 'not working', one-hots."""
    dropped = set(ECONOMIC if options.drop_economic else []) | (
        {"duration"} if options.drop_duration else set()
    )
    return FeatureSchema(
        columns=[c for c in RAW_COLUMNS if c.name not in dropped],
        indicators=[
            Indicator(name="no_previous_contact", column="pdays", values=[999]),
            Indicator(
                name="not_working", column="job", values=["student", "retired", "unemployed"]
            ),
        ],
        label=LABEL,
        positive_label="yes",
    )


def read_raw(csv: bytes, member: str = CSV_MEMBER) -> pd.DataFrame:
    """Parse the semicolon-separated CSV and check it has exactly the 21 columns plus the label.

    Raises:
        SchemaError: malformed CSV, or missing or unexpected columns; names the member.
    """
    try:
        frame = pd.read_csv(io.BytesIO(csv), sep=";", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise SchemaError(f"{member}: malformed CSV: {exc}") from None
    check_columns(list(frame.columns), [c.name for c in [*RAW_COLUMNS, LABEL_COLUMN]], member)
    return frame


def clean(
    csv: bytes, options: CleanOptions, member: str = CSV_MEMBER
) -> tuple[pd.DataFrame, FeatureSchema]:
    """Validate every value of the raw CSV, then encode it as the demo did.

    Returns:
        A frame with the label column ``y`` (1.0 for "yes") first, then the schema's features,
        and the schema itself.

    Raises:
        SchemaError: naming the member, the column, the row (a line of the file) and the value.
    """
    raw = read_raw(csv, member)
    schema = feature_schema(options)
    try:
        # Every raw column is checked, dropped ones too: a bad file is bad whatever we keep.
        full = FeatureSchema(columns=RAW_COLUMNS)
        full.encode(raw, first_row=2)  # row numbers as lines of the file (line 1: header)
        label = check_levels(raw[LABEL], LABEL_COLUMN, first_row=2)
        features = schema.encode(raw, first_row=2)
    except SchemaError as exc:
        raise SchemaError(f"{member}: {exc} (rows are lines of the file)") from None
    features.insert(0, LABEL, (label == "yes").to_numpy(dtype=np.float32))
    return features.reset_index(drop=True), schema
