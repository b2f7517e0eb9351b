"""Approve, then deploy: an approval can start the ``deploy-model`` Prefect deployment.

As in SageMaker projects, where approving a model package triggers its deployment, ``skiff
models approve VERSION --deploy`` records the approval and then creates a run of the
deployment; a Prefect worker carries it out (see ``deploy/prefect.yaml``).
"""

from __future__ import annotations

from uuid import UUID

from core.errors import PipelineError
from core.store import Store

DEPLOY_MODEL = "deploy-model/deploy-model"


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
