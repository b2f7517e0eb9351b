"""The ``deploy-model`` flow: put a registered, approved version behind an endpoint.

Run from the Prefect UI, from an approval, or as ``python -m flows.deploy_model VERSION``.
"""

from __future__ import annotations

import json
import sys

from prefect import flow

from core.errors import SkiffError
from core.store import DEFAULT_STORE, Store
from flows import steps
from flows.flags import Parser, add_config_arguments, config_from_arguments
from flows.states import fails_with_reason
from serving.control.rollouts import UpdatePolicy
from serving.options import ServerOptions


@flow(name="deploy-model", log_prints=True)
@fails_with_reason
def deploy_model(
    model_version: int,
    endpoint_name: str = "bank-marketing",
    model_group: str = "bank-marketing",
    store: str = DEFAULT_STORE,
    host: str = "127.0.0.1",
    port: int = 0,
    update: UpdatePolicy = UpdatePolicy(),  # noqa: B008 - immutable in use: Prefect copies it
    server: ServerOptions = ServerOptions(),  # noqa: B008
    capture_to: str | None = None,
    capture_percent: float = 100.0,
    weight: float | None = None,
) -> dict:
    """Deploy ``model_group`` version ``model_version`` to ``endpoint_name``.

    Args:
        model_version: the registered, approved version to serve
        endpoint_name: the endpoint (created if it does not exist)
        model_group: the registry's model group
        store: the store's root URL
        host: address a new endpoint listens on
        port: port of a new endpoint (0: a free one)
        update: how the version replaces a live one: ALL_AT_ONCE, CANARY or LINEAR, the
            baking time, the termination wait and the alarms that roll back
        server: a new endpoint server's processes, security and limits
        capture_to: data capture: record the endpoint's requests and answers at this URL
        capture_percent: data capture: the share of requests recorded
        weight: deploy beside the live variants with this share of the traffic (0-1),
            keeping them (an A/B test); none: the version replaces them
    """
    root = Store(store).root
    return steps.deploy(
        root, endpoint_name, model_group, model_version, host, port, update, server,
        capture_to, capture_percent, weight,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m flows.deploy_model", description=__doc__)
    parser.add_argument("model_version", type=int)
    parser.add_argument("--endpoint-name", default="bank-marketing")
    parser.add_argument("--model-group", default="bank-marketing")
    parser.add_argument("--store", default=DEFAULT_STORE)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--capture-to", help="data capture: record requests and answers there")
    parser.add_argument("--capture-percent", type=float, default=100.0)
    parser.add_argument(
        "--weight", type=float, help="deploy beside the live variants with this share (0-1)"
    )
    add_config_arguments(parser, UpdatePolicy)
    add_config_arguments(parser, ServerOptions)
    args = parser.parse_args(argv)
    try:
        policy = config_from_arguments(args, UpdatePolicy)
        server = config_from_arguments(args, ServerOptions)
    except ValueError as exc:
        parser.error(str(exc))
    options = {k: v for k, v in vars(args).items() if k in deploy_model.parameters.properties}
    try:
        print(json.dumps(deploy_model(**options, update=policy, server=server), indent=2))
    except SkiffError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
