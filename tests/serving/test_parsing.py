"""The endpoint's body parsers, on their own: one set of rules for every body size and every
path (the C parser, or where it is not built pandas for a large body and numpy for a small one,
each held to the exact path in Python), and JSON whose limits hold (issue 14). The server's
own answers to these bodies are in ``test_server.py``."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import BadRequest
from serving.dataplane import parsing
from serving.dataplane.parsing import BOM, SMALL, parse_csv, parse_json

N = 4
GOOD = "1,2,3,4"
# Where the C parser is built (everywhere with a compiler, CI included), every case runs both
# with it and without it; elsewhere only without.
MODES = ("c", "fallback") if parsing._csv_rows is not None else ("fallback",)


@contextlib.contextmanager
def mode(name: str) -> Iterator[None]:
    if name == "c":
        yield
    else:
        with mock.patch.object(parsing, "_csv_rows", None):
            yield


def answer(parse, body: bytes) -> tuple[str, object]:
    """("ok", the rows' values) or ("400", the message)."""
    try:
        return "ok", parse(body)
    except BadRequest as exc:
        return "400", str(exc)


def exact(body: bytes) -> np.ndarray:
    """The exact path alone: Python, field by field; the rules' definition."""
    return parsing._slow_csv(parsing._checked_lines(body.removeprefix(BOM), N))


def every_path(lines: list[str]) -> Iterator[tuple[str, tuple[str, object], tuple[str, object]]]:
    """For the rows alone (a small body) and followed by enough good rows to be a large one,
    on every path: (what was run, its answer, the exact path's answer)."""
    for size, body in (
        ("small", "\n".join(lines)),
        ("large", "\n".join([*lines, *[GOOD] * (SMALL + 10)])),
    ):
        expected = answer(exact, body.encode())
        for name in MODES:
            with mode(name):
                yield (
                    f"{size} body, {name}",
                    answer(lambda b: parse_csv(b, N), body.encode()),
                    expected,
                )


def assert_same(got: tuple[str, object], expected: tuple[str, object], what: str) -> None:
    assert got[0] == expected[0], (what, got, expected)
    if got[0] == "ok":
        np.testing.assert_array_equal(got[1], expected[1], err_msg=what)
        assert got[1].dtype == np.float32 and got[1].shape[1] == N
    else:
        assert got[1] == expected[1], (what, got, expected)


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
    for what, got, reference in every_path(lines):
        assert_same(got, reference, what)
        if expected[0] == "ok":
            assert got[0] == "ok", (what, got)
            rows = np.array(expected[1], dtype=np.float32)
            np.testing.assert_array_equal(got[1][: len(lines)], rows, err_msg=what)
        else:
            assert got == expected, what


@pytest.mark.parametrize("name", MODES)
@pytest.mark.parametrize(
    ("row", "expected"),
    [("1,2,3,4,5", "got 5"), ("1,2,3", "got 3"), ("", "got 1"), ("1,2,3,4,", "got 5")],
)
def test_a_ragged_row_anywhere_in_a_large_body_is_named(row, expected, name):
    """pandas takes a large body's width from its first row: later rows are checked too."""
    for at in (SMALL + 3, 2 * SMALL):
        lines = [GOOD] * (2 * SMALL + 1)
        lines[at - 1] = row
        with (
            mode(name),
            pytest.raises(BadRequest, match=f"^row {at}: expected 4 features, {expected}$"),
        ):
            parse_csv("\n".join(lines).encode(), N)


@pytest.mark.skipif(parsing._csv_rows is None, reason="the C parser is not built here")
def test_the_c_parser_reads_decimals_as_python_then_float32_would():
    """Clinger's fast path where it is exact, strtod elsewhere: the same float32 as
    ``np.float32(float(text))`` for short and long decimals, exponents, both line ends,
    trailing blank lines; None (the exact path decides) for anything it does not read."""
    rng = np.random.default_rng(7)
    texts = [
        repr(float(v)) for v in rng.standard_normal(2000) * 10.0 ** rng.integers(-30, 30, 2000)
    ]
    texts += [
        f"{v:.{d}e}"
        for v, d in zip(rng.standard_normal(2000), rng.integers(0, 20, 2000), strict=False)
    ]
    texts += ["0", "-0.0", "007", "1.", ".5", "+.5", "1e-99999", "3.4028234e38", "9" * 30]
    texts += ["0." + "0" * 30 + "1", "1" + "0" * 30, "123456789012345678901234567890e-10"]
    texts = texts[: len(texts) // N * N]
    body = "\r\n".join(",".join(texts[i : i + N]) for i in range(0, len(texts), N)) + "\n\n \n"
    got = np.frombuffer(parsing._csv_rows.parse(body.encode(), N), dtype=np.float32)
    np.testing.assert_array_equal(got, np.array([float(t) for t in texts], dtype=np.float32))
    for odd in ("1,2,3,4\r5,6,7,8", '"1",2,3,4', "1,2,3,4\n\n1,2,3,4", "1e39,2,3,4", "", "\n"):
        assert parsing._csv_rows.parse(odd.encode(), N) is None, odd


ODD = ["", " ", "nan", "inf", "-inf", "1e39", "1_0", "\u0661", "true", "0x1", '"1"', "1e", ".",
       "+", "1.5e-3", " 7 ", "\t2", "1\r"]  # fmt: skip
FIELDS = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),  # up to 17 digits, e±308
    st.sampled_from(ODD),
    st.text(alphabet="0123456789.,eE+- \"'\t;", max_size=6),
)
ROWS = st.lists(st.lists(FIELDS, min_size=N - 1, max_size=N + 1), min_size=1, max_size=5)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=ROWS)
def test_random_csv_bodies_are_read_on_every_path_as_the_exact_path_reads_them(rows):
    lines = [",".join(fields) for fields in rows]
    for what, got, expected in every_path(lines):  # anything but BadRequest fails here
        assert_same(got, expected, what)
        if got[0] == "ok":
            assert np.isfinite(np.nan_to_num(got[1])).all()


@settings(max_examples=300, deadline=None)
@given(body=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)))
def test_random_json_bodies_get_a_400_or_rows(body):
    try:
        rows = parse_json(body, N, None)
    except BadRequest:
        return
    assert rows.shape[1] == N and rows.dtype == np.float32
