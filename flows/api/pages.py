"""What every List operation shares: SageMaker's filters on names and times, sorting, and
pages (an opaque NextToken that only this server's answers hold)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from flows.api.errors import invalid


def wanted(name: str, created: float, p: dict[str, Any]) -> bool:
    """Whether a resource passes the request's NameContains and CreationTime filters."""
    checks: dict[str, Callable[[Any], bool]] = {
        "NameContains": lambda s: s.lower() in name.lower(),
        "CreationTimeAfter": lambda t: created > t.timestamp(),
        "CreationTimeBefore": lambda t: created < t.timestamp(),
    }
    return all(check(p[key]) for key, check in checks.items() if key in p)


def page(
    items: list[dict[str, Any]],
    p: dict[str, Any],
    sort_keys: dict[str, Callable[[dict[str, Any]], Any]],
    default_sort: str = "CreationTime",
    default_order: str = "Ascending",
) -> tuple[list[dict[str, Any]], str | None]:
    """The request's page of ``items`` (sorted by its SortBy and SortOrder), and the token
    of the next page, if there is one.

    Raises:
        ApiError: a NextToken this server did not give.
    """
    items = sorted(
        items,
        key=sort_keys[p.get("SortBy", default_sort)],
        reverse=p.get("SortOrder", default_order) == "Descending",
    )
    return window(items, p.get("NextToken"), p.get("MaxResults", 10))


def window(
    items: list[Any], token: str | None, size: int, field: str = "NextToken"
) -> tuple[list[Any], str | None]:
    """The ``size`` items from where ``token`` (one this server gave, or None: the start)
    points, and the token of what follows, if anything does.

    Raises:
        ApiError: a token this server did not give (``field``: its name in the request).
    """
    start = _offset(token, field)
    more = start + size < len(items)
    following = base64.urlsafe_b64encode(json.dumps({"offset": start + size}).encode()).decode()
    return items[start : start + size], following if more else None


def _offset(token: str | None, field: str) -> int:
    if not token:
        return 0
    try:
        return int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
    except (ValueError, KeyError, TypeError):
        raise invalid(f"{field} {token!r} is not one this server gave") from None
