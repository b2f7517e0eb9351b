"""SageMaker's models and endpoint configs over Skiff's hosting records
(``core.records.hosting``): Create/Describe/Delete/List for each.

A model is the artifact a training job left (``model.tar.gz`` holding ``xgboost-model``) and
one of SageMaker's XGBoost images; its checksum is taken here and checked whenever an
endpoint loads it. An endpoint config is a named, immutable list of production variants,
each naming a model that exists.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from typing import Any

import fsspec
from pydantic import ValidationError

from core.errors import AlreadyExistsError, NotFoundError, describe_invalid
from core.records.endpoints import DataCapture
from core.records.hosting import HostedModel, HostingStore, NamedEndpointConfig, VariantSpec
from core.records.registry import Approval
from flows.api import tags
from flows.api.context import ApiContext
from flows.api.errors import invalid
from flows.api.pages import page, wanted
from flows.api.shapes import as_given, epoch, refuse_unsupported
from flows.api.training import XGBOOST_IMAGE, storage_url

MODEL, CONFIG = "model", "endpoint-config"
MODEL_HONOURED = frozenset({
    "ModelName", "PrimaryContainer.Image", "PrimaryContainer.ModelDataUrl",
    "PrimaryContainer.Environment", "PrimaryContainer.ModelPackageName", "Containers[].Image",
    "Containers[].ModelDataUrl", "Containers[].Environment", "Containers[].ModelPackageName",
    "Tags",
})  # fmt: skip
MODEL_ACCEPTED = frozenset({
    "ExecutionRoleArn", "VpcConfig", "EnableNetworkIsolation", "PrimaryContainer.Mode",
    "PrimaryContainer.ContainerHostname", "Containers[].Mode", "Containers[].ContainerHostname",
})  # fmt: skip
CONFIG_HONOURED = frozenset({
    "EndpointConfigName", "ProductionVariants[].VariantName", "ProductionVariants[].ModelName",
    "DataCaptureConfig.EnableCapture", "DataCaptureConfig.InitialSamplingPercentage",
    "DataCaptureConfig.DestinationS3Uri", "DataCaptureConfig.CaptureOptions",
    "DataCaptureConfig.CaptureContentTypeHeader",
    "ProductionVariants[].InitialInstanceCount", "ProductionVariants[].InstanceType",
    "ProductionVariants[].InitialVariantWeight", "Tags",
})  # fmt: skip
CONFIG_ACCEPTED = frozenset({
    "KmsKeyId", "DataCaptureConfig.KmsKeyId", "ProductionVariants[].VolumeSizeInGB",
    "ProductionVariants[].ModelDataDownloadTimeoutInSeconds",
    "ProductionVariants[].ContainerStartupHealthCheckTimeoutInSeconds",
})  # fmt: skip


def _missing(kind: str, arn: str) -> Any:
    words = {MODEL: "model", CONFIG: "endpoint configuration"}[kind]
    return invalid(f'Could not find {words} "{arn}".')


def _exists(kind: str, arn: str) -> Any:
    words = {MODEL: "model", CONFIG: "endpoint configuration"}[kind]
    return invalid(f'Cannot create already existing {words} "{arn}".')


def create_model(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    refuse_unsupported("CreateModel", p, MODEL_HONOURED, MODEL_ACCEPTED)
    name = p["ModelName"]
    containers = [p["PrimaryContainer"]] if "PrimaryContainer" in p else p.get("Containers", [])
    if len(containers) != 1:
        raise invalid("a model needs exactly one container (PrimaryContainer, or one Containers)")
    container = containers[0]
    if "ModelPackageName" in container:
        model = _from_package(ctx, name, container, p)
    else:
        model = _from_artifact(ctx, name, container, p)
    create = functools.partial(HostingStore(ctx.store).create_model, model)
    return {"ModelArn": _created(ctx, MODEL, name, p.get("Tags", []), create)}


def _created(
    ctx: ApiContext, kind: str, name: str, given_tags: list[Any], create: Callable[[], Any]
) -> str:
    """Claim the record (``create``), then its tags; its ARN."""
    try:
        create()
    except AlreadyExistsError:
        raise _exists(kind, ctx.arn(kind, name)) from None
    tags.save(ctx, kind, name, given_tags)
    return ctx.arn(kind, name)


def _from_package(
    ctx: ApiContext, name: str, container: dict[str, Any], p: dict[str, Any]
) -> HostedModel:
    """A model of a registered version: only an approved one is deployed (as on SageMaker,
    and as the pipeline's deploys are gated)."""
    from flows.api.packages import SKIFF_IMAGE, find_package, package_arn

    version = find_package(ctx, container["ModelPackageName"])
    if version.approval_status != Approval.APPROVED:
        raise invalid(
            f'Model package "{package_arn(ctx, version)}" is {version.approval_status}: only '
            "an Approved model package version can be deployed (UpdateModelPackage approves it)"
        )
    return HostedModel(
        name=name,
        image=version.image or SKIFF_IMAGE,
        model_data_url=version.artifact_url,
        archive_sha256=version.artifact_sha256,
        environment=container.get("Environment", {}),
        request=as_given(p),
        model_package=f"{version.group}/{version.version}",
    )


def _from_artifact(
    ctx: ApiContext, name: str, container: dict[str, Any], p: dict[str, Any]
) -> HostedModel:
    image, url, digest = served_artifact(ctx, container, "PrimaryContainer")
    return HostedModel(
        name=name,
        image=image,
        model_data_url=url,
        archive_sha256=digest,
        environment=container.get("Environment", {}),
        request=as_given(p),
    )


def served_artifact(ctx: ApiContext, container: dict[str, Any], where: str) -> tuple[str, str, str]:
    """A container's image (one of SageMaker's XGBoost images), its ``model.tar.gz`` URL, and
    that file's SHA-256, taken now (``where``: the container's place in the request).

    Raises:
        ApiError: ValidationException naming what is wrong.
    """
    image = container.get("Image", "")
    if not XGBOOST_IMAGE.match(image):
        raise invalid(
            f"Image {image!r} is not one of SageMaker's XGBoost images: Skiff serves only those"
        )
    url = container.get("ModelDataUrl")
    if not url:
        raise invalid(f"{where}.ModelDataUrl is required (the job's model.tar.gz)")
    storage_url(url, "ModelDataUrl")
    try:
        with fsspec.open(url, "rb", **ctx.store.storage_options) as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()  # in chunks: models are big
    except (OSError, ValueError) as exc:  # missing, no access, no such bucket
        raise invalid(f"Could not find model data at {url}. ({type(exc).__name__})") from None
    return image, url, digest


def _model(ctx: ApiContext, name: str) -> HostedModel:
    try:
        return HostingStore(ctx.store).model(name)
    except NotFoundError:
        raise _missing(MODEL, ctx.arn(MODEL, name)) from None


def describe_model(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    model = _model(ctx, p["ModelName"])
    given = model.request or {}
    container = {"Image": model.image, "ModelDataUrl": model.model_data_url}
    container |= {"Environment": model.environment, "Mode": "SingleModel"}
    if model.model_package is not None:
        container["ModelPackageName"] = ctx.arn("model-package", model.model_package)
    answer = {k: v for k, v in given.items() if k in ("ExecutionRoleArn", "VpcConfig")}
    return answer | {
        "ModelName": model.name,
        "ModelArn": ctx.arn(MODEL, model.name),
        "PrimaryContainer": container,
        "CreationTime": epoch(model.created_at),
        "EnableNetworkIsolation": given.get("EnableNetworkIsolation", False),
    }


def delete_model(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    try:
        HostingStore(ctx.store).delete(HostingStore.MODELS, p["ModelName"])
    except NotFoundError:
        raise _missing(MODEL, ctx.arn(MODEL, p["ModelName"])) from None
    return {}


SORT_KEYS = {"Name": lambda s: s["Name"], "CreationTime": lambda s: s["CreationTime"]}


def _listed(
    ctx: ApiContext, folder: str, kind: str, p: dict[str, Any], read: Any
) -> tuple[list[dict[str, Any]], str | None]:
    found = []
    for name in HostingStore(ctx.store).names(folder):
        try:
            created = epoch(read(name).created_at)
        except (NotFoundError, ValueError):  # deleted meanwhile, or damaged
            continue
        if wanted(name, created, p):
            found.append({"Name": name, "Arn": ctx.arn(kind, name), "CreationTime": created})
    return page(found, p, SORT_KEYS, default_order="Descending")


def list_models(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    store = HostingStore(ctx.store)
    items, token = _listed(ctx, store.MODELS, MODEL, p, store.model)
    models = [
        {"ModelName": i["Name"], "ModelArn": i["Arn"], "CreationTime": i["CreationTime"]}
        for i in items
    ]
    return {"Models": models} | ({"NextToken": token} if token else {})


def create_endpoint_config(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    refuse_unsupported("CreateEndpointConfig", p, CONFIG_HONOURED, CONFIG_ACCEPTED)
    name = p["EndpointConfigName"]
    variants = []
    for v in p["ProductionVariants"]:
        if "ModelName" not in v:
            raise invalid(f"production variant {v['VariantName']!r} needs a ModelName")
        _model(ctx, v["ModelName"])  # a config naming an unknown model is refused
        variants.append(
            VariantSpec(
                name=v["VariantName"],
                model=v["ModelName"],
                weight=v.get("InitialVariantWeight", 1.0),
                instance_count=v.get("InitialInstanceCount", 1),
                instance_type=v.get("InstanceType"),
            )
        )
    if len({v.name for v in variants}) != len(variants):
        raise invalid("ProductionVariants: variant names must be unique")
    if sum(v.weight for v in variants) <= 0:
        raise invalid("ProductionVariants: the variants' weights must not all be zero")
    capture = data_capture(p.get("DataCaptureConfig"))
    config = NamedEndpointConfig(name=name, variants=variants, request=as_given(p), capture=capture)
    create = functools.partial(HostingStore(ctx.store).create_config, config)
    arn = _created(ctx, CONFIG, name, p.get("Tags", []), create)
    return {"EndpointConfigArn": arn}


def data_capture(given: dict[str, Any] | None) -> DataCapture | None:
    """SageMaker's DataCaptureConfig as Skiff's (None where it is absent or not enabled)."""
    if not given or not given.get("EnableCapture", True):
        return None
    modes = {o["CaptureMode"] for o in given["CaptureOptions"]}
    header = given.get("CaptureContentTypeHeader", {})
    try:
        return DataCapture(
            percent=given["InitialSamplingPercentage"],
            destination=given["DestinationS3Uri"],
            capture_input="Input" in modes,
            capture_output="Output" in modes,
            # Without the header SageMaker records every body base64-encoded.
            csv_types=[t.lower() for t in header.get("CsvContentTypes", [])],
            json_types=[t.lower() for t in header.get("JsonContentTypes", [])],
        )
    except ValidationError as exc:
        raise invalid(f"DataCaptureConfig: {describe_invalid(exc)}") from None


def capture_described(config: DataCapture | None) -> dict[str, Any]:
    """DescribeEndpoint's DataCaptureConfig (nothing where there is no capture)."""
    if config is None:
        return {}
    return {"DataCaptureConfig": {
        "EnableCapture": True, "CaptureStatus": "Started",
        "CurrentSamplingPercentage": int(config.percent), "DestinationS3Uri": config.destination,
        "KmsKeyId": "",  # required in the shape; Skiff encrypts nothing itself
    }}  # fmt: skip


def named_config(ctx: ApiContext, name: str) -> NamedEndpointConfig:
    try:
        return HostingStore(ctx.store).config(name)
    except NotFoundError:
        raise _missing(CONFIG, ctx.arn(CONFIG, name)) from None


def production_variants(config: NamedEndpointConfig) -> list[dict[str, Any]]:
    """The config's variants in SageMaker's words."""
    return [
        {
            "VariantName": v.name,
            "ModelName": v.model,
            "InitialInstanceCount": v.instance_count,
            "InstanceType": v.instance_type or "ml.m5.xlarge",
            "InitialVariantWeight": v.weight,
        }
        for v in config.variants
    ]


def describe_endpoint_config(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    config = named_config(ctx, p["EndpointConfigName"])
    answer = (
        {"KmsKeyId": config.request["KmsKeyId"]} if "KmsKeyId" in (config.request or {}) else {}
    )
    if "DataCaptureConfig" in (config.request or {}):
        answer["DataCaptureConfig"] = config.request["DataCaptureConfig"]
    return answer | {
        "EndpointConfigName": config.name,
        "EndpointConfigArn": ctx.arn(CONFIG, config.name),
        "ProductionVariants": production_variants(config),
        "CreationTime": epoch(config.created_at),
    }


def delete_endpoint_config(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    try:
        HostingStore(ctx.store).delete(HostingStore.CONFIGS, p["EndpointConfigName"])
    except NotFoundError:
        raise _missing(CONFIG, ctx.arn(CONFIG, p["EndpointConfigName"])) from None
    return {}


def list_endpoint_configs(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    store = HostingStore(ctx.store)
    items, token = _listed(ctx, store.CONFIGS, CONFIG, p, store.config)
    configs = [
        {
            "EndpointConfigName": i["Name"],
            "EndpointConfigArn": i["Arn"],
            "CreationTime": i["CreationTime"],
        }
        for i in items
    ]
    return {"EndpointConfigs": configs} | ({"NextToken": token} if token else {})


OPERATIONS = {
    "CreateModel": create_model,
    "DescribeModel": describe_model,
    "DeleteModel": delete_model,
    "ListModels": list_models,
    "CreateEndpointConfig": create_endpoint_config,
    "DescribeEndpointConfig": describe_endpoint_config,
    "DeleteEndpointConfig": delete_endpoint_config,
    "ListEndpointConfigs": list_endpoint_configs,
}
