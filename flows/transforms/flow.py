"""Transform jobs in Prefect: the ``transform`` flow scores a data set with a model version
(progress as a progress artifact, then a summary with a histogram of the scores), and runs a
transform job recorded by ``skiff api``::

    python -m flows.transforms.flow STORE NAME --backend local --options '{}'
"""

from __future__ import annotations

import sys
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    update_progress_artifact,
)

from backends import get_backend
from core.errors import SkiffError, TransformError
from core.records.jobs import Secondary, Status
from core.records.transforms import TransformJob, TransformStatus, TransformStore
from core.store import Store
from flows.api.job_flow import recorded_job_main
from flows.states import fails_with_reason
from flows.transforms import jobs, report
from flows.transforms.jobs import summary_line


class _Progress:
    """The job's progress as a Prefect progress artifact (objects done, in percent)."""

    def __init__(self) -> None:
        self.artifact = create_progress_artifact(0.0, description="starting")
        self.logger = get_run_logger()
        self.shown = ""

    def __call__(self, status: TransformStatus) -> None:
        line = summary_line(status)
        if line == self.shown:
            return
        done = 100.0 * status.objects_done / status.objects if status.objects else 0.0
        update_progress_artifact(self.artifact, done, description=line)
        self.logger.info(line)
        self.shown = line


def _publish(spec: TransformJob, status: TransformStatus) -> None:
    create_markdown_artifact(
        report.markdown(spec, status),
        key=report.artifact_key(spec.name),
        description=f"transform job {spec.name}: {status.status}",
    )


def _ended(status: TransformStatus) -> str:
    if status.status != Status.COMPLETED:
        raise TransformError(
            f"transform job {status.name} ended {status.status}: {status.failure_reason}"
        )
    return summary_line(status)


@flow(name="transform", log_prints=True)
@fails_with_reason
def transform(
    store: str,
    version: int,
    input_url: str,
    output_url: str,
    group: str = "bank-marketing",
    name: str | None = None,
    backend: str = "local",
    backend_options: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
) -> str:
    """Score every object at ``input_url`` with ``group`` version ``version`` into
    ``output_url`` (``options``: the transform job's other fields, e.g. ``input_filter``)."""
    from core.clock import now

    chosen = name or f"transform-{now()[:19].replace(':', '-').replace('T', '-')}"
    spec = TransformJob(
        name=chosen, model_group=group, model_version=version, input_url=input_url,
        output_url=output_url, backend=backend, **(options or {}),
    )  # fmt: skip
    the_store = Store(store)
    status = jobs.run(the_store, spec, backend_options, _Progress())
    _publish(spec, status)
    return _ended(status)


@flow(name="transform-job", log_prints=True)
def transform_job(store: str, name: str, backend: str, options: dict[str, Any]) -> str:
    """Run the transform job ``name`` recorded by ``skiff api`` on ``backend`` to its end."""
    the_store = Store(store)
    records = TransformStore(the_store)
    try:
        chosen = get_backend(backend, **options)
    except SkiffError as exc:  # say why in the job's record, or it would only go silent
        reason = f"cannot use the {backend} backend: {exc}"
        records.end(name, Status.FAILED, Secondary.FAILED, reason)
        raise
    with chosen:
        status = chosen.run_recorded_transform(name, the_store)
    _publish(records.spec(name), status)
    return _ended(status)


def main(argv: list[str] | None = None) -> int:
    return recorded_job_main(transform_job, "python -m flows.transforms.flow", __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
