"""The ``skiff`` command's areas: ``jobs``, ``models``, ``endpoints``, and the commands a
backend brings (``skiff ec2``). Each module declares its commands on an ``Area``, next to the
function that runs them; ``flows/cli.py`` builds the parser from the areas.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.store import Store

Arg = tuple[tuple[str, ...], dict[str, Any]]
Run = Callable[[Store, argparse.Namespace], None]
# An argument is one add_argument call, or a function that adds a whole group of flags.
Argument = Arg | Callable[[argparse.ArgumentParser], None]


def arg(*flags: str, **options: Any) -> Arg:
    """One ``add_argument(*flags, **options)`` call, to be made when the parser is built."""
    return flags, options


@dataclass
class Area:
    """One command group (``skiff jobs ...``): its commands, declared with ``command``."""

    name: str
    help: str
    commands: list[tuple[str, str, Run, tuple[Argument, ...]]] = field(default_factory=list)

    def command(self, name: str, help: str, *arguments: Argument) -> Callable[[Run], Run]:
        def register(run: Run) -> Run:
            self.commands.append((name, help, run, arguments))
            return run

        return register

    def add_to(self, areas: Any, needs_store: bool = True) -> None:
        group = areas.add_parser(self.name, help=self.help)
        commands = group.add_subparsers(dest="cmd", required=True)
        for name, text, run, arguments in self.commands:
            parser = commands.add_parser(name, help=text)
            for argument in arguments:
                if callable(argument):
                    argument(parser)
                else:
                    parser.add_argument(*argument[0], **argument[1])
            parser.set_defaults(func=run, needs_store=needs_store)


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """Rows as aligned text columns (headers upper-cased); ``(none)`` when there are none."""
    if not rows:
        return "(none)"
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))
