"""SageMaker's model-package API over Skiff's registry (``core.records.registry``): a model
package group is a model group, a model package one of its versions, its approval status the
version's. Versions the pipeline registers are packages here, and approving through either
door is the same change (``skiff models approve`` and UpdateModelPackage write one history).

A package made through the API is SageMaker's ``model.tar.gz`` and the XGBoost image that
serves it, its checksum taken here and checked whenever it is loaded; its training job is
found by its artifact (lineage: hyperparameters and final metrics come from the job).
"""

from __future__ import annotations

from typing import Any

from core.errors import AlreadyExistsError, RegistryError, SkiffError, VersionNotFound
from core.records.jobs import JobStore
from core.records.registry import Approval, ModelGroup, ModelRegistry, ModelVersion
from flows.api import tags
from flows.api.context import ApiContext
from flows.api.errors import invalid
from flows.api.hosting import served_artifact
from flows.api.pages import page, wanted
from flows.api.shapes import as_given, epoch, refuse_unsupported

GROUP, PACKAGE = "model-package-group", "model-package"
# What the pipeline's versions say they are served by (their artifact is Skiff's own file).
SKIFF_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
PACKAGE_HONOURED = frozenset({
    "ModelPackageGroupName", "ModelPackageDescription", "ModelApprovalStatus",
    "InferenceSpecification.Containers[].Image", "InferenceSpecification.Containers[].ModelDataUrl",
    "InferenceSpecification.Containers[].Environment", "ClientToken", "Tags",
})  # fmt: skip
# Recorded and described as given; they change nothing here.
PACKAGE_ACCEPTED = frozenset({
    "InferenceSpecification.SupportedContentTypes",
    "InferenceSpecification.SupportedResponseMIMETypes",
    "InferenceSpecification.SupportedRealtimeInferenceInstanceTypes",
    "InferenceSpecification.SupportedTransformInstanceTypes",
    "InferenceSpecification.Containers[].Framework",
    "InferenceSpecification.Containers[].FrameworkVersion",
    "InferenceSpecification.Containers[].NearestModelName",
    "InferenceSpecification.Containers[].ContainerHostname",
    "ModelMetrics", "MetadataProperties", "CertifyForMarketplace", "ModelCard",
    "SkipModelValidation", "CustomerMetadataProperties", "DriftCheckBaselines", "Domain", "Task",
    "SamplePayloadUrl", "SourceUri",
})  # fmt: skip
UPDATE_HONOURED = frozenset({"ModelPackageArn", "ModelApprovalStatus", "ApprovalDescription"})


def _group_arn(ctx: ApiContext, group: str) -> str:
    return ctx.arn(GROUP, group)


def package_arn(ctx: ApiContext, version: ModelVersion) -> str:
    return ctx.arn(PACKAGE, f"{version.group}/{version.version}")


def _group_name(ctx: ApiContext, given: str) -> str:
    """A group's name, given as its name or its ARN."""
    if given.startswith("arn:"):
        kind, name = ctx.parse_arn(given)
        if kind != GROUP:
            raise invalid(f"{given!r} is not a model package group's ARN")
        return name
    return given


def _missing_group(name: str) -> Any:
    return invalid(f"ModelPackageGroup {name} does not exist.")


def _group(ctx: ApiContext, name: str) -> ModelGroup:
    found = ModelRegistry(ctx.store).group(name)
    if found is None:
        raise _missing_group(name)
    return found


def create_model_package_group(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    name = p["ModelPackageGroupName"]
    group = ModelGroup(name=name, description=p.get("ModelPackageGroupDescription", ""))
    try:
        ModelRegistry(ctx.store).create_group(group)
    except AlreadyExistsError:
        raise invalid(f"Model Package Group already exists: {_group_arn(ctx, name)}") from None
    except RegistryError as exc:
        raise invalid(str(exc)) from None
    tags.save(ctx, GROUP, name, p.get("Tags", []))
    return {"ModelPackageGroupArn": _group_arn(ctx, name)}


def group_shape(ctx: ApiContext, group: ModelGroup) -> dict[str, Any]:
    return {
        "ModelPackageGroupName": group.name,
        "ModelPackageGroupArn": _group_arn(ctx, group.name),
        "ModelPackageGroupDescription": group.description,
        "CreationTime": epoch(group.created_at),
        "CreatedBy": {},
        "ModelPackageGroupStatus": "Completed",
    }


def describe_model_package_group(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    return group_shape(ctx, _group(ctx, _group_name(ctx, p["ModelPackageGroupName"])))


def all_groups(ctx: ApiContext) -> list[ModelGroup]:
    registry = ModelRegistry(ctx.store)
    return [g for name in registry.groups() if (g := registry.group(name)) is not None]


GROUP_SORT = {
    "Name": lambda s: s["ModelPackageGroupName"],
    "CreationTime": lambda s: s["CreationTime"],
}


def list_model_package_groups(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    summaries = [
        {
            k: v
            for k, v in group_shape(ctx, g).items()
            if k not in ("CreatedBy", "ModelPackageGroupDescription") or v
        }
        for g in all_groups(ctx)
    ]
    chosen = [s for s in summaries if wanted(s["ModelPackageGroupName"], s["CreationTime"], p)]
    found, token = page(chosen, p, GROUP_SORT)
    return {"ModelPackageGroupSummaryList": found} | ({"NextToken": token} if token else {})


def _lineage(ctx: ApiContext, artifact_url: str) -> tuple[str, dict[str, Any], dict[str, float]]:
    """The training job whose artifact this is: its name, hyperparameters, final metrics."""
    jobs = JobStore(ctx.store)
    for name in jobs.names():
        try:
            spec = jobs.spec(name)
            if spec.artifact_url == artifact_url:
                return name, dict(spec.hyperparameters), jobs.status(name).metrics
        except SkiffError:  # a job being created, or damaged: not this one
            continue
    return "", {}, {}


def create_model_package(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    refuse_unsupported("CreateModelPackage", p, PACKAGE_HONOURED, PACKAGE_ACCEPTED)
    if "ModelPackageGroupName" not in p:
        raise invalid(
            "CreateModelPackage: Skiff's model packages are versions of a group: give "
            "ModelPackageGroupName (unversioned packages are not supported)"
        )
    group = _group(ctx, _group_name(ctx, p["ModelPackageGroupName"])).name
    registry = ModelRegistry(ctx.store)
    token = p.get("ClientToken")
    if token:  # the same request again (a retry): the package it made
        for existing in registry.list(group):
            if (existing.package_request or {}).get("ClientToken") == token:
                return {"ModelPackageArn": package_arn(ctx, existing)}
    containers = p.get("InferenceSpecification", {}).get("Containers", [])
    if len(containers) != 1:
        raise invalid("InferenceSpecification.Containers must hold exactly one container")
    where = "InferenceSpecification.Containers[0]"
    image, url, digest = served_artifact(ctx, containers[0], where)
    job, hyperparameters, metrics = _lineage(ctx, url)
    approval = Approval(p.get("ModelApprovalStatus", Approval.PENDING))
    record = ModelVersion(
        group=group,
        version=0,
        artifact_url=url,
        artifact_sha256=digest,
        metadata_url="",
        predictor="xgboost",
        algorithm=image,
        hyperparameters=hyperparameters,
        metrics=metrics,
        job_name=job,
        features=[],
        image=image,
        package_request=as_given(p),
    )
    version = registry.add(record, approval, by="skiff api")
    tags.save(ctx, PACKAGE, f"{group}/{version.version}", p.get("Tags", []))
    return {"ModelPackageArn": package_arn(ctx, version)}


def find_package(ctx: ApiContext, given: str) -> ModelVersion:
    """The version a ModelPackageName or ModelPackageArn names (a versioned package: its ARN,
    or ``<group>/<version>``)."""
    name = ctx.parse_arn(given)[1] if given.startswith("arn:") else given
    group, _, number = name.rpartition("/")
    if not group or not number.isdigit():
        raise invalid(
            f"{given!r} names no model package version: give its ARN "
            f"({ctx.arn(PACKAGE, '<group>/<version>')})"
        )
    try:
        return ModelRegistry(ctx.store).get(group, int(number))
    except VersionNotFound:
        raise invalid(f"ModelPackage {name} does not exist.") from None


def package_shape(ctx: ApiContext, v: ModelVersion) -> dict[str, Any]:
    given = v.package_request or {}
    answer = {
        k: given[k]
        for k in (
            "ModelMetrics", "MetadataProperties", "DriftCheckBaselines", "Domain", "Task",
            "SamplePayloadUrl", "SkipModelValidation", "SourceUri", "ModelCard",
        )
        if k in given
    }  # fmt: skip
    if v.image is not None:
        spec = given["InferenceSpecification"]
        properties = given.get("CustomerMetadataProperties", {})
    else:  # a version the pipeline registered: Skiff's model file, its metrics as properties
        spec = {
            "Containers": [{"Image": SKIFF_IMAGE, "ModelDataUrl": v.artifact_url}],
            "SupportedContentTypes": ["text/csv", "application/json"],
            "SupportedResponseMIMETypes": ["text/csv", "application/json"],
        }
        properties = {k: f"{value:g}" for k, value in v.metrics.items()}
    if v.job_name and "MetadataProperties" not in answer:
        answer["MetadataProperties"] = {"GeneratedBy": ctx.arn("training-job", v.job_name)}
    last = v.approval_history[-1] if v.approval_history else None
    answer |= {
        "ModelPackageName": v.group,
        "ModelPackageGroupName": v.group,
        "ModelPackageVersion": v.version,
        "ModelPackageArn": package_arn(ctx, v),
        "CreationTime": epoch(v.created_at),
        "LastModifiedTime": epoch(last.at if last else v.created_at),
        "InferenceSpecification": spec,
        "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": [], "ImageScanStatuses": []},
        "CertifyForMarketplace": given.get("CertifyForMarketplace", False),
        "ModelApprovalStatus": str(v.approval_status),
    }
    if given.get("ModelPackageDescription"):
        answer["ModelPackageDescription"] = given["ModelPackageDescription"]
    if last is not None and last.reason and last.reason != "registered":
        answer["ApprovalDescription"] = last.reason
    if properties:
        answer["CustomerMetadataProperties"] = properties
    return answer


def describe_model_package(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    return package_shape(ctx, find_package(ctx, p["ModelPackageName"]))


PACKAGE_SORT = {
    "Name": lambda s: s["ModelPackageName"],
    "CreationTime": lambda s: s["CreationTime"],
}
SUMMARY_FIELDS = (
    "ModelPackageName", "ModelPackageGroupName", "ModelPackageVersion", "ModelPackageArn",
    "ModelPackageDescription", "CreationTime", "ModelPackageStatus", "ModelApprovalStatus",
)  # fmt: skip


def all_packages(ctx: ApiContext, groups: list[str] | None = None) -> list[ModelVersion]:
    registry = ModelRegistry(ctx.store)
    return [v for g in (groups or registry.groups()) for v in registry.list(g)]


def list_model_packages(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    if p.get("ModelPackageType") == "Unversioned":
        return {"ModelPackageSummaryList": []}  # Skiff has none
    groups = None
    if "ModelPackageGroupName" in p:  # one group, which must exist
        groups = [_group(ctx, _group_name(ctx, p["ModelPackageGroupName"])).name]
    summaries = []
    for version in all_packages(ctx, groups):
        shape = package_shape(ctx, version)
        if "ModelApprovalStatus" in p and shape["ModelApprovalStatus"] != p["ModelApprovalStatus"]:
            continue
        if wanted(shape["ModelPackageName"], shape["CreationTime"], p):
            summaries.append({k: shape[k] for k in SUMMARY_FIELDS if k in shape})
    found, token = page(summaries, p, PACKAGE_SORT)
    return {"ModelPackageSummaryList": found} | ({"NextToken": token} if token else {})


def update_model_package(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    refuse_unsupported("UpdateModelPackage", p, UPDATE_HONOURED, frozenset())
    version = find_package(ctx, p["ModelPackageArn"])
    if "ModelApprovalStatus" in p:
        ModelRegistry(ctx.store).set_approval(
            version.group,
            version.version,
            Approval(p["ModelApprovalStatus"]),
            by="skiff api",
            reason=p.get("ApprovalDescription", ""),
        )
    return {"ModelPackageArn": package_arn(ctx, version)}


OPERATIONS = {
    "CreateModelPackageGroup": create_model_package_group,
    "DescribeModelPackageGroup": describe_model_package_group,
    "ListModelPackageGroups": list_model_package_groups,
    "CreateModelPackage": create_model_package,
    "DescribeModelPackage": describe_model_package,
    "ListModelPackages": list_model_packages,
    "UpdateModelPackage": update_model_package,
}
