"""SageMaker's Search over training jobs, model package groups and model packages: each
resource in its Describe shape (with its tags), kept when the expression holds for it.

Filters name a field by its dotted path (``ModelArtifacts.S3ModelArtifacts``,
``HyperParameters.max_depth``, ``Tags.project``) and compare with SageMaker's operators;
SubExpressions nest with And/Or. What the SageMaker SDK's ``register`` and lineage ask for
(a training job by its artifact, a group by its name) is this.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from core.errors import SkiffError
from core.records.jobs import JobStore
from flows.api import packages, tags
from flows.api.context import ApiContext
from flows.api.errors import invalid
from flows.api.pages import window
from flows.api.training_reads import describe_training_job


def _training_jobs(ctx: ApiContext) -> Iterator[dict[str, Any]]:
    for name in JobStore(ctx.store).names():
        try:
            shape = describe_training_job(ctx, {"TrainingJobName": name})
        except SkiffError:  # being created, or damaged: not searchable
            continue
        yield shape | {"Tags": tags.read(ctx, "training-job", name)}


def _groups(ctx: ApiContext) -> Iterator[dict[str, Any]]:
    for group in packages.all_groups(ctx):
        shape = packages.group_shape(ctx, group)
        yield shape | {"Tags": tags.read(ctx, packages.GROUP, group.name)}


def _packages(ctx: ApiContext) -> Iterator[dict[str, Any]]:
    for version in packages.all_packages(ctx):
        shape = packages.package_shape(ctx, version)
        yield shape | {
            "Tags": tags.read(ctx, packages.PACKAGE, f"{version.group}/{version.version}")
        }


RESOURCES: dict[str, Callable[[ApiContext], Iterator[dict[str, Any]]]] = {
    "TrainingJob": _training_jobs,
    "ModelPackageGroup": _groups,
    "ModelPackage": _packages,
}


def _value(shape: dict[str, Any], path: str) -> Any:
    """The field at a dotted path; a tag by ``Tags.<key>``; None where there is none."""
    head, _, rest = path.partition(".")
    if head == "Tags" and rest:
        return next((t["Value"] for t in shape.get("Tags", []) if t["Key"] == rest), None)
    value = shape.get(head)
    if rest:
        return _value(value, rest) if isinstance(value, dict) else None
    return value


def _number(text: Any) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _compare(found: Any, operator: str, wanted: str | None) -> bool:
    if operator == "Exists":
        return found is not None
    if operator == "NotExists":
        return found is None
    if found is None:
        return operator == "NotEquals"
    if isinstance(found, list):
        found = [str(x) for x in found]
        if operator in ("In", "Contains"):
            return any(wanted == x or (operator == "Contains" and wanted in x) for x in found)
        return False
    text = str(found)
    if operator == "Equals":
        return text == wanted or (_number(found) is not None and _number(found) == _number(wanted))
    if operator == "NotEquals":
        return text != wanted
    if operator == "Contains":
        return str(wanted) in text
    if operator == "In":
        return text in str(wanted).split(",")
    left, right = _number(found), _number(wanted)
    if left is None or right is None:  # text (names, statuses): ordered as text
        left, right = text, str(wanted)  # type: ignore[assignment]
    return {
        "GreaterThan": left > right,
        "GreaterThanOrEqualTo": left >= right,
        "LessThan": left < right,
        "LessThanOrEqualTo": left <= right,
    }[operator]


def _sort_key(value: Any, otherwise: float) -> tuple[int, float, str]:
    """Numbers (times, versions) by value, before text by its order; a resource without the
    field by ``otherwise`` (its creation time: groups have no LastModifiedTime)."""
    number = _number(value) if value is not None else otherwise
    return (0, number, "") if number is not None else (1, 0.0, str(value))


def _holds(expression: dict[str, Any], shape: dict[str, Any]) -> bool:
    if "NestedFilters" in expression:
        raise invalid("Search: NestedFilters is not supported by Skiff; use Filters")
    checks = [
        _compare(_value(shape, f["Name"]), f.get("Operator", "Equals"), f.get("Value"))
        for f in expression.get("Filters", [])
    ] + [_holds(sub, shape) for sub in expression.get("SubExpressions", [])]
    if not checks:
        return True
    return any(checks) if expression.get("Operator", "And") == "Or" else all(checks)


def search(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    resource = p["Resource"]
    if resource not in RESOURCES:
        raise invalid(
            f"Search: Resource {resource} is not supported by Skiff; "
            f"choose one of {', '.join(RESOURCES)}"
        )
    expression = p.get("SearchExpression", {})
    found = [shape for shape in RESOURCES[resource](ctx) if _holds(expression, shape)]
    by = p.get("SortBy", "LastModifiedTime")  # SageMaker's default, newest first
    found.sort(
        key=lambda shape: _sort_key(_value(shape, by), shape["CreationTime"]),
        reverse=p.get("SortOrder", "Descending") == "Descending",
    )
    items, token = window(found, p.get("NextToken"), p.get("MaxResults", 50))
    results = [{resource: item} for item in items]
    return {"Results": results} | ({"NextToken": token} if token else {})


OPERATIONS = {"Search": search}
