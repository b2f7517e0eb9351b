"""Plugins by name or dotted path, imported only when used.

A table lists the built-in ones as ``name → "package.module:Name"`` (as Metaflow lists its
plugins); everywhere a name is accepted, a dotted path is accepted too, which is what makes
bring-your-own code work without registering anything.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from core.errors import SkiffError


def is_dotted(name: str) -> bool:
    """Whether ``name`` is a dotted path (``package.module:Name``) rather than a table name."""
    return ":" in name


def load_object(dotted: str, error: type[SkiffError] = SkiffError) -> Any:
    """Import ``package.module:Name`` (``Name`` may be dotted, e.g. ``Outer.Inner``).

    Raises:
        error: the path is malformed, the module does not import, or it lacks the name.
    """
    module_name, sep, attr = dotted.partition(":")
    if not sep or not module_name or not attr:
        raise error(f"{dotted!r} is not a dotted path of the form 'package.module:Name'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise error(f"cannot import module {module_name!r} for {dotted!r}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise error(f"module {module_name!r} has no attribute {attr!r}") from None
    return obj


class PluginTable:
    """The built-in plugins of one kind (``what``), and the error that names the choices."""

    def __init__(self, what: str, table: Mapping[str, str], error: type[SkiffError]):
        self.what, self.table, self.error = what, dict(table), error

    def path(self, name: str) -> str:
        """The dotted path for ``name`` (itself, if it is one).

        Raises:
            error: ``name`` is neither in the table nor a dotted path; lists the valid names.
        """
        if is_dotted(name):
            return name
        if name not in self.table:
            raise self.error(
                f"unknown {self.what} {name!r}; choose one of {', '.join(sorted(self.table))} "
                "or give a dotted path 'package.module:Name'"
            )
        return self.table[name]

    def load(self, name: str) -> Any:
        """The object for a table name or a dotted path."""
        return load_object(self.path(name), self.error)
