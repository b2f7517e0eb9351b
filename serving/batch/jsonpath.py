"""The JSONPath subset SageMaker's DataProcessing filters are written in, and no more.

    $                  the whole record
    $[1:]  $[0,-1]     elements of an array (a CSV row is one): indices, slices, a list of both
    $[2]               one element
    $.features         a member of an object; steps chain: $.data.features[1:]
    $['id','score']    several members, as an array

A CSV row is the array of its fields; a JSON line is its value. A path outside this subset,
or one that does not fit the record it meets, is an error naming the path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from core.errors import TransformError

_INDEX = r"-?\d+"
_SLICE = rf"(?:{_INDEX})?:(?:{_INDEX})?"
_ITEM = rf"(?:{_SLICE}|{_INDEX})"
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_QUOTED = r"'[^']*'"
_STEP = re.compile(
    rf"\.(?P<member>{_NAME})"
    rf"|\[(?P<items>\s*{_ITEM}\s*(?:,\s*{_ITEM}\s*)*)\]"
    rf"|\[(?P<names>\s*{_QUOTED}\s*(?:,\s*{_QUOTED}\s*)*)\]"
)


@dataclass(frozen=True)
class _Step:
    kind: str  # "member", "items" or "names"
    values: tuple[Any, ...]
    single: bool  # one index or one name: the element itself, not an array of it


def _item(text: str) -> int | slice:
    text = text.strip()
    if ":" not in text:
        return int(text)
    start, stop = text.split(":")
    return slice(int(start) if start else None, int(stop) if stop else None)


class JsonPath:
    """A parsed path (``JsonPath("$[1:]")``), applied to records with ``apply``.

    Raises:
        TransformError: ``text`` is not in the subset above.
    """

    def __init__(self, text: str):
        self.text = text.strip()
        if not self.text.startswith("$"):
            raise TransformError(f"JSONPath {text!r} must start with $")
        steps, at = [], 1
        while at < len(self.text):
            match = _STEP.match(self.text, at)
            if match is None:
                raise TransformError(
                    f"JSONPath {text!r}: cannot read {self.text[at:]!r} (Skiff reads $, "
                    "$[i], $[i,j], $[a:b], $.name and $['a','b'])"
                )
            if match["member"]:
                steps.append(_Step("member", (match["member"],), True))
            elif match["items"]:
                items = tuple(_item(i) for i in match["items"].split(","))
                steps.append(_Step("items", items, len(items) == 1 and isinstance(items[0], int)))
            else:
                names = tuple(n.strip()[1:-1] for n in match["names"].split(","))
                steps.append(_Step("names", names, len(names) == 1))
            at = match.end()
        self.steps = tuple(steps)

    def __repr__(self) -> str:
        return f"JsonPath({self.text!r})"

    @property
    def is_root(self) -> bool:
        return not self.steps

    def columns(self, width: int) -> list[int] | None:
        """The indices this path takes from an array of ``width`` elements, in order, when it
        is one step of indices and slices (a CSV row's filter); None for any other path."""
        if len(self.steps) != 1 or self.steps[0].kind != "items":
            return None
        taken: list[int] = []
        for item in self.steps[0].values:
            if isinstance(item, slice):
                taken.extend(range(width)[item])
            elif -width <= item < width:
                taken.append(item % width)
            else:
                raise TransformError(
                    f"JSONPath {self.text!r}: index {item} is outside a row of {width} fields"
                )
        return taken

    def apply(self, record: Any) -> Any:
        """The part of ``record`` this path selects.

        Raises:
            TransformError: the path does not fit the record (an index past its end, a member
                it lacks, an array step on an object).
        """
        value = record
        for step in self.steps:
            value = self._step(step, value)
        return value

    def _step(self, step: _Step, value: Any) -> Any:
        if step.kind == "items":
            if not isinstance(value, list):
                raise TransformError(f"JSONPath {self.text!r}: {_kind(value)} is not an array")
            picked: list[Any] = []
            for item in step.values:
                if isinstance(item, slice):
                    picked.extend(value[item])
                elif -len(value) <= item < len(value):
                    picked.append(value[item])
                else:
                    raise TransformError(
                        f"JSONPath {self.text!r}: index {item} is outside an array of "
                        f"{len(value)} elements"
                    )
            return picked[0] if step.single else picked
        if not isinstance(value, dict):
            raise TransformError(f"JSONPath {self.text!r}: {_kind(value)} is not an object")
        missing = [n for n in step.values if n not in value]
        if missing:
            raise TransformError(f"JSONPath {self.text!r}: the record has no {missing[0]!r}")
        return value[step.values[0]] if step.single else [value[n] for n in step.values]


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string"}.get(type(value), "a value")
