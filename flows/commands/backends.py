"""The commands backends bring (``skiff ec2 list|reap``), as areas of the ``skiff`` command."""

from __future__ import annotations

import argparse

from backends.base import BackendCommand
from backends.catalog import backend_commands
from core.store import Store
from flows.commands import Area, Run, table


def _printing(command: BackendCommand) -> Run:
    def run(store: Store, args: argparse.Namespace) -> None:
        out = command.run(args)
        print(out if isinstance(out, str) else table(out, list(command.columns)))

    return run


def backend_areas() -> list[Area]:
    areas = []
    for name, commands in backend_commands().items():
        area = Area(name, f"the {name} backend")
        for command in commands:
            area.command(command.name, command.help, *command.arguments)(_printing(command))
        areas.append(area)
    return areas
