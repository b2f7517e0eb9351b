"""``skiff endpoints ...``: list, describe, start, deploy, weights, promote, remove, compare,
rollback, delete, logs, invoke, capture."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

from core.errors import ServingError, StoreError
from core.records.endpoints import DataCapture, EndpointConfig, EndpointStore
from core.runtime import endpoint_folder
from core.store import Store
from flows.commands import AS_JSON, Area, arg, described, print_json, short, table
from flows.commands.models import VERSION
from flows.flags import add_config_arguments, config_from_arguments
from serving.contract import INVOKED_VARIANT, LOG_FILE
from serving.control import rollouts, servers
from serving.control.client import EndpointClient
from serving.control.rollouts import UpdatePolicy
from serving.options import ServerOptions

ENDPOINTS = Area("endpoints", "model endpoints")
NAME = arg("name", help="endpoint name")
SERVER = (
    arg("--host", default="127.0.0.1"),
    arg(
        "--port",
        type=int,
        help="default: the port it had at its last start here, else a free one; 0: a free one",
    ),
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


@ENDPOINTS.command("describe", "config, history and server", NAME, AS_JSON)
def endpoints_describe(store: Store, args: argparse.Namespace) -> None:
    configs = EndpointStore(store)
    server = servers.running(store, args.name)
    current = configs.current(args.name)
    history = configs.history(args.name)
    if args.json:
        print_json(
            {
                "endpoint": args.name,
                "config": current.model_dump(),
                "history": [
                    {"number": c.number, "created_at": c.created_at, "reason": c.reason}
                    for c in history
                ],
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
        return
    capture = current.capture
    fields = {
        "url": server.url if server else "(stopped: skiff endpoints start NAME)",
        "server": f"pid {server.pid}, started {server.started_at}, log {server.log}"
        if server
        else None,
        "config": f"{current.number} ({current.reason})" if current.reason else current.number,
        "capture": f"{capture.percent:g}% to {capture.destination}" if capture else None,
    }
    shares = current.shares()
    variants = [f"{v.name:<12} {shares[v.name]:>4.0%}  {v.source}" for v in current.variants]
    shown = [f"{c.number:>3}  {c.created_at}  {short(c.reason)}" for c in history[-10:]]
    more = len(history) - len(shown)
    sections = {
        "variants": variants,
        f"history (the last {len(shown)} of {len(history)} configs)" if more else "history": shown,
    }
    print(described(f"endpoint {args.name}", fields, sections))
    print("(--json: the whole record)")


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


def say(text: str) -> None:
    """A step of a long command, as it happens, with the time."""
    print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)


def traffic(config: EndpointConfig) -> str:
    """``v2 90%, v3 10%``: who serves what share."""
    return ", ".join(f"{name} {share:.0%}" for name, share in config.shares().items())


@ENDPOINTS.command(
    "deploy",
    "deploy a version: create, update by a strategy, or add it beside the live ones",
    NAME,
    *VERSION,
    arg(
        "--weight",
        type=float,
        metavar="SHARE",
        help="deploy beside the live variants with this share of the traffic (0-1), keeping "
        "them: an A/B test (then: compare, weights, promote, remove)",
    ),
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
        weight=args.weight,
        progress=say,
    )
    took = f"config {done.config_number}, {done.seconds_to_live:.1f} s"
    if args.weight is None:
        print(
            f"endpoint {args.name}: {args.group} version {args.version} serves all traffic at "
            f"{done.endpoint_url} ({took})"
        )
        return
    config = EndpointStore(store).current(args.name)
    print(
        f"endpoint {args.name}: {args.group} version {args.version} deployed beside the live "
        f"variants at {done.endpoint_url}: {traffic(config)} ({took})"
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
    return short(text.strip().replace("\n", " | "), width)


WEIGHTS = arg("weights", nargs="+", type=_weight, metavar="VARIANT=WEIGHT")


@ENDPOINTS.command("weights", "change the traffic weights of its variants", NAME, WEIGHTS)
def endpoints_weights(store: Store, args: argparse.Namespace) -> None:
    server = servers.running(store, args.name)
    config = rollouts.set_weights(EndpointStore(store), args.name, dict(args.weights), server)
    print(f"endpoint {args.name}: config {config.number}, {config.reason}")


VARIANT = arg("variant", help="variant name (skiff endpoints describe NAME lists them)")


@ENDPOINTS.command("promote", "give one variant all traffic, dropping the others", NAME, VARIANT)
def endpoints_promote(store: Store, args: argparse.Namespace) -> None:
    server = servers.running(store, args.name)
    config = rollouts.promote(EndpointStore(store), args.name, args.variant, server)
    print(f"endpoint {args.name}: config {config.number}, {config.reason}")


@ENDPOINTS.command("remove", "drop one variant; the others share its traffic", NAME, VARIANT)
def endpoints_remove(store: Store, args: argparse.Namespace) -> None:
    server = servers.running(store, args.name)
    config = rollouts.remove(EndpointStore(store), args.name, args.variant, server)
    print(f"endpoint {args.name}: config {config.number}, {config.reason}: {traffic(config)}")


@ENDPOINTS.command(
    "compare",
    "its variants side by side: requests, errors, latency, mean score",
    NAME,
    arg(
        "--window",
        type=float,
        metavar="SECONDS",
        help="only the requests of the next SECONDS (default: since the server started)",
    ),
    arg("--json", action="store_true", help="the figures as JSON"),
)
def endpoints_compare(store: Store, args: argparse.Namespace) -> None:
    from serving.control.compare import compare

    server = _server(store, args.name)
    config = EndpointStore(store).current(args.name)
    rows = compare(server, config, args.window)
    if args.json:
        print_json([row.as_dict() for row in rows])
        return
    span = f"the last {args.window:g} s" if args.window else f"since {server.started_at}"
    print(f"endpoint {args.name} (config {config.number}), requests {span}:")
    print(table([_shown(row.as_dict()) for row in rows], list(SHOWN)))


SHOWN = {  # column: how its value is printed (None: not known yet)
    "variant": str,
    "model": str,
    "share": "{:.0%}".format,
    "requests": str,
    "errors_4xx": str,
    "errors_5xx": str,
    "p50_ms": "{:.1f}".format,
    "p99_ms": "{:.1f}".format,
    "mean_score": "{:.4f}".format,
}


def _shown(row: dict) -> dict:
    return {k: "-" if row[k] is None else show(row[k]) for k, show in SHOWN.items()}


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
    server = _server(store, args.name)
    body = sys.stdin.buffer.read() if args.body == "-" else args.body.encode()
    with EndpointClient(server.url, **server.http_options()) as client:
        response = client.invoke(body, args.content_type, args.accept, args.target_variant)
    print(response.text, end="" if response.text.endswith("\n") else "\n")
    variant = response.headers.get(INVOKED_VARIANT)
    if variant:  # on stderr: the answer alone stays on stdout, for pipes
        print(f"(answered by variant {variant})", file=sys.stderr)
    if response.status_code != 200:
        raise ServingError(f"the endpoint answered {response.status_code}")


def _server(store: Store, name: str) -> servers.RunningEndpoint:
    """The endpoint's running server.

    Raises:
        EndpointNotFound: no such endpoint (naming those that exist).
        ServingError: it exists, but no server runs it here.
    """
    server = servers.running(store, name)
    if server is None:
        EndpointStore(store).current_bytes(name)  # it exists: else, name the ones that do
        raise ServingError(
            f"endpoint {name!r} is not running here; start it with 'skiff endpoints start {name}'"
        )
    return server
