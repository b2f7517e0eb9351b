"""What a pipeline run prints when it ends: where everything is, its metrics, and how to use
and stop the endpoint it left running."""

from __future__ import annotations

import json
from typing import Any

from flows import bank


def human_summary(summary: dict[str, Any]) -> str:
    store = summary["store"]
    lines = [f"store:          {store}"]
    if summary.get("dataset_id"):
        lines.append(f"dataset:        {summary['dataset_id']}")
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
