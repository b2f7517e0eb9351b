"""``skiff models list|describe|approve|reject``: registered model versions."""

from __future__ import annotations

import argparse
import getpass

from core.records.registry import Approval, ModelRegistry
from core.store import Store
from flows.commands import Area, arg, print_json, table

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


@MODELS.command("describe", "show a version", *VERSION)
def models_describe(store: Store, args: argparse.Namespace) -> None:
    print_json(ModelRegistry(store).get(args.group, args.version).model_dump(mode="json"))


@MODELS.command("approve", "approve a version (and deploy it)", *VERSION, *DECISION, *DEPLOY)
def models_approve(store: Store, args: argparse.Namespace) -> None:
    version = _decide(store, args, Approval.APPROVED)
    if args.deploy:
        from flows.approval import request_deploy  # imports Prefect: only when asked

        run = request_deploy(store, version.group, version.version, args.endpoint, args.deployment)
        print(f"deploying to endpoint {args.endpoint}: flow run {run} of {args.deployment}")


@MODELS.command("reject", "reject a version", *VERSION, *DECISION)
def models_reject(store: Store, args: argparse.Namespace) -> None:
    _decide(store, args, Approval.REJECTED)


def _decide(store: Store, args: argparse.Namespace, status: Approval):
    version = ModelRegistry(store).set_approval(
        args.group, args.version, status, by=args.by, reason=args.reason
    )
    print(f"{version.group} version {version.version}: {version.approval_status}")
    return version
