"""The endpoint's body parsers, on their own: one set of rules for every body size (a small
CSV body is parsed in numpy or Python, a large one by pandas' C parser), and JSON whose limits
hold (issue 14). The server's own answers to these bodies are in ``test_server.py``."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import BadRequest
from serving.dataplane.parsing import SMALL, parse_csv, parse_json

N = 4
GOOD = "1,2,3,4"


def small_and_large(lines: list[str]) -> list[tuple[str, object]]:
    """What the rows parse to alone (a small body) and followed by enough good rows to take
    the large body's path: ("ok", the rows' values) or ("400", the message)."""
    answers = []
    for body in ("\n".join(lines), "\n".join([*lines, *[GOOD] * (SMALL + 10)])):
        try:
            values = parse_csv(body.encode(), N)
            answers.append(("ok", values[: len(lines)].tolist()))
        except BadRequest as exc:
            answers.append(("400", str(exc)))
    return answers


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        # One field too many, then one too few: pandas took the extra one as an index and
        # shifted every column of a large body, answering 200 with wrong scores.
        (["1,2,3,4,5", "1,2,3"], ("400", "row 1: expected 4 features, got 5")),
        (["1,2,3,4", "1,2,3"], ("400", "row 2: expected 4 features, got 3")),
        (["1,2,3,4", "", GOOD], ("400", "row 2: expected 4 features, got 1")),
        # numpy read a field of only spaces as -1 in a small body; missing, as everywhere.
        (["1, ,3,4"], ("ok", [[1.0, math.nan, 3.0, 4.0]])),
        (["\ufeff1,2,3,4"], ("ok", [[1.0, 2.0, 3.0, 4.0]])),  # a spreadsheet's BOM
        ([" 1,2 ,+3,.5e1"], ("ok", [[1.0, 2.0, 3.0, 5.0]])),
        # Python's float() takes these; no other path did: refused on every path.
        (["1_000,2,3,4"], ("400", "row 1, column 1: '1_000' is not a number")),
        (["\u0661,2,3,4"], ("400", "row 1, column 1: '\u0661' is not a number")),
        (["true,2,3,4"], ("400", "row 1, column 1: 'true' is not a number")),
        (["0x10,2,3,4"], ("400", "row 1, column 1: '0x10' is not a number")),
        (['"1",2,3,4'], ("400", "row 1, column 1: '\"1\"' is not a number")),
        (["1,2,nan,4"], ("400", "row 1, column 3: 'nan' is not a finite float32 number")),
    ],
)
def test_every_body_size_follows_one_set_of_rules(lines, expected):
    small, large = small_and_large(lines)
    for got in (small, large):
        if expected[0] == "ok":
            assert got[0] == "ok", got
            np.testing.assert_array_equal(np.array(got[1]), np.array(expected[1]))
        else:
            assert got == expected


ODD = ["", " ", "nan", "inf", "-inf", "1e39", "1_0", "\u0661", "true", "0x1", '"1"', "1e", ".",
       "+", "1.5e-3", " 7 ", "\t2", "1\r"]  # fmt: skip
FIELDS = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr),
    st.sampled_from(ODD),
    st.text(alphabet="0123456789.,eE+- \"'\t;", max_size=6),
)
ROWS = st.lists(st.lists(FIELDS, min_size=N - 1, max_size=N + 1), min_size=1, max_size=5)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=ROWS)
def test_random_csv_bodies_are_refused_or_scored_alike_on_both_paths(rows):
    lines = [",".join(fields) for fields in rows]
    small, large = small_and_large(lines)  # anything but BadRequest fails the test here
    assert small[0] == large[0], (lines, small, large)
    if small[0] == "ok":
        np.testing.assert_array_equal(np.array(small[1]), np.array(large[1]))
        assert np.isfinite(np.nan_to_num(np.array(small[1]))).all()
    else:
        assert small[1] == large[1], (lines, small, large)


@settings(max_examples=300, deadline=None)
@given(body=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)))
def test_random_json_bodies_get_a_400_or_rows(body):
    try:
        rows = parse_json(body, N, None)
    except BadRequest:
        return
    assert rows.shape[1] == N and rows.dtype == np.float32
