"""A transform job's Dask side: each input object cut into blocks that the workers read from
storage and score where they are; the runner writes the blocks' outputs in input order.

Blocks are byte ranges cut at line ends by ``fsspec.utils.read_block`` (what
``dask.dataframe.read_csv`` partitions with), Parquet objects one task per row group. The
rows are read by the endpoint's parser, as on one machine, not by ``dask.dataframe``: pandas'
rules differ (a row one field too wide shifts its columns silently) and know no line numbers.
Each worker loads the model once. At most a few blocks per worker thread are in flight, and a
block's output (a score a line) is a small part of its input, so the runner's memory is bounded
by the block size, not the data set's.
"""

from __future__ import annotations

import collections
import io
import threading
import time
from typing import TYPE_CHECKING, Any

import fsspec
from distributed import Client, Future

from algorithms.dask_client import connect, wait_for_workers
from algorithms.on_dask import fail_on_worker_loss
from core.records.transforms import CSV, Histogram, TransformJob
from core.store import Store
from serving.batch.outputs import OutputObject
from serving.batch.reading import is_parquet, line_batches, table_batches
from serving.batch.scoring import EXAMPLES, BadRow, Layout, Scorer, add_to_histogram

if TYPE_CHECKING:
    from serving.batch.run import TransformRunner

SILENCE = 30.0  # seconds without a worker's heartbeat: it is lost

_models: dict[str, Any] = {}  # per worker process: the job's model, loaded once
_loading = threading.Lock()


def transform_on_cluster(runner: TransformRunner, scorer: Scorer, inputs: list[str]) -> list[str]:
    """Score every object on the cluster; returns the outputs' URLs."""
    r = runner.spec.resources
    client = connect(str(r.scheduler), r.connect_timeout)
    with client:
        if r.workers:
            wait_for_workers(client, r.workers, r.worker_start_timeout)
        slots = sum(w["nthreads"] for w in client.scheduler_info()["workers"].values())
        runner.log(f"scoring on {r.cluster or r.scheduler}: {slots} worker thread(s)")
        runner.started = time.monotonic()  # rows/s from here: not the workers' start
        outputs = []
        with fail_on_worker_loss(client, SILENCE):
            for url in inputs:
                outputs.append(_object(runner, scorer, client, url, max(slots, 1) * 2))
                runner.progress(objects_done=runner.status.objects_done + 1)
        return outputs


def _object(runner: TransformRunner, scorer: Scorer, client: Client, url: str, window: int) -> str:
    from serving.batch.run import plan

    spec, options = runner.spec, runner.store.storage_options
    with fsspec.open(url, "rb", **options) as f:
        layout, _ = plan(scorer, f, url)
        if is_parquet(spec):  # a task a row group, counted in the same open
            import pyarrow.parquet as pq

            f.seek(0)
            tasks = [("group", i) for i in range(pq.ParquetFile(f).num_row_groups)]
        else:
            size = f.size if hasattr(f, "size") else f.seek(0, 2)
            block = spec.resources.partition_mb * 1024 * 1024
            tasks = [("bytes", start) for start in range(0, max(size, 1), block)]
    shared = (spec.model_dump_json(), runner.store.root, url, layout)
    out = OutputObject(runner.output_url(url), options)
    pending: collections.deque[Future] = collections.deque()
    lines = 0  # in the object, before the block being written
    try:
        for kind, where in tasks:
            pending.append(client.submit(_score_block, *shared, kind, where, pure=False))
            while len(pending) >= window:
                lines = _write(runner, out, pending.popleft(), lines)
        while pending:
            lines = _write(runner, out, pending.popleft(), lines)
        return out.publish()
    except BaseException:
        client.cancel(list(pending))
        out.discard()
        raise


def _write(runner: TransformRunner, out: OutputObject, future: Future, lines: int) -> int:
    result = future.result()
    if isinstance(result, BadRow):  # the job's first bad row, numbered in its object
        raise result.shifted(lines)
    out.write(result.pop("text"))
    result["examples"] = [e.shifted(lines) for e in result["examples"]]
    runner.count(result)
    return lines + result["lines"]


def _score_block(
    spec_json: str, root: str, url: str, layout: Layout, kind: str, where: int
) -> dict[str, Any] | BadRow:
    """On a worker: read one block of ``url`` and score it; its output, counts, and bad rows
    numbered from the block's first line (or the first bad row, which fails the job)."""
    spec = TransformJob.model_validate_json(spec_json)
    scorer = _scorer(spec, root)
    options = Store(root).storage_options
    parts, rows, bad, examples = [], 0, 0, []
    histogram = Histogram()
    with fsspec.open(url, "rb", **options) as f:
        if kind == "group":
            import pyarrow.parquet as pq

            table = pq.ParquetFile(f).read_row_group(where, columns=layout.names)
            batches = table_batches(table)
            line_count = table.num_rows
        else:
            size = spec.resources.partition_mb * 1024 * 1024
            block = fsspec.utils.read_block(f, where, size, delimiter=b"\n")
            source = io.BytesIO(block)
            if where == 0 and spec.header and spec.content_type == CSV:
                source.readline()  # the header: its line counts
            skipped = 1 if source.tell() else 0
            line_count = block.count(b"\n") + (0 if not block or block.endswith(b"\n") else 1)
            batches = line_batches(source, url, spec, first_line=1 + skipped)
    try:
        for batch in batches:
            scored = scorer.score(batch, layout, url)
            parts.append(scored.text)
            rows, bad = rows + scored.rows, bad + scored.bad
            examples.extend(scored.examples)
            add_to_histogram(histogram, scored.scores)
    except BadRow as row:  # returned, not raised: the runner numbers it in its object
        return row
    return {
        "text": b"".join(parts),
        "rows": rows,
        "bad": bad,
        "examples": examples[:EXAMPLES],
        "lines": line_count,
        "counts": histogram.counts,
        "below": histogram.below,
        "above": histogram.above,
    }


def _scorer(spec: TransformJob, root: str) -> Scorer:
    from serving.batch.run import load_for

    key = f"{root}|{spec.source}"
    with _loading:  # a worker's threads take their blocks at once: one loads the model
        if key not in _models:
            _models[key] = load_for(Store(root), spec)
    return Scorer(spec, _models[key])
