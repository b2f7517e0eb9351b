"""Approval gates the pipeline's deploys: only an approved version is deployed, and an
approval can start the ``deploy-model`` Prefect deployment.

As in SageMaker projects, where approving a model package triggers its deployment, ``skiff
models approve VERSION --deploy`` records the approval and then creates a run of the
deployment; a Prefect worker carries it out (see ``deploy/prefect.yaml``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

from core.errors import NotApproved, PipelineError
from core.records.registry import Approval, ModelRegistry
from core.store import Store
from serving.control.deploys import Deployment, deploy

DEPLOY_MODEL = "deploy-model/deploy-model"


def deploy_approved(
    store: Store, endpoint: str, group: str, version: int, **options: Any
) -> Deployment:
    """Deploy ``group`` version ``version`` to ``endpoint`` (``serving.control.deploys``'s
    options), if it is approved.

    Raises:
        NotApproved: the version is not Approved (the message says how to approve it).
    """
    mv = ModelRegistry(store).get(group, version)
    if mv.approval_status != Approval.APPROVED:
        raise NotApproved(
            f"{group} version {version} is {mv.approval_status}, so it is not deployed; approve "
            f"it with: skiff --store {store.root} models approve {version} --group {group}"
        )
    return deploy(store, endpoint, group, version, **options)


def request_deploy(
    store: Store, group: str, version: int, endpoint: str, deployment: str = DEPLOY_MODEL
) -> UUID:
    """Create a run of ``deployment`` for ``group`` version ``version``; return its id.

    Raises:
        PipelineError: no Prefect server answers, or it has no such deployment.
    """
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL

    parameters = {
        "model_version": version,
        "model_group": group,
        "store": store.root,
        "endpoint_name": endpoint,
    }
    where = PREFECT_API_URL.value() or "the ephemeral Prefect server"
    try:
        run = run_deployment(
            deployment, parameters=parameters, timeout=0, tags=["skiff", "approval"]
        )
    except ObjectNotFound:
        raise PipelineError(
            f"no deployment {deployment!r} on {where}: create it with deploy/serve.sh"
        ) from None
    except (OSError, RuntimeError) as exc:  # httpx errors are OSErrors; API mismatch Runtime
        raise PipelineError(f"could not reach the Prefect API at {where}: {exc}") from None
    return run.id


def follow_run(
    run_id: UUID, say: Callable[[str], None], every: float = 1.0, hint_after: float = 30.0
) -> Any:
    """Say each state the flow run ``run_id`` passes through, until it ends; return its final
    state. A run no worker picks up is waited for, saying once where the worker comes from.
    """
    from prefect.client.orchestration import get_client

    seen, started, hinted = None, time.monotonic(), False
    with get_client(sync_client=True) as client:
        while True:
            state = client.read_flow_run(run_id).state
            if state is not None and state.name != seen:
                seen = state.name
                say(f"deploy run {run_id}: {state.name}")
            if state is not None and state.is_final():
                return state
            waiting = state is None or state.is_scheduled() or state.is_pending()
            if waiting and not hinted and time.monotonic() - started > hint_after:
                hinted = True
                say("no worker has picked it up yet: is deploy/serve.sh (a worker) running?")
            time.sleep(every)
