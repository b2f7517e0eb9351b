"""Requests checked against SageMaker's own service model (botocore ships it), and what Skiff
does with each field: honoured, accepted but not enforced, or refused by name.

A field that would change the result and that Skiff cannot honour is refused (a
ValidationException naming it), never dropped; one that cannot change it (a role, tags, VPC
or encryption settings) is accepted and recorded with the job. Each operation's module holds
its two tables (``HONOURED``, ``ACCEPTED``); the README lists them (a test keeps it so).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from botocore.model import OperationModel, ServiceModel, Shape
from botocore.validate import ParamValidator

from flows.api.errors import ApiError, invalid


@functools.cache
def service_model(service: str = "sagemaker") -> ServiceModel:
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


def operation(name: str, service: str = "sagemaker") -> OperationModel:
    """The operation ``name`` of ``service`` (SageMaker's, or CloudWatch Logs').

    Raises:
        ApiError: the service has no such operation.
    """
    try:
        return service_model(service).operation_model(name)
    except Exception:  # botocore's OperationNotFoundError
        raise ApiError(
            "UnknownOperationException", f"{service} has no operation {name!r}"
        ) from None


def check_request(op: OperationModel, params: Any) -> dict[str, Any]:
    """``params`` checked against the operation's input shape: required members, types,
    ranges, patterns and enums, with SageMaker's wording; timestamps (seconds since the epoch
    on the wire) become datetimes.

    Raises:
        ApiError: ValidationException naming each member that is wrong.
    """
    if not isinstance(params, dict):
        raise invalid("the request body must be a JSON object")
    shape = op.input_shape
    if shape is None:
        return {}
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        raise invalid(report.generate_report())
    problems = list(_constraints(params, shape, ""))
    if problems:
        count = f"{len(problems)} validation error{'s' if len(problems) > 1 else ''} detected: "
        raise invalid(count + "; ".join(problems))
    return _parse_times(params, shape)


def _constraints(value: Any, shape: Shape, path: str) -> Iterator[str]:
    """What ParamValidator leaves to the service: patterns, enums, maximum lengths."""
    if shape.type_name == "structure":
        for name, member in shape.members.items():
            if name in value:
                yield from _constraints(value[name], member, f"{path}.{name}" if path else name)
    elif shape.type_name == "list":
        for i, item in enumerate(value):
            yield from _constraints(item, shape.member, f"{path}.{i + 1}")
    elif shape.type_name == "map":
        for k, v in value.items():
            yield from _constraints(v, shape.value, f"{path}.{k}")
    elif shape.type_name == "string":
        at = f"Value '{value}' at '{path[:1].lower()}{path[1:]}' failed to satisfy constraint"
        if shape.enum and value not in shape.enum:
            yield f"{at}: Member must satisfy enum value set: [{', '.join(shape.enum)}]"
        elif (pattern := shape.metadata.get("pattern")) and not _matches(pattern, value):
            yield f"{at}: Member must satisfy regular expression pattern: {pattern}"
        elif (most := shape.metadata.get("max")) is not None and len(value) > most:
            yield f"{at}: Member must have length less than or equal to {most}"


@functools.cache
def _compiled(pattern: str) -> re.Pattern | None:
    try:
        return re.compile(pattern, re.DOTALL)
    except re.error:  # a Java-only construct: leave that one to the handler
        return None


def _matches(pattern: str, value: str) -> bool:
    if pattern.startswith("(https|s3)://") and value.startswith("file://"):
        return True  # SageMaker's local mode reads file:// URLs, and so does Skiff
    compiled = _compiled(pattern)
    return compiled is None or compiled.fullmatch(value) is not None


def _parse_times(value: Any, shape: Shape) -> Any:
    if shape.type_name == "structure":
        return {
            k: _parse_times(v, shape.members[k]) if k in shape.members else v
            for k, v in value.items()
        }
    if shape.type_name == "list":
        return [_parse_times(v, shape.member) for v in value]
    if shape.type_name == "timestamp" and isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return value


def refuse_unsupported(
    op: str, params: dict[str, Any], honoured: frozenset[str], accepted: frozenset[str]
) -> None:
    """Refuse the first field that is neither honoured nor accepted, by its path.

    Paths are dotted, ``[]`` for every item of a list: ``InputDataConfig[].ChannelName``; a
    path covers everything under it.

    Raises:
        ApiError: ValidationException naming the field (the outermost one not covered).
    """
    known = honoured | accepted
    if path := _uncovered(params, "", known):
        raise invalid(f"{op}: {path} is not supported by Skiff")


def _uncovered(value: Any, prefix: str, known: frozenset[str]) -> str | None:
    if prefix in known:
        return None
    if prefix and not any(k.startswith((prefix + ".", prefix + "[")) for k in known):
        return prefix
    if isinstance(value, dict):
        for k, v in value.items():
            if found := _uncovered(v, f"{prefix}.{k}" if prefix else k, known):
                return found
    elif isinstance(value, list):
        for v in value:
            if found := _uncovered(v, prefix + "[]", known):
                return found
    return None


def epoch(value: str | datetime | None) -> float | None:
    """A record's ISO time as the wire's seconds since the epoch."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment.timestamp()


def as_given(p: dict[str, Any]) -> dict[str, Any]:
    """A request as it can be stored: JSON, its times as text."""
    return json.loads(json.dumps(p, default=str))
