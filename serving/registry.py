"""The model registry: numbered, immutable model versions with metrics, lineage and approval.

Layout under the store root::

    registry/<group>/<version>/version.json    the version, created exclusively and whole
    registry/<group>/<version>/approval.json   its approval status and the history of changes

A version exists once its ``version.json`` does. It is claimed with one exclusive create of a
complete object, so two concurrent registrations never share a number and a crash leaves no
half version. Approval changes live in their own object because the version never changes.
"""

from __future__ import annotations

import hashlib
import re
from enum import StrEnum
from typing import Any

import fsspec
from pydantic import BaseModel, Field

from algorithms.errors import AlreadyExistsError, NotFoundError
from algorithms.jobs import now
from algorithms.store import Store
from serving.errors import RegistryError, VersionNotFound

GROUP_NAME = re.compile(r"^[A-Za-z0-9](-*[A-Za-z0-9]){0,62}$")


class Approval(StrEnum):
    PENDING = "PendingManualApproval"
    APPROVED = "Approved"
    REJECTED = "Rejected"


class ApprovalChange(BaseModel):
    status: Approval
    at: str = Field(default_factory=now)
    by: str = ""
    reason: str = ""


class ModelVersion(BaseModel):
    """A registered model version (SageMaker's model package)."""

    group: str
    version: int
    artifact_url: str
    artifact_sha256: str
    metadata_url: str
    predictor: str = "xgboost"
    algorithm: str
    hyperparameters: dict[str, Any]
    metrics: dict[str, float]
    dataset_id: str | None = None
    job_name: str
    features: list[str]
    feature_schema: dict[str, Any] | None = None
    provenance: dict[str, Any] = Field(default_factory=dict)
    created_at: str = Field(default_factory=now)
    approval_status: Approval = Approval.PENDING
    approval_history: list[ApprovalChange] = Field(default_factory=list)


class ModelRegistry:
    """Registers, lists and approves model versions in a store."""

    def __init__(self, store: Store):
        self.store = store

    @staticmethod
    def _key(group: str, version: int | None = None, file: str = "") -> str:
        parts = ["registry", group] + ([str(version)] if version is not None else [])
        return "/".join(parts + ([file] if file else []))

    def groups(self) -> list[str]:
        return self.store.list("registry")

    def versions(self, group: str) -> list[int]:
        """The version numbers of ``group`` that exist (whose version.json is present), sorted."""
        numbers = sorted(int(n) for n in self.store.list(self._key(group)) if n.isdigit())
        return [n for n in numbers if self.store.exists(self._key(group, n, "version.json"))]

    def get(self, group: str, version: int) -> ModelVersion:
        try:
            data = self.store.read_json(self._key(group, version, "version.json"))
        except NotFoundError:
            known = ", ".join(map(str, self.versions(group))) or "none"
            raise VersionNotFound(
                f"model group {group!r} has no version {version} (versions: {known})"
            ) from None
        history = self._approvals(group, version)
        return ModelVersion.model_validate(data).model_copy(
            update={"approval_status": history[-1].status, "approval_history": history}
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
        self, group: str, metadata: dict[str, Any], metadata_url: str, approval: Approval
    ) -> ModelVersion:
        """Register the model a job produced, described by its ``model.json`` metadata.

        Registering an artifact (same checksum) a second time returns its existing version.

        Raises:
            RegistryError: the group name is invalid or the artifact does not match its checksum.
        """
        if not GROUP_NAME.match(group):
            raise RegistryError(
                f"model group name {group!r} must be 1-63 letters, digits or hyphens"
            )
        for existing in self.list(group):
            if existing.artifact_sha256 == metadata["sha256"]:
                return existing
        self.read_artifact(metadata["model_url"], metadata["sha256"])
        record = ModelVersion(
            group=group,
            version=0,
            artifact_url=metadata["model_url"],
            artifact_sha256=metadata["sha256"],
            metadata_url=metadata_url,
            predictor=metadata.get("predictor", "xgboost"),
            algorithm=metadata["algorithm"],
            hyperparameters=metadata["hyperparameters"],
            metrics=metadata["metrics"],
            dataset_id=metadata.get("dataset_id"),
            job_name=metadata["job_name"],
            features=metadata["features"],
            feature_schema=metadata.get("feature_schema"),
            provenance=metadata.get("provenance", {}),
        )
        version = max(self.versions(group), default=0) + 1
        while True:
            record.version = version
            body = record.model_dump(mode="json", exclude={"approval_status", "approval_history"})
            try:
                self.store.create_json_exclusive(self._key(group, version, "version.json"), body)
                break
            except AlreadyExistsError:
                version += 1  # someone registered concurrently; take the next number
        initial = ApprovalChange(status=approval, by="skiff", reason="registered")
        self._write_approvals(group, version, [initial])
        return self.get(group, version)

    def set_approval(
        self, group: str, version: int, status: Approval, by: str = "", reason: str = ""
    ) -> ModelVersion:
        self.get(group, version)  # raises VersionNotFound with the valid versions
        history = self._approvals(group, version)
        self._write_approvals(
            group, version, [*history, ApprovalChange(status=status, by=by, reason=reason)]
        )
        return self.get(group, version)

    def _approvals(self, group: str, version: int) -> list[ApprovalChange]:
        try:
            data = self.store.read_json(self._key(group, version, "approval.json"))
        except NotFoundError:  # a crash between the two writes: the safe default
            return [ApprovalChange(status=Approval.PENDING, by="skiff", reason="registered")]
        return [ApprovalChange.model_validate(c) for c in data["history"]]

    def _write_approvals(self, group: str, version: int, history: list[ApprovalChange]) -> None:
        self.store.write_json(
            self._key(group, version, "approval.json"),
            {"status": history[-1].status, "history": [c.model_dump(mode="json") for c in history]},
        )

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
