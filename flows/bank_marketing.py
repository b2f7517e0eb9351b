"""The bank-marketing pipeline: download → clean → split → upload → train → register → deploy
→ evaluate.

Run it as ``python -m flows.bank_marketing --help``, or as a Prefect deployment.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, tags
from prefect.client.orchestration import get_client
from prefect.runtime import flow_run
from pydantic import ValidationError

from backends.catalog import options_model
from core.errors import PipelineError, SkiffError, describe_invalid
from core.plugins import is_dotted
from core.records.jobs import JobStore
from core.records.registry import Approval, ModelRegistry, ModelVersion
from core.store import Store
from flows import bank, datasets, report, steps, temporary_server
from flows.caching import T, cached, code_version, result_storage
from flows.config import PipelineConfig, flow_docstring, flow_signature
from flows.flags import Parser, add_config_arguments, config_from_arguments
from flows.states import fails_with_reason
from flows.summary import human_summary, one_line_failures
from flows.training import TrainingRequest, job_name
from serving.control import deploys

TEST_METRICS = ("auc", "error_rate", "precision", "recall")


def run_pipeline(config: PipelineConfig) -> dict[str, Any]:
    """Run the steps up to ``config.until``; return the run's summary.

    Download, clean, split, upload and train are cached (see ``flows/caching.py``); register
    is idempotent; deploy and evaluate always run.

    Raises:
        PipelineError: training did not complete (its ``summary`` says how far the run got).
    """
    for package in (
        "flows",
        "backends",
        "algorithms",
        "serving",
        "core",
    ):  # their INFO lines: progress
        logging.getLogger(package).setLevel(logging.INFO)
    store = Store(config.store)
    store.ensure_layout()
    summary: dict[str, Any] = {
        "store": store.root,
        "backend": config.backend,
        "code_version": code_version(),
        "dataset_id": None,
        "job_name": None,
        "job_status": None,
        "model_version": None,
        "approval_status": None,
        "metrics": {},
    }

    storage = result_storage(store)  # once per run: on S3 it saves a Prefect block

    def step(task: T) -> T:
        return cached(task, storage, config.refresh)

    archive = step(steps.download)(
        config.source, store.root, config.sha256, config.max_archive_bytes
    )
    summary["archive_sha256"] = archive.sha256
    if config.stops_after("download"):
        return summary
    clean_options = bank.CleanOptions(
        drop_duration=config.drop_duration, drop_economic=config.drop_economic
    )
    options = clean_options.model_dump() | {"split": config.split, "split_seed": config.split_seed}
    dataset_id = datasets.dataset_id(archive.sha256, options)
    summary["dataset_id"] = dataset_id
    run_tags = (f"backend:{config.backend}", f"dataset:{dataset_id}")
    add_flow_run_tags(run_tags)
    with tags(*run_tags):
        table = step(steps.clean)(
            store.root, dataset_id, archive, clean_options, config.max_archive_bytes
        )
        if config.stops_after("clean"):
            return summary
        splits = step(steps.split)(store.root, dataset_id, table, config.split, config.split_seed)
        if config.stops_after("split"):
            return summary
        dataset = step(steps.upload)(
            store.root, dataset_id, splits, table.feature_schema, archive, options
        )
        if config.stops_after("upload"):
            return summary
        return train_and_deploy(config, store, dataset, summary, step)


def train_and_deploy(
    config: PipelineConfig,
    store: Store,
    dataset: datasets.Dataset,
    summary: dict[str, Any],
    step: Callable[[T], T],
) -> dict[str, Any]:
    """train → register → deploy → evaluate, then the run's report."""

    try:
        if config.tune:
            from flows.tuning.pipeline import TuningRequest  # optuna: only when tuning

            request = TuningRequest.from_config(config)
            status = step(steps.tune)(store.root, request, dataset)
            summary["tuning_job"] = JobStore(store).spec(status.name).tuning_job
        else:
            status = step(steps.train)(store.root, TrainingRequest.from_config(config), dataset)
    except PipelineError as exc:  # the job's record goes into the summary the error carries
        exc.summary = summary | exc.summary
        raise
    summary |= {
        "job_name": status.name,
        "job_status": str(status.status),
        "metrics": dict(status.metrics),
    }
    if config.stops_after("train"):
        return summary

    version = steps.register(store.root, config.model_group, status.name, config.approval_threshold)
    summary |= {
        "model_group": version.group,
        "model_version": version.version,
        "approval_status": str(version.approval_status),
    }
    if not config.stops_after("register"):
        if version.approval_status != Approval.APPROVED:
            summary["not_deployed"] = not_deployed_reason(version, config.approval_threshold)
        elif config.deploy_anyway:
            summary["deploy_decision"] = "--deploy-anyway: not compared with the live model"
        else:  # never replace a better live model unasked
            verdict = steps.compare_with_live(
                store.root, dataset, config.endpoint_name, version.group, version.version
            )
            key = "deploy_decision" if verdict.deploy else "not_deployed"
            summary[key] = verdict.reason
        if "not_deployed" in summary:
            get_run_logger().warning(summary["not_deployed"])
        else:
            get_run_logger().info(summary["deploy_decision"])
            deploy_and_evaluate(config, store, dataset, version.group, version.version, summary)
    report.publish(summary, store, dataset, version, summary["code_version"])
    return summary


def deploy_and_evaluate(
    config: PipelineConfig,
    store: Store,
    dataset: datasets.Dataset,
    group: str,
    version: int,
    summary: dict[str, Any],
) -> None:
    try:
        deployed = steps.deploy(
            store.root,
            config.endpoint_name,
            group,
            version,
            config.host,
            config.port,
            config.update,
            config.server,
            config.capture_to,
            config.capture_percent,
        )
        summary |= {
            "endpoint_name": deployed["endpoint_name"],
            "endpoint_url": deployed["endpoint_url"],
            "endpoint_created": deployed["created"],
        }
        if config.stops_after("deploy"):
            return
        run_key = f"runs/{flow_run.get_id() or job_name('run')}"
        result = steps.evaluate(
            store.root, dataset, config.endpoint_name, run_key, config.eval_batch_size
        )
        summary["test_metrics"] = {k: result["metrics"][k] for k in TEST_METRICS}
        # Kept with the version: a later run's report compares its test metrics with these.
        ModelRegistry(store).record_evaluation(
            group, version, summary["test_metrics"], result["url"]
        )
        summary["metrics"] |= summary["test_metrics"]
        summary["evaluation_url"] = result["url"]
        report.publish_evaluation(store, group, result)
    finally:
        if config.delete_endpoint and summary.get("endpoint_created"):
            deploys.delete(store, config.endpoint_name)
            summary["endpoint_deleted"] = True
        elif config.delete_endpoint and summary.get("endpoint_name"):
            # Only what the run created: this endpoint served before it, and serves on.
            summary["endpoint_kept"] = (
                f"{config.endpoint_name} served before this run, so it was updated and kept "
                "(--delete-endpoint deletes only an endpoint the run created)"
            )


def not_deployed_reason(version: ModelVersion, threshold: float | None) -> str:
    auc = version.metrics.get("validation_auc", float("nan"))
    why = (
        f" (validation AUC {auc:.4f} is below {threshold})"
        if threshold is not None and auc < threshold
        else ""
    )
    return (
        f"version {version.version} is {version.approval_status}{why}: not deployed; "
        "approve it with 'skiff models approve'"
    )


def add_flow_run_tags(new: tuple[str, ...]) -> None:
    """Tag the current flow run (tags known only once the run has started, like the dataset)."""
    run_id = flow_run.get_id()
    if not run_id:
        return
    with get_client(sync_client=True) as client:
        current = client.read_flow_run(run_id).tags
        client.update_flow_run(run_id, tags=sorted({*current, *new}))


def _bank_marketing(**options: Any) -> dict[str, Any]:
    return run_pipeline(PipelineConfig(**options))


# The flow's parameters are exactly PipelineConfig's fields (typed, with defaults), so the
# Prefect UI and `prefect deployment run --param` see the same options as the command line.
_bank_marketing.__signature__ = flow_signature(PipelineConfig)  # type: ignore[attr-defined]
_bank_marketing.__doc__ = flow_docstring(__doc__)
# validate_parameters=False: PipelineConfig checks them (each backend's options included), the
# one validation a run gets; Prefect's own pass would check the same models a second time. A
# deployment's parameters are also checked against their schema when a run is created.
bank_marketing = flow(
    name="bank-marketing", description=__doc__, log_prints=True, validate_parameters=False
)(fails_with_reason(_bank_marketing))


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The pipeline's flags; with ``--backend package.module:Class``, that backend's too."""
    parser = Parser(
        prog="python -m flows.bank_marketing",
        description="Train, register, deploy and evaluate a model on the UCI bank-marketing "
        "data (SageMaker's direct-marketing demo), as a Prefect flow.",
    )
    add_config_arguments(parser, PipelineConfig)
    chosen = argparse.ArgumentParser(add_help=False)
    chosen.add_argument("--backend", default="local")
    backend = chosen.parse_known_args(argv)[0].backend
    if is_dotted(backend):  # its options: flags of their own, gathered in backend_options
        try:
            options = options_model(backend)
        except SkiffError as exc:
            parser.error(f"--backend: {exc}")
        add_config_arguments(parser, options, ("backend_options",), f"{backend} options")
    parser.add_argument(
        "--summary-json",
        type=Path,
        metavar="FILE",
        help="also write the run's summary as JSON to FILE",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show failures' tracebacks here, not only in the run's log",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        config = config_from_arguments(args, PipelineConfig)
    except ValidationError as exc:  # one line: each option at fault, and why
        parser.error(describe_invalid(exc))
    if not args.debug:
        one_line_failures()
    temporary_server.start_if_needed()
    try:
        # Only what was given: the flow applies the defaults, and an option left out is not
        # "asked for" (a running endpoint's server is not refused for options nobody gave).
        summary = bank_marketing(**config.model_dump(exclude_unset=True))
        code = 0
    except SkiffError as exc:
        summary = {**getattr(exc, "summary", {}), "error": str(exc)}
        code = 1
    if args.summary_json:
        args.summary_json.write_text(json.dumps(summary, indent=2) + "\n")
    print("\n" + human_summary(summary) if "store" in summary else "", file=sys.stdout)
    if code:
        print(f"error: {summary['error']}", file=sys.stderr)
    return code


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    sys.exit(main())
