"""The ``skiff`` command: look after training jobs and model versions in a store.

    skiff jobs list|describe NAME|logs NAME [--follow]|stop NAME
    skiff models list|describe VERSION|approve VERSION [--deploy]|reject VERSION [--group G]
    skiff endpoints list|describe NAME|invoke NAME|logs NAME|start NAME|delete NAME
    skiff endpoints deploy NAME VERSION [--strategy CANARY --wait-seconds 60 ...]
    skiff endpoints weights NAME v1=0.9 v2=0.1 | rollback NAME [--to N]
    skiff ec2 list | reap [--job-id ID | --all]     (training instances on EC2)

The store is ``--store``, else ``$SKIFF_STORE``, else ``./.skiff``. The pipeline itself runs
as ``python -m flows.bank_marketing``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from core.errors import ServingError, SkiffError
from core.records.endpoints import EndpointStore
from core.records.jobs import JobStore
from core.records.registry import Approval, ModelRegistry
from core.runtime import endpoint_folder
from core.store import DEFAULT_STORE, Store
from flows.config import add_config_arguments
from serving import local, updates
from serving.client import EndpointClient
from serving.options import ServerOptions
from serving.updates import UpdatePolicy

DEFAULT_GROUP = "bank-marketing"


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    if not rows:
        return "(none)"
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


# -- jobs --------------------------------------------------------------------------------------
def jobs_list(store: Store, args: argparse.Namespace) -> None:
    jobs = JobStore(store)
    rows = []
    for name in jobs.names():
        status = jobs.status(name)
        rows.append(
            {
                "name": name,
                "status": status.status,
                "secondary": status.secondary_status,
                "started": status.started_at,
                "validation_auc": f"{status.metrics['validation_auc']:.4f}"
                if "validation_auc" in status.metrics
                else "",
            }
        )
    print(_table(rows, ["name", "status", "secondary", "started", "validation_auc"]))


def jobs_describe(store: Store, args: argparse.Namespace) -> None:
    jobs = JobStore(store)
    status = jobs.status(args.name)
    _print_json(
        {
            "spec": jobs.spec(args.name).model_dump(),
            **status.model_dump(mode="json"),
            "started_at": status.started_at,
            "ended_at": status.ended_at,
        }
    )


def jobs_logs(store: Store, args: argparse.Namespace) -> None:
    jobs = JobStore(store)
    shown = 0
    while True:
        text = jobs.log(args.name)
        sys.stdout.write(text[shown:])
        sys.stdout.flush()
        shown = len(text)
        if not args.follow or jobs.status(args.name).status.terminal:
            return
        time.sleep(1)


def jobs_stop(store: Store, args: argparse.Namespace) -> None:
    status = JobStore(store).request_stop(args.name)
    if status.status.terminal:
        print(f"job {args.name} already ended {status.status}")
    else:
        print(f"stop requested for job {args.name}; its backend stops it within seconds")


# -- models ------------------------------------------------------------------------------------
def models_list(store: Store, args: argparse.Namespace) -> None:
    registry = ModelRegistry(store)
    groups = [args.group] if args.group else registry.groups()
    rows = [
        {
            "group": v.group,
            "version": v.version,
            "approval": v.approval_status,
            "validation_auc": f"{v.metrics.get('validation_auc', float('nan')):.4f}",
            "job": v.job_name,
            "created": v.created_at,
        }
        for group in groups
        for v in registry.list(group)
    ]
    print(_table(rows, ["group", "version", "approval", "validation_auc", "job", "created"]))


def models_describe(store: Store, args: argparse.Namespace) -> None:
    _print_json(ModelRegistry(store).get(args.group, args.version).model_dump(mode="json"))


def _set_approval(status: Approval) -> Callable[[Store, argparse.Namespace], None]:
    def command(store: Store, args: argparse.Namespace) -> None:
        version = ModelRegistry(store).set_approval(
            args.group, args.version, status, by=args.by, reason=args.reason
        )
        print(f"{version.group} version {version.version}: {version.approval_status}")
        if getattr(args, "deploy", False):
            from flows.approval import request_deploy  # imports Prefect: only when asked

            run = request_deploy(
                store, version.group, version.version, args.endpoint, args.deployment
            )
            print(f"deploying to endpoint {args.endpoint}: flow run {run} of {args.deployment}")

    return command


# -- endpoints ---------------------------------------------------------------------------------
def endpoints_list(store: Store, args: argparse.Namespace) -> None:
    configs = EndpointStore(store)
    rows = []
    for name in configs.names():
        config = configs.current(name)
        server = local.running(store, name)
        rows.append(
            {
                "name": name,
                "variants": ", ".join(
                    f"{v.name}={v.model_group}:{v.model_version}@{v.weight:g}"
                    for v in config.variants
                ),
                "config": config.number,
                "url": server.url if server else "(stopped)",
            }
        )
    print(_table(rows, ["name", "variants", "config", "url"]))


def endpoints_describe(store: Store, args: argparse.Namespace) -> None:
    configs = EndpointStore(store)
    server = local.running(store, args.name)
    _print_json(
        {
            "endpoint": args.name,
            "config": configs.current(args.name).model_dump(),
            "history": [
                {"number": c.number, "created_at": c.created_at, "reason": c.reason}
                for c in configs.history(args.name)
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


def endpoints_deploy(store: Store, args: argparse.Namespace) -> None:
    from flows.config import config_from_arguments
    from flows.deployment import deploy

    policy = config_from_arguments(args, UpdatePolicy)
    done = deploy(
        store,
        args.name,
        args.group,
        args.version,
        args.host,
        args.port,
        policy=policy,
        server=config_from_arguments(args, ServerOptions),
    )
    print(
        f"endpoint {args.name}: {args.group} version {args.version} serves all traffic at "
        f"{done.endpoint_url} (config {done.config_number}, {done.seconds_to_live:.1f} s)"
    )


def endpoints_weights(store: Store, args: argparse.Namespace) -> None:
    config = updates.set_weights(
        EndpointStore(store), args.name, dict(args.weights), local.running(store, args.name)
    )
    print(f"endpoint {args.name}: config {config.number}, {config.reason}")


def endpoints_rollback(store: Store, args: argparse.Namespace) -> None:
    config = updates.rollback(
        EndpointStore(store), args.name, args.to, local.running(store, args.name)
    )
    print(f"endpoint {args.name}: config {config.number}, {config.reason}")


def _weight(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        return name, float(value) if sep else float("nan")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected VARIANT=WEIGHT, got {text!r}") from None


def endpoints_start(store: Store, args: argparse.Namespace) -> None:
    from flows.config import config_from_arguments

    options = config_from_arguments(args, ServerOptions)
    server = local.start(store, args.name, args.host, args.port, options=options)
    print(f"endpoint {args.name} serving at {server.url} (pid {server.pid}, log {server.log})")


def endpoints_delete(store: Store, args: argparse.Namespace) -> None:
    from flows.deployment import delete

    was_running = delete(store, args.name)
    print(f"endpoint {args.name} deleted" + (" (server stopped)" if was_running else ""))


def endpoints_logs(store: Store, args: argparse.Namespace) -> None:
    path = endpoint_folder(store.root, args.name) / "server.log"
    if not path.exists():
        raise ServingError(f"no server log for endpoint {args.name!r} on this machine")
    print(path.read_text(errors="replace"), end="")


def endpoints_invoke(store: Store, args: argparse.Namespace) -> None:
    server = local.running(store, args.name)
    if server is None:
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


# -- ec2 ---------------------------------------------------------------------------------------
def _ec2(args: argparse.Namespace) -> Any:
    from backends.ec2_fleet import ec2_client  # imports boto3: only when asked

    return ec2_client(args.region)


def ec2_list(store: Store, args: argparse.Namespace) -> None:
    from backends.ec2_fleet import ANY_JOB, aws_errors, find_instances

    with aws_errors("listing instances"):
        instances = find_instances(_ec2(args), ANY_JOB)
    rows = [vars(i) for i in instances if args.all or i.alive]
    print(_table(rows, ["id", "role", "state", "deadline", "reason"]))


def ec2_reap(store: Store, args: argparse.Namespace) -> None:
    from backends.ec2_fleet import aws_errors, reap

    with aws_errors("reaping instances"):
        reaped = reap(_ec2(args), job_id=args.job_id, everything=args.all)
    print(
        f"terminated {len(reaped)} instance(s)"
        + "".join(f"\n  {i.id} ({i.role}, deadline {i.deadline or '?'})" for i in reaped)
    )


# -- parser ------------------------------------------------------------------------------------
Arg = tuple[tuple[str, ...], dict[str, Any]]
Command = tuple[
    str, Callable[[Store, argparse.Namespace], None], str, list[Arg | Callable[..., None]]
]


def _arg(*flags: str, **options: Any) -> Arg:
    return flags, options


def _area(areas: Any, name: str, text: str, commands: list[Command]) -> None:
    """One command group (``skiff jobs ...``) from a table of (name, function, help, args)."""
    group = areas.add_parser(name, help=text).add_subparsers(dest="cmd", required=True)
    for command, func, command_help, arguments in commands:
        parser = group.add_parser(command, help=command_help)
        for argument in arguments:
            if callable(argument):  # adds a whole group of flags
                argument(parser)
            else:
                parser.add_argument(*argument[0], **argument[1])
        parser.set_defaults(func=func)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skiff", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--store",
        default=os.environ.get("SKIFF_STORE", DEFAULT_STORE),
        help="store root URL (default: $SKIFF_STORE or ./.skiff)",
    )
    areas = parser.add_subparsers(dest="area", required=True)
    job = _arg("name", help="job name")
    _area(
        areas,
        "jobs",
        "training jobs",
        [
            ("list", jobs_list, "list jobs", []),
            ("describe", jobs_describe, "show a job's spec and status", [job]),
            (
                "logs",
                jobs_logs,
                "print a job's training log",
                [job, _arg("-f", "--follow", action="store_true", help="follow until it ends")],
            ),
            ("stop", jobs_stop, "ask a running job to stop", [job]),
        ],
    )
    version = [
        _arg("version", type=int, help="version number"),
        _arg("--group", default=DEFAULT_GROUP, help=f"default: {DEFAULT_GROUP}"),
    ]
    decision = [
        _arg("--reason", default="", help="why, for the record"),
        _arg("--by", default=getpass.getuser(), help="who (default: you)"),
    ]
    _area(
        areas,
        "models",
        "registered model versions",
        [
            (
                "list",
                models_list,
                "list versions",
                [_arg("--group", help="one model group (default: all)")],
            ),
            ("describe", models_describe, "show a version", version),
            (
                "approve",
                _set_approval(Approval.APPROVED),
                "approve a version (and deploy it)",
                version
                + decision
                + [
                    _arg(
                        "--deploy",
                        action="store_true",
                        help="then run the deploy-model Prefect deployment for it",
                    ),
                    _arg("--endpoint", default=DEFAULT_GROUP, help="endpoint to deploy to"),
                    _arg(
                        "--deployment",
                        default="deploy-model/deploy-model",
                        help="the Prefect deployment that deploys (default: %(default)s)",
                    ),
                ],
            ),
            ("reject", _set_approval(Approval.REJECTED), "reject a version", version + decision),
        ],
    )
    endpoint = _arg("name", help="endpoint name")
    server_args = [
        _arg("--host", default="127.0.0.1"),
        _arg("--port", type=int, default=0, help="0: a free port"),
        lambda p: add_config_arguments(p, ServerOptions),
    ]
    _area(
        areas,
        "endpoints",
        "model endpoints",
        [
            ("list", endpoints_list, "list endpoints", []),
            ("describe", endpoints_describe, "config, history and server", [endpoint]),
            (
                "start",
                endpoints_start,
                "start its server from the stored config",
                [endpoint, *server_args],
            ),
            (
                "deploy",
                endpoints_deploy,
                "deploy a version: create, or update by a strategy",
                [endpoint, *version, *server_args, lambda p: add_config_arguments(p, UpdatePolicy)],
            ),
            (
                "weights",
                endpoints_weights,
                "change the traffic weights of its variants",
                [endpoint, _arg("weights", nargs="+", type=_weight, metavar="VARIANT=WEIGHT")],
            ),
            (
                "rollback",
                endpoints_rollback,
                "serve an earlier config again",
                [
                    endpoint,
                    _arg("--to", type=int, help="config number (default: the last other one)"),
                ],
            ),
            ("delete", endpoints_delete, "stop its server and retire it", [endpoint]),
            ("logs", endpoints_logs, "print its server's log", [endpoint]),
            (
                "invoke",
                endpoints_invoke,
                "send one request",
                [
                    endpoint,
                    _arg("--body", required=True, help="request body ('-': standard input)"),
                    _arg("--content-type", default="application/json"),
                    _arg("--accept"),
                    _arg("--target-variant"),
                ],
            ),
        ],
    )
    region = _arg("--region", help="AWS region (default: the AWS config's)")
    _area(
        areas,
        "ec2",
        "training instances on EC2 (the ec2 backend)",
        [
            (
                "list",
                ec2_list,
                "list Skiff's live training instances",
                [region, _arg("--all", action="store_true", help="terminated ones too")],
            ),
            (
                "reap",
                ec2_reap,
                "terminate leftovers: past their deadline, of one job, or all",
                [
                    region,
                    _arg("--job-id", help="every instance of this job (its info.job_id)"),
                    _arg(
                        "--all",
                        action="store_true",
                        help="every Skiff instance, even running jobs'",
                    ),
                ],
            ),
        ],
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(Store(args.store), args)
    except SkiffError as exc:
        print(f"skiff: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
