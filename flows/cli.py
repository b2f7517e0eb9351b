"""The ``skiff`` command: look after training jobs, model versions and endpoints in a store.

    skiff jobs list|describe NAME|logs NAME [--follow]|stop NAME
    skiff tuning list|describe NAME|stop NAME   (hyperparameter tuning jobs and their trials)
    skiff transform VERSION INPUT OUTPUT [--backend dask] [--input-filter '$[1:]' ...]
    skiff transforms list|describe NAME|stop NAME   (batch transform jobs)
    skiff models list|describe VERSION|approve VERSION [--deploy]|reject VERSION [--group G]
    skiff endpoints list|describe NAME|invoke NAME|logs NAME|start NAME|delete NAME
    skiff endpoints deploy NAME VERSION [--strategy CANARY --wait-seconds 60 ...]
    skiff endpoints deploy NAME VERSION --weight 0.1   (an A/B test: beside the live ones)
    skiff endpoints compare NAME | weights NAME v1=0.9 v2=0.1 | promote NAME V | remove NAME V
    skiff endpoints rollback NAME [--to N] | capture NAME [--since 1h]
    skiff ec2 list | reap [--job-id ID | --all]     (training instances on EC2)
    skiff api [--host 127.0.0.1] [--port 8787] [--credentials FILE] [--backend auto]
              (SageMaker's API, for SageMaker code: flows/api/)
    skiff notebook [--port 8888] [--bucket B] [--s3-endpoint URL] [--data ZIP]
              (JupyterLab with SageMaker code pointed at a skiff api beside it)

The store is ``--store``, else ``$SKIFF_STORE``, else ``./.skiff``. The pipeline itself runs
as ``python -m flows.bank_marketing``. Each area's commands live in ``flows/commands/``.
"""

from __future__ import annotations

import argparse
import os
import sys

from pydantic import ValidationError

from core.errors import OptionsConflict, SkiffError, describe_invalid
from core.store import DEFAULT_STORE, Store
from flows.commands.api import add_api_command
from flows.commands.backends import backend_areas
from flows.commands.endpoints import ENDPOINTS
from flows.commands.jobs import JOBS
from flows.commands.models import MODELS
from flows.commands.notebook import add_notebook_command
from flows.commands.transforms import TRANSFORMS, add_transform_command
from flows.commands.tuning import TUNING
from flows.flags import Parser


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="skiff", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--store",
        default=os.environ.get("SKIFF_STORE", DEFAULT_STORE),
        help="store root URL (default: $SKIFF_STORE or ./.skiff)",
    )
    areas = parser.add_subparsers(dest="area", required=True)
    for area in (JOBS, TUNING, TRANSFORMS, MODELS, ENDPOINTS):
        area.add_to(areas)
    for area in backend_areas():  # a backend's commands need no store
        area.add_to(areas, needs_store=False)
    add_transform_command(areas)
    add_api_command(areas)
    add_notebook_command(areas)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        store = Store(args.store)
        if args.needs_store:
            store.require_layout()
        args.func(store, args)
    except ValidationError as exc:  # an option's value, checked by its model: one line
        print(f"skiff: error: {describe_invalid(exc)}", file=sys.stderr)
        return 2
    except SkiffError as exc:
        print(f"skiff: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, OptionsConflict) else 1  # 2: the options, as for argparse
    except BrokenPipeError:  # skiff jobs describe NAME | head: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
