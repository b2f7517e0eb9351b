"""Options of the ``dask`` backend (light: pydantic only, so the pipeline reads them without
importing ``distributed``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from backends.base import BackendOptions
from core.records.jobs import JobResources

_RESOURCES = JobResources()  # the runner's defaults, which these options start from


class DaskOptions(BackendOptions):
    """The dask backend's options: exactly one cluster (a LocalCluster Skiff creates, an
    existing scheduler, or a cluster class); ``threads`` is per worker (default 1)."""

    scheduler: str | None = Field(
        None, description="address of an existing Dask scheduler (tcp://host:8786)"
    )
    workers: int | None = Field(
        None, ge=1, le=1024, description="workers of the LocalCluster Skiff creates (default 2)"
    )
    cluster_class: str | None = Field(
        None, description="a cluster class to create, as 'package.module:Class'"
    )
    cluster_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="keyword arguments of cluster_class"
    )
    collective_timeout: float = Field(
        _RESOURCES.collective_timeout,
        gt=0,
        description="seconds a collective may wait before the job fails",
    )
    connect_timeout: float = Field(
        _RESOURCES.connect_timeout, gt=0, description="seconds to reach the scheduler"
    )
    placement: Literal["cluster", "worker"] | None = Field(
        None,
        description="cluster: each job trains across every worker with xgboost.dask, one job "
        "at a time; worker: each job trains on one worker thread, as many side by side as the "
        "cluster has threads (default: cluster; a tuning job's trials: worker)",
    )
    partition_mb: int = Field(
        _RESOURCES.partition_mb,
        ge=1,
        le=4096,
        description="transform jobs: the MB of input each worker task reads and scores",
    )

    @model_validator(mode="after")
    def _one_cluster(self) -> DaskOptions:
        """Refuse combinations that name more than one cluster, naming the options."""
        scheduler, cluster_class = self.scheduler, self.cluster_class
        sized = self.workers or self.threads
        if scheduler and cluster_class:
            raise ValueError(
                "give either scheduler or cluster_class, not both: "
                f"scheduler={scheduler!r}, cluster_class={cluster_class!r}"
            )
        if scheduler and sized:
            raise ValueError(
                "workers and threads size a cluster Skiff creates; with "
                f"scheduler={scheduler!r} the cluster is already sized"
            )
        if cluster_class and sized:
            raise ValueError(
                "workers and threads size Skiff's LocalCluster; pass the size of "
                f"{cluster_class!r} in cluster_kwargs"
            )
        if self.cluster_kwargs and not cluster_class:
            raise ValueError("cluster_kwargs needs cluster_class")
        if scheduler and "://" not in scheduler:
            raise ValueError(f"scheduler {scheduler!r} must be an address like tcp://host:8786")
        return self
