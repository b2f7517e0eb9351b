"""``skiff transform VERSION INPUT OUTPUT``: score a data set with a model, no endpoint; and
``skiff transforms list|describe|stop``: the transform jobs in the store."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from core.clock import now
from core.records.transforms import (
    TransformJob,
    TransformStatus,
    TransformStore,
    content_type_of,
)
from core.store import Store
from flows.commands import AS_JSON, Area, arg, described, job_record, print_json, table, transitions
from flows.transforms.jobs import model_reference, run, summary_line

TRANSFORMS = Area("transforms", "batch transform jobs")
NAME = arg("name", help="transform job name")


def add_transform_command(areas: Any) -> None:
    parser = areas.add_parser(
        "transform",
        help="score a whole data set (file:// or s3://) with a model version, no endpoint",
        description="One output object per input object (<input name>.out), rows in input order.",
    )
    parser.add_argument("version", help="a registered version (3, or GROUP:3) or a hosted model")
    parser.add_argument("input", help="an input object or prefix (CSV, JSON lines, Parquet)")
    parser.add_argument("output", help="the output prefix")
    add = parser.add_argument
    add("--group", default="bank-marketing", help="the version's model group (%(default)s)")
    add("--name", help="the job's name (default: transform-<time>)")
    add("--backend", default="local", help="local (all cores) or dask (%(default)s)")
    add("--threads", type=int, help="local: threads (default: every core)")
    add("--scheduler", help="dask: a scheduler's address (default: a LocalCluster)")
    add("--workers", type=int, help="dask: the LocalCluster's workers (default 2)")
    add(
        "--content-type",
        help="text/csv, application/jsonlines or application/x-parquet "
        "(default: from the input's name, else CSV)",
    )
    add("--header", action="store_true", help="CSV: each object's first line names its columns")
    add("--split-type", choices=("Line", "None"), default="Line")
    add("--batch-strategy", choices=("MultiRecord", "SingleRecord"), default="MultiRecord")
    add("--max-payload-mb", type=int, default=6, help="the most bytes of a batch (%(default)s)")
    add("--accept", choices=("text/csv", "application/jsonlines"), default="text/csv")
    add("--assemble-with", choices=("Line", "None"), default="Line")
    add("--input-filter", help="JSONPath of what the model reads, e.g. '$[1:]'")
    add("--join-input", action="store_true", help="join each output to its input record")
    add("--output-filter", help="JSONPath of what is written, e.g. '$[0,-1]'")
    add("--skip-bad-rows", action="store_true", help="count and skip rows that cannot be read")
    add("--max-runtime", type=float, default=86400, help="seconds (%(default)s)")
    parser.set_defaults(func=transform, needs_store=True)


def transform(store: Store, args: argparse.Namespace) -> None:
    backend: dict[str, Any] = {"threads": args.threads, "scheduler": args.scheduler}
    backend |= {"workers": args.workers}
    spec = {
        "name": args.name or f"transform-{now()[:19].replace(':', '-').replace('T', '-')}",
        **model_reference(store, args.version, args.group),
        "input_url": args.input,
        "output_url": args.output,
        "content_type": content_type_of(args.content_type, args.input) or "text/csv",
        "header": args.header,
        "split_type": args.split_type,
        "batch_strategy": args.batch_strategy,
        "max_payload_mb": args.max_payload_mb,
        "accept": args.accept,
        "assemble_with": args.assemble_with,
        "input_filter": args.input_filter,
        "join_source": "Input" if args.join_input else "None",
        "output_filter": args.output_filter,
        "skip_bad_rows": args.skip_bad_rows,
        "backend": args.backend,
        "max_runtime_seconds": args.max_runtime,
    }
    shown: list[str] = []

    def progress(status: TransformStatus) -> None:
        line = summary_line(status)
        if status.rows and (not shown or shown[-1] != line):
            print(line, flush=True)
            shown.append(line)

    options = {k: v for k, v in backend.items() if v is not None}
    # The first object's fit to the model is checked by the job's runner: this process stays
    # light (no pandas, no xgboost) while the job runs.
    status = run(store, TransformJob(**spec), options, progress, deep_check=False)
    print(f"transform job {status.name}: {status.status}; {summary_line(status)}")
    for url in status.outputs:
        print(f"  {url}")
    for example in status.bad_row_examples:
        print(f"  skipped {example}")
    if status.failure_reason:
        print(f"  {status.failure_reason}", file=sys.stderr)
        raise SystemExit(1)


@TRANSFORMS.command("list", "list transform jobs, newest first")
def transforms_list(store: Store, args: argparse.Namespace) -> None:
    jobs = TransformStore(store)
    rows = []
    for name in jobs.names():
        status, spec = jobs.status(name), jobs.spec(name)
        rows.append(
            {
                "name": name,
                "status": "Lost" if jobs.lost(status) else status.status,
                "model": spec.source,
                "rows": status.rows,
                "rows_per_s": f"{status.rows_per_second:.0f}",
                "bad_rows": status.bad_rows,
                "created": spec.created_at,
            }
        )
    rows.sort(key=lambda r: r["created"], reverse=True)
    print(table(rows, ["name", "status", "model", "rows", "rows_per_s", "bad_rows", "created"]))


@TRANSFORMS.command("describe", "show a transform job's spec and status", NAME, AS_JSON)
def transforms_describe(store: Store, args: argparse.Namespace) -> None:
    jobs = TransformStore(store)
    if args.json:  # the whole record, read once by job_record
        print_json(job_record(jobs, args.name))
        return
    status, spec = jobs.status(args.name), jobs.spec(args.name)
    lost = jobs.lost(status)
    options = {
        "header": spec.header,
        "input filter": spec.input_filter,
        "join": spec.join_source if spec.join_source != "None" else None,
        "output filter": spec.output_filter,
        "skip bad rows": spec.skip_bad_rows,
    }
    fields = {
        "failure": status.failure_reason,
        "lost": lost,
        "model": f"model {spec.model}"
        if spec.model
        else f"{spec.model_group}:{spec.model_version}",
        "input": f"{spec.input_url} ({spec.content_type})",
        "output": spec.output_url,
        "options": ", ".join(f"{k} {v}" for k, v in options.items() if v),
        "backend": spec.backend,
        "rows": f"{status.rows:,} scored ({status.rows_per_second:,.0f}/s), {status.bad_rows} bad, "
        f"{status.objects_done} of {status.objects} objects",
        "created": spec.created_at,
        "ended": status.ended_at,
    }
    sections = {
        "bad rows": status.bad_row_examples,
        "outputs": status.outputs,
        "transitions": transitions(status.transitions),
    }
    print(described(f"transform job {spec.name}: {status.status}", fields, sections))
    print("(--json: the whole record)")


@TRANSFORMS.command("stop", "ask a running transform job to stop", NAME)
def transforms_stop(store: Store, args: argparse.Namespace) -> None:
    status = TransformStore(store).request_stop(args.name)
    if status.status.terminal:
        print(f"transform job {args.name} already ended {status.status}")
    else:
        print(f"stop requested for transform job {args.name}; it stops within seconds")
