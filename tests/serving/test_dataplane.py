"""The endpoint's data plane and its protocols in-process, without a socket: the routing
table, the hot swap, and the handlers, called through ASGI."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest
from starlette.applications import Starlette

from backends.local import LocalBackend
from core.errors import BadRequest, EndpointNotFound, ServiceUnavailable
from core.records.endpoints import EndpointConfig, EndpointStore, Variant
from core.store import Store
from flows.registration import register
from serving.dataplane.middleware import Guard
from serving.dataplane.plane import DataPlane
from serving.dataplane.sagemaker import SageMakerAPI
from serving.dataplane.v2 import V2API
from serving.options import ServerOptions
from tests.helpers import FEATURES, make_job, write_channels

N = len(FEATURES)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    """Two registered versions of a small model, and an endpoint serving version 1."""
    store = Store(str(tmp_path_factory.mktemp("plane") / "store"))
    store.ensure_layout()
    channels = write_channels(store, "plane", 500, seed=1)
    for name, depth in (("p1", 2), ("p2", 4)):
        job = make_job(
            store, channels, name=name, hyperparameters={"num_round": 5, "max_depth": depth}
        )
        LocalBackend().run(job, store)
        register(store, "g", name, threshold=0.0)
    publish(store, [Variant(name="v1", model_group="g", model_version=1)])
    return store


def publish(store: Store, variants: list[Variant]) -> EndpointConfig:
    config = EndpointConfig(endpoint="ep", variants=variants)
    return EndpointStore(store).update("ep", lambda _: config)


def test_the_plane_serves_nothing_until_a_config_loads_then_swaps_whole(store):
    plane = DataPlane(store, "ep")
    with pytest.raises(ServiceUnavailable, match="no model loaded yet"):
        plane.live()
    assert plane.apply(plane.changed_config())
    first = plane.live()
    assert plane.changed_config() is None  # nothing new: no reload
    variant, model = first.pick(None)
    assert (variant.name, model.n_features) == ("v1", N)

    both = publish(
        store,
        [
            Variant(name="v1", model_group="g", model_version=1, weight=0),
            Variant(name="v2", model_group="g", model_version=2),
        ],
    )
    assert plane.apply(plane.changed_config())
    second = plane.live()
    assert second is not first and second.config.number == both.number
    assert second.models["v1"] is first.models["v1"]  # a model still live is not reloaded
    assert {second.pick(None)[0].name for _ in range(50)} == {"v2"}  # weight 0 gets nothing
    assert second.pick_version(1)[0].name == "v1"
    with pytest.raises(EndpointNotFound, match=r"version 7 is not live in 'ep' \(live: 1, 2\)"):
        second.pick_version(7)
    with pytest.raises(BadRequest, match="unknown target variant 'v9'; variants: v1, v2"):
        second.pick("v9")
    rows = np.full((3, N), 0.5, dtype=np.float32)
    scores = asyncio.run(second.predict(second.pick("v2")[0], rows))
    assert scores.shape == (3,) and ((scores > 0) & (scores < 1)).all()

    # A config naming a version that does not exist: not applied, the old table serves on.
    publish(store, [Variant(name="v9", model_group="g", model_version=9)])
    assert not plane.apply(plane.changed_config())
    assert plane.live() is second
    assert "has no version 9" in plane.last_error and plane.failed_number == both.number + 1
    publish(store, [Variant(name="v1", model_group="g", model_version=1)])  # leave it as found


@pytest.fixture(scope="module")
def client(store):
    """SageMaker's and V2's handlers over a loaded plane, reached through ASGI only."""
    plane, options = DataPlane(store, "ep"), ServerOptions()
    assert plane.apply(plane.changed_config())
    guard = Guard(options)
    app = Starlette(
        routes=[
            *SageMakerAPI(plane, guard).routes(),
            *V2API(plane, guard).routes(),
        ]
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://plane")


def call(client, method: str, path: str, **kwargs) -> httpx.Response:
    return asyncio.run(client.request(method, path, **kwargs))


def test_handlers_answer_and_name_what_is_wrong(client):
    row = ",".join(["0.5"] * N)
    ok = call(client, "POST", "/invocations", content=row, headers={"Content-Type": "text/csv"})
    assert ok.status_code == 200 and 0 < float(ok.text) < 1
    assert ok.headers["x-amzn-invoked-production-variant"] == "v1"
    as_json = call(
        client,
        "POST",
        "/endpoints/ep/invocations",
        json={"instances": [[0.5] * N]},
        headers={"Accept": "application/json"},
    )
    assert as_json.json()["predictions"] == [pytest.approx(float(ok.text), rel=1e-5)]
    wide = call(
        client, "POST", "/invocations", content=row + ",1", headers={"Content-Type": "text/csv"}
    )
    assert (wide.status_code, wide.json()["error"]) == (
        400,
        f"row 1: expected {N} features, got {N + 1}",
    )
    assert wide.headers["x-amzn-invoked-production-variant"] == "v1"
    other = call(
        client,
        "POST",
        "/endpoints/nope/invocations",
        content=row,
        headers={"Content-Type": "text/csv"},
    )
    assert other.status_code == 404 and other.json()["status"] == 404
    tensor = {"inputs": [{"name": "x", "shape": [1, N], "datatype": "FP32", "data": [0.5] * N}]}
    v2 = call(client, "POST", "/v2/models/ep/versions/1/infer", json=tensor)
    assert v2.json()["outputs"][0]["data"] == [pytest.approx(float(ok.text), rel=1e-5)]
    missing = call(client, "GET", "/v2/models/ep/versions/2")
    assert missing.status_code == 404 and set(missing.json()) == {"error"}
