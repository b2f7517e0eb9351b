"""The entry point of a transform job: ``python -m serving.batch.run <spec-url>``.

The backend runs it as it runs a training job's runner (a child process it watches), and it
keeps its job the same way (``algorithms.watch``): heartbeat, max runtime, stop requests. It
loads the model once, then scores every input object in turn into its output object: here,
batches parsed and predicted by a pool of threads (the parser and XGBoost release the GIL),
written in input order; or, where the spec names a Dask scheduler, blocks of each object
scored on the cluster's workers (``serving.batch.on_dask``). Progress (objects, rows, rows/s)
is saved every few seconds; the outputs are listed once every one is complete.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from algorithms.run import Runner
from core.errors import TransformError
from core.records.jobs import Secondary, Status, split_spec_url
from core.records.transforms import CSV, TransformJob, TransformStatus, TransformStore
from core.store import Store
from serving.batch.options import check_options
from serving.batch.outputs import OutputObject
from serving.batch.reading import (
    is_parquet,
    line_batches,
    list_inputs,
    output_name,
    parquet_batches,
    parquet_columns,
    read_header,
)
from serving.batch.scoring import (
    EXAMPLES,
    Layout,
    Scored,
    Scorer,
    add_to_histogram,
)
from serving.dataplane.loading import LoadedModel, load_hosted, load_model

PROGRESS_SECONDS = 2.0  # how often the record's counts are saved


def load_for(store: Store, spec: TransformJob) -> LoadedModel:
    """The model a transform job scores with, loaded and warmed up."""
    if spec.model is not None:
        return load_hosted(store, spec.model)
    return load_model(store, str(spec.model_group), int(spec.model_version or 0))


def open_input(url: str, storage_options: dict[str, Any]) -> Any:
    import fsspec

    try:
        return fsspec.open(url, "rb", **storage_options).open()
    except (OSError, ValueError) as exc:
        raise TransformError(f"cannot read {url}: {exc}") from None


def plan(scorer: Scorer, f: Any, url: str) -> tuple[Layout, Any]:
    """How the object open as ``f`` is read (its layout), and its batches.

    Raises:
        TransformError: its rows do not fit the model (naming the object and why).
    """
    spec = scorer.spec
    if is_parquet(spec):
        names = parquet_columns(f, url)
        layout = scorer.parquet_layout(url, names)
        f.seek(0)
        return layout, parquet_batches(f, url, layout.names)
    header = read_header(f, url) if spec.header and spec.content_type == CSV else None
    start = f.tell()
    first_line = f.readline()
    f.seek(start)
    layout = scorer.csv_layout(url, first_line, header) if spec.content_type == CSV else Layout()
    return layout, line_batches(f, url, spec, first_line=2 if header else 1)


def check_first_object(store: Store, spec: TransformJob, url: str) -> None:
    """Load the model and read how the first input object fits it: what would fail the job
    at once fails here, before it is recorded."""
    scorer = Scorer(spec, load_for(store, spec))
    with open_input(url, store.storage_options) as f:
        plan(scorer, f, url)


class TransformRunner(Runner):
    """Runs one transform job."""

    spec: TransformJob
    status: TransformStatus

    def __init__(self, store: Store, name: str):
        super().__init__(TransformStore(store), name)
        self.started = time.monotonic()
        self._saved_at = 0.0

    def _run(self) -> None:
        spec = self.spec
        self.move(Status.IN_PROGRESS, Secondary.STARTING, f"pid {os.getpid()}")
        check_options(spec)
        options = self.store.storage_options
        inputs = list_inputs(spec.input_url, options)
        model = load_for(self.store, spec)
        self.log(f"model {spec.source}: {model.n_features} features; {len(inputs)} object(s)")
        self.started = time.monotonic()
        self.move(
            Status.IN_PROGRESS,
            Secondary.TRANSFORMING,
            f"{len(inputs)} object(s)",
            objects=len(inputs),
        )
        scorer = Scorer(spec, model)
        outputs = []
        if spec.resources.scheduler:
            from serving.batch.on_dask import transform_on_cluster  # distributed only here

            outputs = transform_on_cluster(self, scorer, inputs)
        else:
            for url in inputs:
                outputs.append(self.transform_object(scorer, url))
                self.progress(objects_done=self.status.objects_done + 1)
        self.finish(outputs)

    def output_url(self, input_url: str) -> str:
        return f"{self.spec.output_url.rstrip('/')}/{output_name(input_url, self.spec.input_url)}"

    def transform_object(self, scorer: Scorer, url: str) -> str:
        """Score one input object into its output object; returns the output's URL."""
        out = OutputObject(self.output_url(url), self.store.storage_options)
        try:
            with self._open(url) as f:
                layout, batches = plan(scorer, f, url)
                for scored in _in_order(scorer, batches, layout, url, self._threads()):
                    out.write(scored.text)
                    self.count(scored)
            return out.publish()
        except BaseException:
            out.discard()  # nothing half-written is left under the output's name
            raise

    def _open(self, url: str) -> Any:
        return open_input(url, self.store.storage_options)

    def _threads(self) -> int:
        return self.spec.resources.threads or os.cpu_count() or 1

    def count(self, scored: Scored | dict[str, Any]) -> None:
        """Add a batch's (or a block's) rows, bad rows and scores to the record."""
        with self._lock:
            s = self.status
            if isinstance(scored, Scored):
                add_to_histogram(s.histogram, scored.scores)
                rows, bad, examples = scored.rows, scored.bad, scored.examples
            else:
                rows, bad, examples = scored["rows"], scored["bad"], scored["examples"]
                pairs = zip(s.histogram.counts, scored["counts"], strict=True)
                s.histogram.counts = [a + b for a, b in pairs]
                s.histogram.below += scored["below"]
                s.histogram.above += scored["above"]
            s.rows += rows
            s.bad_rows += bad
            s.bad_row_examples = (s.bad_row_examples + [str(e) for e in examples])[:EXAMPLES]
        if time.monotonic() - self._saved_at > PROGRESS_SECONDS:
            self.progress()

    def progress(self, **changes: Any) -> None:
        """Save the counts so far (no transition: a status change is not what happened)."""
        with self._lock:
            if self.status.status.terminal:
                return
            elapsed = max(time.monotonic() - self.started, 1e-9)
            changes |= {"rows_per_second": round(self.status.rows / elapsed, 1)}
            self.status = self.status.model_copy(update=changes)
            self.jobs.write_status(self.status)
        self._saved_at = time.monotonic()

    def finish(self, outputs: list[str]) -> None:
        s = self.status
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = round(s.rows / elapsed, 1)
        skipped = f", {s.bad_rows} bad row(s) skipped" if s.bad_rows else ""
        self.move(
            Status.COMPLETED,
            Secondary.COMPLETED,
            f"{s.rows} rows in {elapsed:.1f} s ({rate:.0f} rows/s){skipped}",
            outputs=outputs,
            objects_done=len(outputs),
            rows_per_second=rate,
        )


def _in_order(scorer: Scorer, batches: Any, layout: Layout, url: str, threads: int) -> Any:
    """Each batch scored in a pool of ``threads``, yielded in input order; one batch per
    thread and one more are read ahead, so memory holds a few batches whatever the object's
    size (more read ahead bought no speed, measured on 2 cores)."""
    pending: collections.deque[Future[Scored]] = collections.deque()
    with ThreadPoolExecutor(threads, thread_name_prefix="skiff-transform") as pool:
        try:
            for batch in batches:
                pending.append(pool.submit(scorer.score, batch, layout, url))
                while len(pending) > threads or (pending and pending[0].done()):
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.batch.run", description=__doc__)
    parser.add_argument("spec_url", help="URL of the transform job's job.json in the store")
    args = parser.parse_args(argv)
    root, sep, tail = args.spec_url.rpartition("/transforms/")
    if not sep:
        split_spec_url(args.spec_url)  # says what a spec URL is
    name = tail.removesuffix("/job.json")
    status = TransformRunner(Store(root), name).run()
    return 0 if status.status == Status.COMPLETED else 1


if __name__ == "__main__":
    sys.exit(main())
