"""A training job created through ``skiff api``, run as a Prefect flow run of its own (named
and tagged after the job, visible in the UI): ``python -m flows.api.job_flow STORE NAME
--backend B --options JSON``.

``skiff api`` records the job and starts this process in a session of its own, so the job
outlives the server (Ctrl-C on it); the job itself belongs to its runner, as every job does.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from prefect import flow, tags

from backends import get_backend
from core.errors import SkiffError, TrainingFailed
from core.records.jobs import JobStore, Secondary, Status
from core.store import Store

TAG = "sagemaker-api"


@flow(name="sagemaker-training-job", log_prints=True)
def training_job(store: str, name: str, backend: str, options: dict[str, Any]) -> str:
    """Run the recorded job ``name`` on ``backend`` to its end."""
    try:
        chosen = get_backend(backend, **options)
    except SkiffError as exc:  # say why in the job's record, or it would only go silent
        reason = f"cannot use the {backend} backend: {exc}"
        JobStore(Store(store)).end(name, Status.FAILED, Secondary.FAILED, reason)
        raise
    with chosen:
        status = chosen.run_recorded(name, Store(store))
    if status.status != Status.COMPLETED:
        raise TrainingFailed(f"training job {name} ended {status.status}: {status.failure_reason}")
    return str(status.status)


def recorded_job_main(job_flow: Any, prog: str, doc: str | None, argv: list[str] | None) -> int:
    """``python -m <prog> STORE NAME --backend B --options JSON``: run ``job_flow`` on a job
    that ``skiff api`` recorded, as a flow run named and tagged after the job."""
    parser = argparse.ArgumentParser(prog=prog, description=doc)
    parser.add_argument("store")
    parser.add_argument("name")
    parser.add_argument("--backend", default="local")
    parser.add_argument("--options", default="{}", type=json.loads)
    args = parser.parse_args(argv)
    with tags(args.name, TAG):
        state = job_flow.with_options(flow_run_name=args.name)(
            args.store, args.name, args.backend, args.options, return_state=True
        )
    return 0 if state.is_completed() else 1


def main(argv: list[str] | None = None) -> int:
    return recorded_job_main(training_job, "python -m flows.api.job_flow", __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
