"""The model registry: numbered, immutable model versions with metrics, lineage and approval.

Layout under the store root::

    registry/<group>/group.json                the group's description, when it was made
                                               (through SageMaker's API; the pipeline's
                                               groups begin with their first version)
    registry/<group>/<version>/version.json    the version, claimed whole (never changes)
    registry/<group>/<version>/approval.json   its approval status and the history of changes
    registry/<group>/<version>/evaluation.json its latest evaluation on the test split (the
                                               pipeline's, through an endpoint), if any

A version is a job's model file and manifest (the pipeline), or a SageMaker ``model.tar.gz``
with the image that serves it (a model package made through ``skiff api``: ``image`` set).

A version exists once its ``version.json`` does. It is claimed with one exclusive create of a
complete object, so two concurrent registrations never share a number and a crash leaves no
half version. Approval changes live in their own object because the version never changes.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Any

import fsspec
from pydantic import BaseModel, Field

from core.clock import now
from core.errors import AlreadyExistsError, NotFoundError, RegistryError, VersionNotFound
from core.names import check_name
from core.records.base import Records
from core.records.manifest import ModelManifest

# In approval.json and evaluation.json, not in version.json.
APPROVAL_FIELDS = {"approval_status", "approval_history", "test_metrics"}
# What a version takes from its job's manifest as it is (the artifact's fields are renamed).
FROM_MANIFEST = {
    "predictor",
    "algorithm",
    "hyperparameters",
    "metrics",
    "dataset_id",
    "job_name",
    "tuning_job",
    "features",
    "feature_schema",
    "provenance",
}


class Approval(StrEnum):
    PENDING = "PendingManualApproval"
    APPROVED = "Approved"
    REJECTED = "Rejected"


class ApprovalChange(BaseModel):
    status: Approval
    at: str = Field(default_factory=now)
    by: str = ""
    reason: str = ""


class ApprovalRecord(BaseModel):
    """``approval.json``: the current status and every change that led to it."""

    status: Approval
    history: list[ApprovalChange]


class ModelVersion(BaseModel):
    """A registered model version (SageMaker's model package)."""

    group: str
    version: int
    artifact_url: str
    artifact_sha256: str
    metadata_url: str
    predictor: str
    algorithm: str
    hyperparameters: dict[str, Any]
    metrics: dict[str, float]
    dataset_id: str | None = None
    job_name: str
    tuning_job: str | None = None  # the tuning job that chose it, its job one of its trials
    features: list[str]
    feature_schema: dict[str, Any] | None = None
    provenance: dict[str, Any] = Field(default_factory=dict)
    created_at: str = Field(default_factory=now)
    # A model package's: the image that serves its model.tar.gz, and CreateModelPackage's
    # request as given (what DescribeModelPackage echoes).
    image: str | None = None
    package_request: dict[str, Any] | None = None
    approval_status: Approval = Approval.PENDING
    approval_history: list[ApprovalChange] = Field(default_factory=list)
    # Its latest evaluation's metrics on the test split (none if it was never evaluated).
    test_metrics: dict[str, float] = Field(default_factory=dict)


class Evaluation(BaseModel):
    """``evaluation.json``: a version's latest metrics on the test split, and where from."""

    metrics: dict[str, float]
    url: str = ""  # the evaluation's own record
    at: str = Field(default_factory=now)


class ModelGroup(BaseModel):
    """``group.json``: a model package group made through SageMaker's API."""

    name: str
    description: str = ""
    created_at: str = Field(default_factory=now)


# A crash between a version's two writes leaves no approval.json: the safe default.
REGISTERED = ApprovalChange(status=Approval.PENDING, by="skiff", reason="registered")


class ModelRegistry(Records):
    """Registers, lists and approves model versions in a store."""

    @staticmethod
    def _key(group: str, version: int | None = None, file: str = "") -> str:
        parts = ["registry", group] + ([str(version)] if version is not None else [])
        return "/".join(parts + ([file] if file else []))

    def groups(self) -> list[str]:
        return self.store.list("registry")

    def create_group(self, group: ModelGroup) -> ModelGroup:
        """Record a group made before its first version.

        Raises:
            RegistryError: the name is invalid.
            AlreadyExistsError: the group exists (recorded, or holding versions).
        """
        check_name(group.name, "model group", RegistryError)
        if self.versions(group.name):
            raise AlreadyExistsError(f"model group {group.name!r} exists")
        self.claim(self._key(group.name, file="group.json"), group)
        return group

    def group(self, name: str) -> ModelGroup | None:
        """The group's record; for one the pipeline began, made from its first version."""
        found = self.find(self._key(name, file="group.json"), ModelGroup)
        if found is not None:
            return found
        numbers = self.versions(name)
        if not numbers:
            return None
        first = self.get(name, numbers[0])
        return ModelGroup(name=name, created_at=first.created_at)

    def versions(self, group: str) -> list[int]:
        """The version numbers of ``group`` that exist (whose version.json is present), sorted."""
        return self.numbers(self._key(group), "version.json")

    def get(self, group: str, version: int) -> ModelVersion:
        try:
            stored = self.read(self._key(group, version, "version.json"), ModelVersion)
        except NotFoundError:
            known = ", ".join(map(str, self.versions(group))) or "none"
            raise VersionNotFound(
                f"model group {group!r} has no version {version} (versions: {known})"
            ) from None
        history = self._approvals(group, version)
        evaluation = self.find(self._key(group, version, "evaluation.json"), Evaluation)
        return stored.model_copy(
            update={
                "approval_status": history[-1].status,
                "approval_history": history,
                "test_metrics": evaluation.metrics if evaluation else {},
            }
        )

    def record_evaluation(
        self, group: str, version: int, metrics: dict[str, float], url: str = ""
    ) -> None:
        """Keep a version's latest metrics on the test split (later reports compare with them).

        Raises:
            VersionNotFound: no such version.
        """
        self.get(group, version)
        self.publish(
            self._key(group, version, "evaluation.json"), Evaluation(metrics=metrics, url=url)
        )

    def list(self, group: str) -> list[ModelVersion]:
        return [self.get(group, v) for v in self.versions(group)]

    def latest(self, group: str, approved_only: bool = False) -> ModelVersion | None:
        for version in reversed(self.versions(group)):
            mv = self.get(group, version)
            if not approved_only or mv.approval_status == Approval.APPROVED:
                return mv
        return None

    def register(
        self, group: str, manifest: ModelManifest, manifest_url: str, approval: Approval
    ) -> ModelVersion:
        """Register the model a job produced, described by its manifest.

        Registering an artifact (same checksum) a second time returns its existing version.

        Raises:
            RegistryError: the group name is invalid or the artifact does not match its checksum.
        """
        check_name(group, "model group", RegistryError)
        for existing in self.list(group):
            if existing.artifact_sha256 == manifest.sha256:
                return existing
        self.read_artifact(manifest.model_url, manifest.sha256)
        record = ModelVersion(
            group=group,
            version=0,
            artifact_url=manifest.model_url,
            artifact_sha256=manifest.sha256,
            metadata_url=manifest_url,
            **manifest.model_dump(include=FROM_MANIFEST),
        )
        return self.add(record, approval)

    def add(self, record: ModelVersion, approval: Approval, by: str = "skiff") -> ModelVersion:
        """Claim the next version of ``record.group`` for ``record``, with its first approval
        status.

        Raises:
            RegistryError: the group name is invalid.
        """
        group = record.group
        check_name(group, "model group", RegistryError)
        claimed = self.claim_next(
            self._key(group),
            lambda number: record.model_copy(update={"version": number}),
            file="version.json",
            exclude=APPROVAL_FIELDS,
        )
        initial = ApprovalChange(status=approval, by=by, reason="registered")
        self._write_approvals(group, claimed.version, [initial])
        return self.get(group, claimed.version)

    def set_approval(
        self, group: str, version: int, status: Approval, by: str = "", reason: str = ""
    ) -> ModelVersion:
        self.get(group, version)  # raises VersionNotFound with the valid versions
        history = self._approvals(group, version)
        change = ApprovalChange(status=status, by=by, reason=reason)
        self._write_approvals(group, version, [*history, change])
        return self.get(group, version)

    def _approvals(self, group: str, version: int) -> list[ApprovalChange]:
        found = self.find(self._key(group, version, "approval.json"), ApprovalRecord)
        return found.history if found else [REGISTERED]

    def _write_approvals(self, group: str, version: int, history: list[ApprovalChange]) -> None:
        record = ApprovalRecord(status=history[-1].status, history=history)
        self.publish(self._key(group, version, "approval.json"), record)

    def read_artifact(self, url: str, sha256: str) -> bytes:
        """The bytes of a model artifact, checked against its recorded checksum.

        Raises:
            RegistryError: the artifact is missing, or does not match the checksum.
        """
        try:
            with fsspec.open(url, "rb", **self.store.storage_options) as f:
                data = f.read()
        except FileNotFoundError:
            raise RegistryError(f"model artifact {url} does not exist") from None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise RegistryError(f"model artifact {url} does not match its recorded checksum")
        return data
