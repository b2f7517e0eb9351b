"""``skiff models list|describe|approve|reject``: registered model versions."""

from __future__ import annotations

import argparse
import getpass

from core.errors import OptionsConflict, PipelineError
from core.records.registry import Approval, ModelRegistry
from core.store import Store
from flows.commands import AS_JSON, Area, aligned, arg, described, print_json, table
from serving.control import servers

DEFAULT_GROUP = "bank-marketing"
MODELS = Area("models", "registered model versions")
VERSION = (
    arg("version", type=int, help="version number"),
    arg("--group", default=DEFAULT_GROUP, help=f"default: {DEFAULT_GROUP}"),
)
DECISION = (
    arg("--reason", default="", help="why, for the record"),
    arg("--by", default=getpass.getuser(), help="who (default: you)"),
)
DEPLOY = (
    arg("--deploy", action="store_true", help="then run the deploy-model Prefect deployment"),
    arg("--no-wait", action="store_true", help="with --deploy: do not follow the deploy run"),
    arg("--endpoint", default=DEFAULT_GROUP, help="endpoint to deploy to"),
    arg(
        "--deployment",
        default="deploy-model/deploy-model",
        help="the Prefect deployment that deploys (default: %(default)s)",
    ),
)


@MODELS.command("list", "list versions", arg("--group", help="one model group (default: all)"))
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
    print(table(rows, ["group", "version", "approval", "validation_auc", "job", "created"]))


@MODELS.command("describe", "show a version", *VERSION, AS_JSON)
def models_describe(store: Store, args: argparse.Namespace) -> None:
    mv = ModelRegistry(store).get(args.group, args.version)
    if args.json:
        print_json(mv.model_dump(mode="json"))
        return
    fields = {
        "training job": mv.job_name,
        "tuning job": mv.tuning_job,
        "dataset": mv.dataset_id,
        "algorithm": f"{mv.algorithm} ({len(mv.features)} features)",
        "artifact": f"{mv.artifact_url} (SHA-256 {mv.artifact_sha256[:12]}…)",
        "image": mv.image,
        "registered": mv.created_at,
    }
    history = [
        f"{c.at}  {c.status}"
        + (f" by {c.by}" if c.by else "")
        + (f": {c.reason}" if c.reason else "")
        for c in mv.approval_history
    ]
    sections = {
        "metrics": aligned(mv.metrics),
        "hyperparameters": aligned(dict(sorted(mv.hyperparameters.items())), "{:g}"),
        "approval": history,
    }
    print(described(f"{mv.group} version {mv.version} ({mv.approval_status})", fields, sections))
    print("(--json: the whole record)")


@MODELS.command("approve", "approve a version (and deploy it)", *VERSION, *DECISION, *DEPLOY)
def models_approve(store: Store, args: argparse.Namespace) -> None:
    if args.no_wait and not args.deploy:  # refused before anything is recorded
        raise OptionsConflict("--no-wait is --deploy's: there is no deploy run to follow")
    version = _decide(store, args, Approval.APPROVED)
    if not args.deploy:
        return
    from flows.approval import follow_run, request_deploy  # imports Prefect: only when asked
    from flows.commands.endpoints import say

    run = request_deploy(store, version.group, version.version, args.endpoint, args.deployment)
    print(f"deploying to endpoint {args.endpoint}: flow run {run} of {args.deployment}")
    if args.no_wait:
        return
    state = follow_run(run, say)
    if not state.is_completed():
        raise PipelineError(f"the deploy run ended {state.name}: {state.message or 'see its log'}")
    server = servers.running(store, args.endpoint)
    where = f" at {server.url}" if server else ""
    print(f"endpoint {args.endpoint}: {version.group} version {version.version} serves{where}")


@MODELS.command("reject", "reject a version", *VERSION, *DECISION)
def models_reject(store: Store, args: argparse.Namespace) -> None:
    _decide(store, args, Approval.REJECTED)


def _decide(store: Store, args: argparse.Namespace, status: Approval):
    version = ModelRegistry(store).set_approval(
        args.group, args.version, status, by=args.by, reason=args.reason
    )
    print(f"{version.group} version {version.version}: {version.approval_status}")
    return version
