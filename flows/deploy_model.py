"""The ``deploy-model`` flow: put a registered, approved version behind an endpoint.

Run from the Prefect UI, from an approval, or as ``python -m flows.deploy_model VERSION``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Literal

from prefect import flow

from algorithms.errors import SkiffError
from algorithms.store import DEFAULT_STORE, Store
from flows import steps


@flow(name="deploy-model", log_prints=True)
def deploy_model(
    model_version: int,
    endpoint_name: str = "bank-marketing",
    model_group: str = "bank-marketing",
    store: str = DEFAULT_STORE,
    host: str = "127.0.0.1",
    port: int = 0,
    strategy: Literal["ALL_AT_ONCE"] = "ALL_AT_ONCE",
) -> dict:
    """Deploy ``model_group`` version ``model_version`` to ``endpoint_name``.

    ``strategy`` is SageMaker's update strategy. Only ALL_AT_ONCE exists yet: the new
    version is loaded and checked beside the old one, then takes all traffic in one swap.
    """
    root = Store(store).root
    return steps.deploy(root, endpoint_name, model_group, model_version, host, port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.deploy_model", description=__doc__)
    parser.add_argument("model_version", type=int)
    parser.add_argument("--endpoint-name", default="bank-marketing")
    parser.add_argument("--model-group", default="bank-marketing")
    parser.add_argument("--store", default=DEFAULT_STORE)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--strategy", choices=["ALL_AT_ONCE"], default="ALL_AT_ONCE")
    args = parser.parse_args(argv)
    try:
        print(json.dumps(deploy_model(**vars(args)), indent=2))
    except SkiffError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
