"""Request bodies → feature rows. Every problem is a 4xx naming the row and column at fault.

CSV rows are encoded features in the schema's order (an empty field means missing). JSON is
``{"instances": [[...], ...]}`` (encoded rows, null for missing) or raw records: a record, a
list of them, or ``{"instances": [{...}, ...]}``, which the model's saved schema encodes.
"""

from __future__ import annotations

import io
import math
import re
from typing import Any

import numpy as np
import orjson
import pandas as pd

from algorithms.schema import FeatureSchema
from core.errors import BadRequest, SchemaError, UnsupportedMediaType

try:  # the C parser, built at install where a compiler is found (pyproject.toml)
    from serving.dataplane import _csv_rows
except ImportError:  # pragma: no cover - pandas and numpy read CSV instead
    _csv_rows = None

FLOAT32_MAX = float(np.finfo(np.float32).max)
SMALL = 64  # below this many rows, plain Python parsing beats pandas' fixed cost
CSV_TYPES = ("text/csv", "text/plain")
JSON_TYPES = ("application/json",)


def media_type(content_type: str | None) -> str:
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind not in CSV_TYPES + JSON_TYPES:
        raise UnsupportedMediaType(
            f"unsupported content type {content_type or '(none)'!r}; send text/csv or "
            "application/json"
        )
    return kind


# A number as CSV writes one: ASCII digits, a point, an exponent. Python's float() also takes
# "1_000" and other scripts' digits ("١"), which no other path does: one rule for all.
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
BOM = b"\xef\xbb\xbf"  # a UTF-8 byte order mark: spreadsheets write one; every path drops it


def _number(text: str, row: int, column: int) -> float:
    text = text.strip()
    if not text:
        return math.nan
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or (math.isfinite(value) and not _DECIMAL.fullmatch(text)):
        raise BadRequest(f"row {row}, column {column}: {text!r} is not a number")
    return _finite(value, text, row, column)


def _finite(value: float, shown: Any, row: int, column: int) -> float:
    if not math.isfinite(value) or abs(value) > FLOAT32_MAX:
        raise BadRequest(f"row {row}, column {column}: {shown!r} is not a finite float32 number")
    return value


def _slow_csv(lines: list[str]) -> np.ndarray:
    return np.array(
        [
            [_number(f, r, c) for c, f in enumerate(line.split(","), 1)]
            for r, line in enumerate(lines, 1)
        ],
        dtype=np.float32,
    )


def _small_csv(lines: list[str], n_features: int) -> np.ndarray:
    """A few rows: numpy converts the text in C, straight to float32 (a third faster than
    through float64); anything unusual (a missing field, a bad or non-finite value) goes to
    the exact path, which names the field at fault."""
    text = ",".join(lines)
    if " " in text or "\t" in text:  # numpy reads a field of only spaces as -1: not here
        return _slow_csv(lines)
    try:
        values = np.fromstring(text, dtype=np.float32, sep=",")
    except ValueError:  # an empty or bad field
        return _slow_csv(lines)
    # One check rejects nan, inf and what float32 cannot hold (it parsed as inf).
    if values.size != len(lines) * n_features or not np.isfinite(values).all():
        return _slow_csv(lines)
    return values.reshape(len(lines), n_features)


def parse_csv(body: bytes, n_features: int) -> np.ndarray:
    """CSV rows → float32 array (rows × ``n_features``). Every body size follows the same
    rules. A plainly well-formed body, of any size, is read in one pass by the C parser
    (``_csv_rows.c``); anything else takes the exact path, which names the row and column at
    fault or reads what is unusual but valid (where the C parser is not built, pandas reads
    large bodies and numpy small ones, by the same rules)."""
    body = body.removeprefix(BOM)
    if _csv_rows is not None:
        values = _csv_rows.parse(body, n_features)
        if values is not None:
            return np.frombuffer(values, dtype=np.float32).reshape(-1, n_features)
    # pandas would unquote "1" where the other paths refuse it, and end a line at a bare \r
    # where they end lines at \n only: such bodies take the exact path.
    if body.count(b"\n") > SMALL and b'"' not in body and _plain_line_ends(body):
        values = _large_csv(body, n_features)
        if values is not None:
            return values
        _check_widths(body, n_features)  # refused or unusual: name a ragged row, fast
    lines = _checked_lines(body, n_features)
    if len(lines) <= SMALL:
        return _small_csv(lines, n_features)
    return _slow_csv(lines)  # a large body the C parser refused: name the field at fault


def _checked_lines(body: bytes, n_features: int) -> list[str]:
    """The body's rows, each with ``n_features`` fields, or a 400 naming the row that isn't."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the CSV body is not UTF-8 text") from None
    lines = [line.rstrip("\r") for line in text.split("\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise BadRequest("empty request body: send one CSV row of features per line")
    for row, line in enumerate(lines, 1):
        count = line.count(",") + 1
        if count != n_features:
            raise BadRequest(f"row {row}: expected {n_features} features, got {count}")
    return lines


def _plain_line_ends(body: bytes) -> bool:
    return b"\r" not in body or body.count(b"\r") == body.count(b"\r\n")


def _check_widths(body: bytes, n_features: int) -> None:
    """Refuse the first row without ``n_features`` fields, counting commas per line in numpy
    (in Python it cost as much as the parse). pandas would not: a row one field too wide
    becomes an index and shifts the columns it holds, silently."""
    raw = np.frombuffer(body.rstrip(b"\r\n\t "), dtype=np.uint8)
    if not raw.size:
        return  # nothing but blank lines: the exact path says so
    starts = np.concatenate(([0], np.flatnonzero(raw == ord("\n")) + 1))
    commas = np.add.reduceat(raw == ord(","), starts, dtype=np.int64)
    wrong = np.flatnonzero(commas != n_features - 1)
    if wrong.size:
        row = int(wrong[0])
        raise BadRequest(
            f"row {row + 1}: expected {n_features} features, got {int(commas[row]) + 1}"
        )


def _large_csv(body: bytes, n_features: int) -> np.ndarray | None:
    """Many rows: pandas' C parser, straight from the bytes; None when a row is not
    ``n_features`` wide or a field is unusual, for the exact path to name.

    Widths are checked around pandas rather than line by line: pandas takes its row width
    from the first row (one field too many there and it would become an index, shifting every
    column), refuses any later row wider than that, and fills a shorter one with missing
    values. So: the first row exactly ``n_features`` wide, no error, and as many commas in the
    body as whole rows hold means every row is whole.
    """
    first = body[: body.find(b"\n")]
    if first.count(b",") != n_features - 1:
        return None
    try:
        frame = pd.read_csv(
            io.BytesIO(body),
            header=None,
            names=range(n_features),
            engine="c",
            na_values=[""],
            keep_default_na=False,
            skip_blank_lines=False,
        )
    except ValueError:  # a row too wide (pandas' ParserError is one), not UTF-8
        return None
    if body.count(b",") != len(frame) * (n_features - 1):
        return None  # a short row (or a blank line): filled with missing values by pandas
    # A column the parser could not read as numbers ("abc", "nan", "True") is left as text
    # or bools: only integer and float columns pass.
    if any(dtype.kind not in "iuf" for dtype in frame.dtypes):
        return None
    with np.errstate(over="ignore"):  # beyond float32's range: inf, refused just below
        values = frame.to_numpy(np.float32)
    # One check rejects inf and what float32 cannot hold; nan (an empty field) passes.
    if np.isinf(values).any():
        return None
    return values


def load_json(body: bytes) -> Any:
    """The body as JSON, refused with a 400 naming why. orjson's limits hold where Python's
    parser fails late or not at all: nesting over 1024 levels (not a RecursionError), numbers
    beyond a double's range (not a 4300-digit int), a lone surrogate in a string, invalid
    UTF-8."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"invalid JSON: {exc}") from None


def parse_json(body: bytes, n_features: int, schema: FeatureSchema | None) -> np.ndarray:
    """JSON instances (encoded rows or raw records) → float32 array."""
    if not body.strip():
        raise BadRequest('empty request body: send {"instances": [...]}')
    data = load_json(body)
    instances = data.get("instances") if isinstance(data, dict) and "instances" in data else data
    if isinstance(instances, dict):
        instances = [instances]
    if not isinstance(instances, list) or not instances:
        raise BadRequest('expected {"instances": [...]} with at least one instance')
    if all(isinstance(i, dict) for i in instances):
        return encode_records(instances, schema)
    if not all(isinstance(i, list) for i in instances):
        raise BadRequest("instances must all be lists of features or all be records (objects)")
    rows = np.empty((len(instances), n_features), dtype=np.float32)
    for r, instance in enumerate(instances, 1):
        if len(instance) != n_features:
            raise BadRequest(f"row {r}: expected {n_features} features, got {len(instance)}")
        for c, value in enumerate(instance, 1):
            if value is None:
                rows[r - 1, c - 1] = math.nan
            elif isinstance(value, bool) or not isinstance(value, int | float):
                raise BadRequest(f"row {r}, column {c}: {value!r} is not a number")
            else:
                rows[r - 1, c - 1] = _finite(float(value), value, r, c)
    return rows


def encode_records(records: list[dict[str, Any]], schema: FeatureSchema | None) -> np.ndarray:
    if schema is None:
        raise BadRequest("this model has no saved feature schema: send encoded feature rows")
    try:
        return schema.encode(pd.DataFrame.from_records(records)).to_numpy(np.float32)
    except SchemaError as exc:
        raise BadRequest(str(exc)) from None
