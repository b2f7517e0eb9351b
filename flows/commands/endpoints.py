"""``skiff endpoints ...``: list, describe, start, deploy, weights, rollback, delete, logs,
invoke, capture."""

from __future__ import annotations

import argparse
import json
import math
import sys

from core.errors import ServingError, StoreError
from core.records.endpoints import DataCapture, EndpointStore
from core.runtime import endpoint_folder
from core.store import Store
from flows.commands import Area, arg, print_json, table
from flows.commands.models import VERSION
from flows.flags import add_config_arguments, config_from_arguments
from serving.contract import LOG_FILE
from serving.control import rollouts, servers
from serving.control.client import EndpointClient
from serving.control.rollouts import UpdatePolicy
from serving.options import ServerOptions

ENDPOINTS = Area("endpoints", "model endpoints")
NAME = arg("name", help="endpoint name")
SERVER = (
    arg("--host", default="127.0.0.1"),
    arg("--port", type=int, default=0, help="0: a free port"),
    lambda parser: add_config_arguments(parser, ServerOptions),
)


def _weight(text: str) -> tuple[str, float]:
    """``VARIANT=WEIGHT``, the weight a finite number ≥ 0 (argparse exits 2 on anything else)."""
    name, sep, value = text.partition("=")
    if not (name and sep):
        raise argparse.ArgumentTypeError(f"expected VARIANT=WEIGHT, got {text!r}")
    try:
        weight = float(value)
    except ValueError:
        weight = float("nan")
    if not (math.isfinite(weight) and weight >= 0):
        raise argparse.ArgumentTypeError(f"{name}: the weight must be a number >= 0, not {value!r}")
    return name, weight


@ENDPOINTS.command("list", "list endpoints")
def endpoints_list(store: Store, args: argparse.Namespace) -> None:
    configs = EndpointStore(store)
    live = {server.name: server for server in servers.running_all(store)}
    rows = []
    for name in sorted({*configs.names(), *live}):
        server = live.get(name)
        row = {"name": name, "url": server.url if server else "(stopped)"}
        if not configs.exists(name):  # a server whose config was removed: still listed
            rows.append(row | {"variants": "(no stored config: delete stops the server)"})
            continue
        try:  # one broken config must not hide the others
            config = configs.current(name)
        except StoreError as exc:
            rows.append(row | {"variants": f"(unreadable config: {exc})"})
            continue
        variants = (f"{v.name}={v.source}@{v.weight:g}" for v in config.variants)
        rows.append(row | {"variants": ", ".join(variants), "config": config.number})
    print(table(rows, ["name", "variants", "config", "url"]))


@ENDPOINTS.command("describe", "config, history and server", NAME)
def endpoints_describe(store: Store, args: argparse.Namespace) -> None:
    configs = EndpointStore(store)
    server = servers.running(store, args.name)
    history = [
        {"number": c.number, "created_at": c.created_at, "reason": c.reason}
        for c in configs.history(args.name)
    ]
    print_json(
        {
            "endpoint": args.name,
            "config": configs.current(args.name).model_dump(),
            "history": history,
            "server": {
                "url": server.url,
                "pid": server.pid,
                "started_at": server.started_at,
                "log": str(server.log),
            }
            if server
            else None,
        }
    )


@ENDPOINTS.command("start", "start its server from the stored config", NAME, *SERVER)
def endpoints_start(store: Store, args: argparse.Namespace) -> None:
    options = config_from_arguments(args, ServerOptions)
    server = servers.start(store, args.name, args.host, args.port, options=options)
    print(f"endpoint {args.name} serving at {server.url} (pid {server.pid}, log {server.log})")


@ENDPOINTS.command("stop", "stop its server; the stored config stays (start brings it back)", NAME)
def endpoints_stop(store: Store, args: argparse.Namespace) -> None:
    if not servers.stop(store, args.name):
        raise ServingError(f"endpoint {args.name!r} has no server running on this machine")
    print(f"endpoint {args.name}: server stopped (its config stays; start it again with start)")


CAPTURE = (
    arg("--capture-to", metavar="URL", help="data capture: record requests and answers there"),
    arg("--capture-percent", type=float, default=100.0, help="the share recorded (%(default)s)"),
)


def capture_from(args: argparse.Namespace) -> DataCapture | None:
    if not args.capture_to:
        return None
    return DataCapture(destination=args.capture_to, percent=args.capture_percent)


@ENDPOINTS.command(
    "deploy",
    "deploy a version: create, or update by a strategy",
    NAME,
    *VERSION,
    *SERVER,
    *CAPTURE,
    lambda parser: add_config_arguments(parser, UpdatePolicy),
)
def endpoints_deploy(store: Store, args: argparse.Namespace) -> None:
    from flows.approval import deploy_approved

    done = deploy_approved(
        store,
        args.name,
        args.group,
        args.version,
        host=args.host,
        port=args.port,
        policy=config_from_arguments(args, UpdatePolicy),
        server=config_from_arguments(args, ServerOptions),
        capture=capture_from(args),
    )
    print(
        f"endpoint {args.name}: {args.group} version {args.version} serves all traffic at "
        f"{done.endpoint_url} (config {done.config_number}, {done.seconds_to_live:.1f} s)"
    )


@ENDPOINTS.command(
    "capture",
    "print the requests and answers its data capture recorded",
    NAME,
    arg("--since", default="1h", help="how far back: 90s, 15m, 1h, 2d (%(default)s)"),
    arg("--variant", help="one variant (default: all)"),
    arg("--json", action="store_true", help="the records whole, one JSON object a line"),
)
def endpoints_capture(store: Store, args: argparse.Namespace) -> None:
    from serving.control.capture import parse_span, read_records

    capture = EndpointStore(store).current(args.name).capture
    if capture is None:
        raise ServingError(
            f"endpoint {args.name!r} has no data capture; deploy with --capture-to URL"
        )
    records = read_records(capture, args.name, parse_span(args.since), args.variant)
    if args.json:
        for record in records:
            print(json.dumps(record))
        return
    shown = [r | {"input": _short(r["input"]), "output": _short(r["output"])} for r in records]
    print(table(shown, ["time", "variant", "event_id", "input", "output"]))


def _short(text: str, width: int = 40) -> str:
    flat = text.strip().replace("\n", " | ")
    return flat if len(flat) <= width else flat[: width - 1] + "…"


WEIGHTS = arg("weights", nargs="+", type=_weight, metavar="VARIANT=WEIGHT")


@ENDPOINTS.command("weights", "change the traffic weights of its variants", NAME, WEIGHTS)
def endpoints_weights(store: Store, args: argparse.Namespace) -> None:
    server = servers.running(store, args.name)
    config = rollouts.set_weights(EndpointStore(store), args.name, dict(args.weights), server)
    print(f"endpoint {args.name}: config {config.number}, {config.reason}")


TO = arg("--to", type=int, help="config number (default: the last other one)")


@ENDPOINTS.command("rollback", "serve an earlier config again", NAME, TO)
def endpoints_rollback(store: Store, args: argparse.Namespace) -> None:
    server = servers.running(store, args.name)
    config = rollouts.rollback(EndpointStore(store), args.name, args.to, server)
    print(f"endpoint {args.name}: config {config.number}, {config.reason}")


@ENDPOINTS.command("delete", "stop its server and retire it", NAME)
def endpoints_delete(store: Store, args: argparse.Namespace) -> None:
    from serving.control.deploys import delete

    was_running = delete(store, args.name)
    print(f"endpoint {args.name} deleted" + (" (server stopped)" if was_running else ""))


@ENDPOINTS.command("logs", "print its server's log", NAME)
def endpoints_logs(store: Store, args: argparse.Namespace) -> None:
    path = endpoint_folder(store.root, args.name) / LOG_FILE
    if not path.exists():
        raise ServingError(f"no server log for endpoint {args.name!r} on this machine")
    print(path.read_text(errors="replace"), end="")


@ENDPOINTS.command(
    "invoke",
    "send one request",
    NAME,
    arg("--body", required=True, help="request body ('-': standard input)"),
    arg("--content-type", default="application/json"),
    arg("--accept"),
    arg("--target-variant"),
)
def endpoints_invoke(store: Store, args: argparse.Namespace) -> None:
    server = servers.running(store, args.name)
    if server is None:
        EndpointStore(store).current_bytes(args.name)  # it exists: else, name the ones that do
        raise ServingError(
            f"endpoint {args.name!r} is not running here; start it with "
            f"'skiff endpoints start {args.name}'"
        )
    body = sys.stdin.buffer.read() if args.body == "-" else args.body.encode()
    with EndpointClient(server.url, **server.http_options()) as client:
        response = client.invoke(body, args.content_type, args.accept, args.target_variant)
    print(response.text, end="" if response.text.endswith("\n") else "\n")
    if response.status_code != 200:
        raise ServingError(f"the endpoint answered {response.status_code}")
