"""AddTags, ListTags, DeleteTags: a resource's tags, kept in the store beside nothing else
(``tags/<kind>/<name>.json``), written whole."""

from __future__ import annotations

from typing import Any

from core.errors import TuningError
from core.records.endpoints import EndpointStore
from core.records.hosting import HostingStore
from core.records.jobs import JobStore
from core.records.registry import ModelRegistry
from core.records.transforms import TransformStore
from core.records.tuning import TuningStore
from flows.api.context import ApiContext
from flows.api.errors import limit_exceeded, not_found
from flows.api.pages import window

MAX_TAGS = 50  # SageMaker's limit per resource


def _key(kind: str, name: str) -> str:
    return f"tags/{kind}/{name}.json"


def _exists(ctx: ApiContext, kind: str, name: str) -> bool:
    if kind == "training-job":
        return ctx.store.exists(JobStore.key(name, "job.json"))
    if kind == "transform-job":
        return ctx.store.exists(TransformStore.key(name, "job.json"))
    if kind == "endpoint":
        return EndpointStore(ctx.store).exists(name)
    if kind == "hyper-parameter-tuning-job":
        try:
            return ctx.store.exists(TuningStore.key(name, "tuning.json"))
        except TuningError:  # a name no tuning job can have
            return False
    if kind in ("model-package-group", "model-package"):
        group, _, version = name.partition("/")
        registry = ModelRegistry(ctx.store)
        if kind == "model-package-group":
            return registry.group(name) is not None
        return version.isdigit() and int(version) in registry.versions(group)
    folders = {"model": HostingStore.MODELS, "endpoint-config": HostingStore.CONFIGS}
    return kind in folders and ctx.store.exists(f"{folders[kind]}/{name}.json")


def read(ctx: ApiContext, kind: str, name: str) -> list[dict[str, str]]:
    key = _key(kind, name)
    return ctx.store.read_json(key)["Tags"] if ctx.store.exists(key) else []


def save(ctx: ApiContext, kind: str, name: str, added: list[dict[str, str]]) -> list:
    """Merge ``added`` into the resource's tags (a key given again takes its new value)."""
    merged = {t["Key"]: t.get("Value", "") for t in read(ctx, kind, name)}
    merged |= {t["Key"]: t.get("Value", "") for t in added}
    if len(merged) > MAX_TAGS:
        raise limit_exceeded(
            f"a resource has at most {MAX_TAGS} tags; this would have {len(merged)}"
        )
    tags = [{"Key": k, "Value": v} for k, v in merged.items()]
    if added:
        ctx.store.write_json(_key(kind, name), {"Tags": tags})
    return tags


def _resource(ctx: ApiContext, arn: str) -> tuple[str, str]:
    kind, name = ctx.parse_arn(arn)
    if not _exists(ctx, kind, name):
        raise not_found()
    return kind, name


def add_tags(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    kind, name = _resource(ctx, p["ResourceArn"])
    save(ctx, kind, name, p["Tags"])
    return {"Tags": p["Tags"]}


def list_tags(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    kind, name = _resource(ctx, p["ResourceArn"])
    tags, token = window(read(ctx, kind, name), p.get("NextToken"), p.get("MaxResults", 50))
    return {"Tags": tags} | ({"NextToken": token} if token else {})


def delete_tags(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    kind, name = _resource(ctx, p["ResourceArn"])
    kept = [t for t in read(ctx, kind, name) if t["Key"] not in set(p["TagKeys"])]
    ctx.store.write_json(_key(kind, name), {"Tags": kept})
    return {}


OPERATIONS = {"AddTags": add_tags, "ListTags": list_tags, "DeleteTags": delete_tags}
