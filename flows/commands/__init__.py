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


def job_record(jobs: Any, name: str) -> dict[str, Any]:
    """A job's whole record (a training or transform job: any ``JobStore``), as --json prints
    it: its spec, its status, when it started and ended, its heartbeat, whether it is lost."""
    status, beat = jobs.status(name), jobs.heartbeat(name)
    return {
        "spec": jobs.spec(name).model_dump(),
        **status.model_dump(mode="json"),
        "started_at": status.started_at,
        "ended_at": status.ended_at,
        "heartbeat": beat.model_dump() if beat else None,
        "lost": jobs.lost(status),
    }


# ``describe`` commands print a summary for people; --json, the whole record for programs.
AS_JSON = arg("--json", action="store_true", help="the whole record, as JSON")


def described(title: str, fields: dict[str, Any], sections: dict[str, list[str]]) -> str:
    """A record for people: its title, ``label: value`` lines (empty values left out), then
    titled sections of lines (empty ones left out)."""
    shown = {k: v for k, v in fields.items() if v not in (None, "", [], {})}
    width = max((len(k) for k in shown), default=0) + 1
    lines = [title, *(f"  {k + ':':<{width}} {v}" for k, v in shown.items())]
    for name, body in sections.items():
        if body:
            lines += [f"{name}:", *(f"  {line}" for line in body)]
    return "\n".join(lines)


def aligned(values: dict[str, Any], number: str = "{:.4f}") -> list[str]:
    """``name  value`` lines, names aligned, floats as ``number`` formats them (metrics: to
    four decimals; hyperparameters: ``{:g}``), None values left out."""
    shown = {k: v for k, v in values.items() if v is not None}
    width = max((len(k) for k in shown), default=0)
    return [
        f"{k:<{width}}  {number.format(v) if isinstance(v, float) else v}" for k, v in shown.items()
    ]


def transitions(changes: list[Any]) -> list[str]:
    """A job's status transitions, one a line: when, status/secondary, and the message."""
    return [
        f"{t.at}  {t.status}/{t.secondary_status}" + (f": {short(t.message)}" if t.message else "")
        for t in changes
    ]


def short(text: str, width: int = 100) -> str:
    """One line of at most ``width`` characters (the record has it whole)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
