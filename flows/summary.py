"""What a pipeline run shows on the console: one line for an expected failure, and, when it
ends, where everything is, its metrics, and how to use and stop the endpoint it left."""

from __future__ import annotations

import json
import logging
from typing import Any

from flows import bank


def human_summary(summary: dict[str, Any]) -> str:
    store = summary["store"]
    lines = [f"store:          {store}"]
    if summary.get("dataset_id"):
        lines.append(f"dataset:        {summary['dataset_id']}")
    if summary.get("tuning_job"):
        lines.append(f"tuning job:     {summary['tuning_job']} (its best trial below)")
    if summary.get("job_name"):
        lines.append(f"training job:   {summary['job_name']} ({summary['job_status']})")
    metrics = summary.get("metrics", {})
    if metrics:
        lines.append("metrics:")
        lines += [f"  {name:<22}{value:.4f}" for name, value in metrics.items()]
    if summary.get("model_version"):
        lines.append(
            f"model:          {summary['model_group']} version {summary['model_version']} "
            f"({summary['approval_status']})"
        )
    if summary.get("deploy_decision"):
        lines.append(f"deployed:       {summary['deploy_decision']}")
    if summary.get("not_deployed"):
        lines.append(f"not deployed:   {summary['not_deployed']}")
    if summary.get("endpoint_url"):
        name, url = summary["endpoint_name"], summary["endpoint_url"]
        if summary.get("endpoint_deleted"):
            lines.append(f"endpoint:       {name} (deleted at the end of the run)")
        else:
            if summary.get("endpoint_kept"):
                lines.append(f"not deleted:    {summary['endpoint_kept']}")
            lines += [
                f"endpoint:       {name} at {url}",
                "  invoke it:",
                f"    curl -s {url}/invocations -H 'Content-Type: application/json' "
                f"-d '{{\"instances\": [{json.dumps(bank.EXAMPLE_RECORD)}]}}'",
                f"  stop it:      skiff --store {store} endpoints delete {name}",
            ]
    if summary.get("evaluation_url"):
        lines.append(f"evaluation:     {summary['evaluation_url']}")
    return "\n".join(lines)


class _NoRunFailures(logging.Filter):
    """Keeps Prefect's reports of a failed task or flow run (each with its traceback) off the
    console: they go to the run's log, in the Prefect UI, and the command ends with one line
    saying what failed."""

    def filter(self, record: logging.LogRecord) -> bool:
        ours = record.name.startswith(("prefect.task_runs", "prefect.flow_runs"))
        return not (ours and record.levelno >= logging.ERROR)


def one_line_failures() -> None:
    """Expected failures end in one ``error:`` line on the console (``--debug``: everything)."""
    for handler in logging.getLogger().handlers:  # Prefect's console handler is the root's
        handler.addFilter(_NoRunFailures())
