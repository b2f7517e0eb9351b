"""The endpoint server, run for real as a detached process on loopback."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from core.errors import NotApproved, ServingError
from core.records.endpoints import EndpointConfig, EndpointStore, Variant
from flows.approval import deploy_approved as deploy
from serving.control import servers
from serving.control.deploys import delete
from tests.serving_fixtures import PENDING, Load, csv_rows, post, raw_records

ENDPOINT = "bank-test"


@pytest.fixture(scope="module")
def endpoint(models):
    store = models[0]
    deployed = deploy(store, ENDPOINT, "bank-marketing", 1)
    yield deployed.endpoint_url
    delete(store, ENDPOINT)


def test_ping_and_single_csv_row(endpoint, models):
    _, features, test = models
    assert httpx.get(f"{endpoint}/ping").status_code == 200
    r = post(endpoint, csv_rows(test[:1], features))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 0 < float(r.text) < 1
    assert r.headers["x-amzn-invoked-production-variant"] == "v1"


def test_batch_csv_and_json_agree(endpoint, models):
    _, features, test = models
    batch = test[:500]
    csv_scores = np.array(post(endpoint, csv_rows(batch, features)).text.split(), dtype=float)
    body = json.dumps({"instances": batch[features].to_numpy().tolist()})
    json_scores = np.array(post(endpoint, body, "application/json").json()["predictions"])
    assert len(csv_scores) == 500
    np.testing.assert_allclose(csv_scores, json_scores, rtol=1e-5)


def test_raw_records_are_encoded_with_the_saved_schema(endpoint, models, csv_bytes):
    _, features, _ = models
    records = raw_records(csv_bytes, 20)
    from flows.bank import CleanOptions, feature_schema

    encoded = feature_schema(CleanOptions()).encode(records)[features]
    by_rows = post(endpoint, csv_rows(encoded, features)).text.split()
    payload = {"instances": json.loads(records.drop(columns=["y"]).to_json(orient="records"))}
    by_records = post(endpoint, json.dumps(payload), "application/json").json()["predictions"]
    np.testing.assert_allclose(np.array(by_rows, dtype=float), by_records, rtol=1e-5)
    one = post(endpoint, json.dumps(payload["instances"][0]), "application/json")
    assert one.status_code == 200 and len(one.json()["predictions"]) == 1


def test_sagemaker_path_headers_and_boto3(endpoint, models, monkeypatch):
    _, features, test = models
    r = httpx.post(
        f"{endpoint}/endpoints/{ENDPOINT}/invocations",
        content=csv_rows(test[:2], features),
        headers={"Content-Type": "text/csv", "X-Amzn-SageMaker-Custom-Attributes": "trace=42"},
    )
    assert r.status_code == 200 and len(r.text.split()) == 2
    assert r.headers["x-amzn-sagemaker-custom-attributes"] == "trace=42"
    wrong = httpx.post(
        f"{endpoint}/endpoints/other/invocations", content="1", headers={"Content-Type": "text/csv"}
    )
    assert wrong.status_code == 404 and "no endpoint named 'other'" in wrong.json()["error"]

    import boto3

    for k, v in {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(k, v)
    runtime = boto3.client("sagemaker-runtime", endpoint_url=endpoint)
    answer = runtime.invoke_endpoint(
        EndpointName=ENDPOINT, ContentType="text/csv", Body=csv_rows(test[:3], features)
    )
    assert len(answer["Body"].read().split()) == 3
    assert answer["InvokedProductionVariant"] == "v1"


def test_open_inference_protocol_v2(endpoint, models):
    _, features, test = models
    n = len(features)
    v2 = f"{endpoint}/v2"
    assert httpx.get(v2).json()["name"] == "skiff"
    assert httpx.get(f"{v2}/health/live").json() == {"live": True}
    assert httpx.get(f"{v2}/health/ready").json() == {"ready": True}
    meta = httpx.get(f"{v2}/models/{ENDPOINT}").json()
    assert meta["name"] == ENDPOINT and meta["versions"] == ["1"]
    assert meta["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, n]}]
    assert httpx.get(f"{v2}/models/{ENDPOINT}/versions/1/ready").json() == {
        "name": ENDPOINT,
        "ready": True,
    }

    rows = test[:3][features].to_numpy()
    expected = np.array(post(endpoint, csv_rows(test[:3], features)).text.split(), dtype=float)
    for data in (rows.ravel().tolist(), rows.tolist()):  # flat (row-major) or nested
        request = {
            "id": "r-1",
            "inputs": [{"name": "features", "shape": [3, n], "datatype": "FP32", "data": data}],
        }
        for path in (f"models/{ENDPOINT}/infer", f"models/{ENDPOINT}/versions/1/infer"):
            r = httpx.post(f"{v2}/{path}", json=request)
            assert r.status_code == 200, r.text
            answer = r.json()
            assert answer["id"] == "r-1" and answer["model_name"] == ENDPOINT
            assert answer["model_version"] == "1"
            (output,) = answer["outputs"]
            assert output["name"] == "predict" and output["shape"] == [3]
            assert output["datatype"] == "FP64"
            np.testing.assert_allclose(output["data"], expected, rtol=1e-5)

    def tensor(**changes):
        return {
            "inputs": [
                {"name": "features", "shape": [1, n], "datatype": "FP32", "data": [0.5] * n}
                | changes
            ]
        }

    bad = [
        (f"models/{ENDPOINT}/versions/2", None, 404, "version 2 is not live"),
        ("models/other", None, 404, "no model named 'other'"),
        (f"models/{ENDPOINT}/versions/x/infer", tensor(), 400, "positive integer, not 'x'"),
        (f"models/{ENDPOINT}/infer", tensor(shape=[1, 3]), 400, f"expected {n} features"),
        (f"models/{ENDPOINT}/infer", tensor(data=[1.0] * (n - 1)), 400, f"needs {n} values"),
        (f"models/{ENDPOINT}/infer", tensor(data=[1.0, "abc"] + [0.0] * (n - 2)), 400,
         "row 1, column 2: 'abc' is not a finite"),
        (f"models/{ENDPOINT}/infer", tensor(data=[1e39] + [0.0] * (n - 1)), 400,
         "row 1, column 1: 1e+39"),
        (f"models/{ENDPOINT}/infer", tensor(datatype="BYTES"), 400, "'BYTES' is not supported"),
        (f"models/{ENDPOINT}/infer", {"inputs": []}, 400, "expected one input tensor, got 0"),
        (f"models/{ENDPOINT}/infer", {"input": 1}, 400, '"inputs" list'),
        (f"models/{ENDPOINT}/infer", b"{nope", 400, "invalid JSON"),
        # Each of these was a 500 (issue 14): now a 400 naming the problem.
        (f"models/{ENDPOINT}/infer", tensor(shape=[True, n]), 400, "shape must be [rows"),
        (f"models/{ENDPOINT}/infer", tensor(shape=[0, n], data=[]), 400, "has no rows"),
        (f"models/{ENDPOINT}/infer", tensor(datatype=["FP32"]), 400, "['FP32'] is not supported"),
        (f"models/{ENDPOINT}/versions/%C2%B2/infer", tensor(), 400, "positive integer, not '²'"),
        (f"models/{ENDPOINT}/versions/{'9' * 5000}/infer", tensor(), 400,
         "positive integer, not '9999"),
        (f"models/{ENDPOINT}/infer", b'{"id": "\\ud800", "inputs": []}', 400,
         "invalid JSON: no low surrogate"),
    ]  # fmt: skip
    for path, body, status, message in bad:
        if body is None:
            r = httpx.get(f"{v2}/{path}")
        elif isinstance(body, bytes):
            r = httpx.post(f"{v2}/{path}", content=body)
        else:
            r = httpx.post(f"{v2}/{path}", json=body)
        assert r.status_code == status and set(r.json()) == {"error"}, (path, r.text)
        assert message in r.json()["error"], (path, r.text)
    assert httpx.get(f"{endpoint}/ping").status_code == 200


def _bad_requests(n: int) -> list[tuple[str, bytes | str, str, int, str]]:
    row = ["1"] * n
    with_field = lambda i, v: ",".join([*row[:i], v, *row[i + 1 :]])  # noqa: E731
    batch = lambda line: "\n".join([",".join(row)] * 50 + [line] + [",".join(row)] * 49)  # noqa: E731
    return [
        ("bad csv", with_field(4, "abc"), "text/csv", 400, "row 1, column 5: 'abc' is not a number"),
        ("too many", ",".join([*row, "1"]), "text/csv", 400, f"expected {n} features, got {n + 1}"),
        ("too few", ",".join(row[:3]), "text/csv", 400, f"expected {n} features, got 3"),
        ("second row", ",".join(row) + "\n" + ",".join(row[:-1]), "text/csv", 400, "row 2: expected"),
        ("nan", with_field(0, "nan"), "text/csv", 400, "row 1, column 1: 'nan' is not a finite"),
        ("inf", with_field(2, "-inf"), "text/csv", 400, "row 1, column 3: '-inf' is not a finite"),
        ("huge", with_field(1, "1e39"), "text/csv", 400, "row 1, column 2: '1e39' is not a finite float32"),
        ("big batch inf", batch(with_field(5, "inf")), "text/csv", 400, "row 51, column 6: 'inf'"),
        # A big body goes to pandas' C parser first: it must refuse what the row parser does.
        ("big batch nan", batch(with_field(0, "nan")), "text/csv", 400, "row 51, column 1: 'nan'"),
        ("big batch bool", batch(with_field(1, "True")), "text/csv", 400, "row 51, column 2: 'True'"),
        ("big batch short", batch(",".join(row[:-1])), "text/csv", 400, f"row 51: expected {n} "),
        ("big batch long", batch(",".join([*row, "1"])), "text/csv", 400, f"row 51: expected {n} "),
        ("big batch blank", batch(""), "text/csv", 400, f"row 51: expected {n} features, got 1"),
        ("big batch quoted", batch('"1,1"' + "," * (n - 2)), "text/csv", 400,
         "row 51, column 1: '\"1' is not a number"),
        ("empty", b"", "text/csv", 400, "empty request body"),
        ("not utf-8", b"\xff\xfe", "text/csv", 400, "not UTF-8"),
        ("invalid json", "{nope", "application/json", 400, "invalid JSON"),
        ("json nan", json.dumps({"instances": [[float("nan")] * n]}), "application/json", 400,
         "invalid JSON: unexpected character"),  # NaN is not JSON
        ("json 1e400", '{"instances": [[1' + "0" * 400 + "]]}", "application/json", 400,
         "invalid JSON: number is infinity"),
        ("json 5000 digits", '{"instances": [[' + "1" * 5000 + "]]}", "application/json", 400,
         "invalid JSON: number is infinity"),
        ("json deep", "[" * 100_000, "application/json", 400, "invalid JSON: depth limit exceeded"),
        ("json deep rows", '{"instances": [[' + "[" * 2000, "application/json", 400,
         "invalid JSON: depth limit exceeded"),
        ("json surrogate", '{"instances": [{"job": "\\ud800"}]}', "application/json", 400,
         "invalid JSON: no low surrogate"),
        ("json string", json.dumps({"instances": [["a"] * n]}), "application/json", 400,
         "row 1, column 1: 'a' is not a number"),
        ("json shape", json.dumps({"instances": 3}), "application/json", 400, "expected {\"instances\""),
        ("json mixed", json.dumps({"instances": [[1], {"a": 1}]}), "application/json", 400, "all be lists"),
        ("unknown category", None, "application/json", 400,
         "column 'job', row 1: unknown category 'astronaut'"),
        ("missing column", json.dumps([{"age": 30}]), "application/json", 400, "missing column(s): job"),
        ("content type", "1", "application/xml", 415, "unsupported content type 'application/xml'"),
        ("no content type", "1", "", 415, "unsupported content type"),
    ]  # fmt: skip


def test_bad_requests_get_4xx_naming_the_problem_and_server_stays_up(endpoint, models, csv_bytes):
    _, features, _ = models
    record = json.loads(raw_records(csv_bytes, 1).drop(columns=["y"]).to_json(orient="records"))[0]
    failures = []
    for name, body, content_type, status, message in _bad_requests(len(features)):
        if body is None:
            body = json.dumps({"instances": [record | {"job": "astronaut"}]})
        # SageMaker's container path, and InvokeEndpoint's: one set of answers.
        for url in (endpoint, f"{endpoint}/endpoints/{ENDPOINT}"):
            r = post(url, body, content_type)
            if r.status_code != status or message not in r.json().get("error", ""):
                failures.append((name, url, r.status_code, r.text[:300]))
    assert not failures
    assert httpx.get(f"{endpoint}/ping").status_code == 200


def test_oversized_body_is_413(endpoint):
    r = post(endpoint, b"1," * (3_500_000))  # 7 MB, over SageMaker's 6 MB limit
    assert r.status_code == 413 and "exceeds the" in r.json()["error"]
    assert httpx.get(f"{endpoint}/ping").status_code == 200


def test_unknown_target_variant_names_the_variants(endpoint):
    r = post(endpoint, "1", **{"X-Amzn-SageMaker-Target-Variant": "v9"})
    assert r.status_code == 400 and r.json()["error"] == "unknown target variant 'v9'; variants: v1"


def test_pending_version_is_not_deployed(models):
    with pytest.raises(
        NotApproved, match=f"version {PENDING} is PendingManualApproval, so it is not deployed"
    ):
        deploy(models[0], "never", "bank-marketing", PENDING)
    assert not EndpointStore(models[0]).exists("never")


def test_swap_under_load_has_zero_failures_and_bad_model_never_serves(models):
    store, features, test = models
    first = deploy(store, "swap", "bank-marketing", 1)
    try:
        with Load(first.endpoint_url, csv_rows(test[:1], features)) as load:
            load.answered(50, "requests to flow")
            second = deploy(store, "swap", "bank-marketing", 2)
            assert second.endpoint_url == first.endpoint_url  # same server: swapped in-process
            load.answered(50, "requests after the swap")

            # Corrupt version 1's artifact, then try to deploy it: the server refuses the new
            # config, keeps serving version 2, and the stored config is rolled back.
            artifact = Path(
                store.read_json("registry/bank-marketing/1/version.json")["artifact_url"]
            )
            original = artifact.read_bytes()
            artifact.write_bytes(b"corrupt")
            try:
                with pytest.raises(ServingError, match="does not match its recorded checksum"):
                    deploy(store, "swap", "bank-marketing", 1)
            finally:
                artifact.write_bytes(original)
            load.answered(50, "requests after the failed update")
        statuses = {status for status, _ in load.counts}
        assert statuses == {200}, load.counts
        assert load.counts[(200, "v1")] > 0 and load.counts[(200, "v2")] > 0
        current = EndpointStore(store).current("swap")
        assert [v.model_version for v in current.variants] == [2]
        assert current.reason.startswith("rollback")
        last = post(first.endpoint_url, csv_rows(test[:1], features))
        assert last.headers["x-amzn-invoked-production-variant"] == "v2"
    finally:
        delete(store, "swap")


def test_start_brings_a_stored_endpoint_back_and_delete_stops_it(models):
    store, features, test = models
    deployed = deploy(store, "reboot", "bank-marketing", 2)
    server = servers.running(store, "reboot")
    assert servers.stop(store, "reboot")  # as if the machine rebooted
    with pytest.raises(ProcessLookupError):
        __import__("os").kill(server.pid, 0)
    back = servers.start(store, "reboot")  # on the port it had (issue 23, item 8)
    assert back.url == deployed.endpoint_url
    r = post(back.url, csv_rows(test[:1], features))
    assert r.headers["x-amzn-invoked-production-variant"] == "v2"
    assert servers.stop(store, "reboot")
    port = int(back.url.rsplit(":", 1)[1])
    with socket.create_server(("127.0.0.1", port)):  # someone else took it meanwhile
        with pytest.raises(ServingError, match=rf"port {port} \(endpoint 'reboot''s port at its"):
            servers.start(store, "reboot")
        back = servers.start(store, "reboot", port=0)  # a new one, as asked
    assert back.url != deployed.endpoint_url and servers.status_of(back) is not None
    assert delete(store, "reboot")
    assert servers.running(store, "reboot") is None
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{back.url}/ping")
    with pytest.raises(ServingError, match="no endpoint named 'reboot'"):
        servers.start(store, "reboot")
    assert deployed.endpoint_name == "reboot"


def test_a_server_whose_config_was_removed_is_still_listed_and_deletable(models, capsys):
    from flows.cli import main as cli

    store = models[0]
    url = deploy(store, "hidden", "bank-marketing", 1).endpoint_url
    try:
        store.delete("endpoints/hidden/config.json")  # by hand, under a running server
        assert cli(["--store", store.root, "endpoints", "list"]) == 0
        listed = capsys.readouterr().out
        assert "hidden" in listed and url in listed and "no stored config" in listed
        assert cli(["--store", store.root, "endpoints", "delete", "hidden"]) == 0
        assert "(server stopped)" in capsys.readouterr().out
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/ping")
        assert cli(["--store", store.root, "endpoints", "delete", "hidden"]) == 1
        assert "no endpoint named 'hidden'" in capsys.readouterr().err
    finally:
        servers.stop(store, "hidden")


def test_concurrent_updates_are_serialised(store):
    configs = EndpointStore(store)
    configs.update(
        "locked",
        lambda _: EndpointConfig(
            endpoint="locked", variants=[Variant(name="v0", model_group="g", model_version=1)]
        ),
    )

    def add(i: int):
        def change(current: EndpointConfig | None) -> EndpointConfig:
            time.sleep(0.01)  # widen the read-modify-write window
            extra = Variant(name=f"v{i + 1}", model_group="g", model_version=1)
            return current.model_copy(update={"variants": [*current.variants, extra]})

        configs.update("locked", change)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = configs.current("locked")
    assert final.number == 9 and len(final.variants) == 9  # no update lost
    assert [c.number for c in configs.history("locked")] == list(range(1, 10))


def test_skiff_endpoints_commands(endpoint, models, capsys):
    from flows.cli import main as cli

    store, features, test = models
    args = ["--store", store.root, "endpoints"]
    assert cli([*args, "list"]) == 0
    assert endpoint in capsys.readouterr().out
    assert cli([*args, "describe", ENDPOINT]) == 0
    shown = capsys.readouterr().out
    assert "  url:" in shown and endpoint in shown and "\nvariants:\n  v1" in shown
    assert cli([*args, "describe", ENDPOINT, "--json"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert (
        described["server"]["url"] == endpoint
        and described["config"]["variants"][0]["name"] == "v1"
    )
    body = json.dumps({"instances": test[features][:2].to_numpy().tolist()})
    assert cli([*args, "invoke", ENDPOINT, "--body", body]) == 0
    answered = capsys.readouterr()
    assert len(json.loads(answered.out)["predictions"]) == 2
    assert answered.err == "(answered by variant v1)\n"  # issue 23, item 6: on stderr
    assert cli([*args, "invoke", ENDPOINT, "--body", "[[1]]"]) == 1
    captured = capsys.readouterr()
    assert "expected" in captured.out and "answered 400" in captured.err
    assert cli([*args, "logs", ENDPOINT]) == 0
    assert "serving config 1: v1=1" in capsys.readouterr().out


def test_deploy_model_flow(prefect_server, models):
    from flows.deploy_model import deploy_model

    store, features, test = models
    result = deploy_model(model_version=2, endpoint_name="from-flow", store=store.root)
    try:
        assert result["variant"] == "v2" and result["config_number"] == 1
        r = post(result["endpoint_url"], csv_rows(test[:1], features))
        assert r.headers["x-amzn-invoked-production-variant"] == "v2"
        with pytest.raises(NotApproved, match="version 3 is PendingManualApproval"):
            deploy_model(model_version=3, endpoint_name="from-flow", store=store.root)
        # Issue 24: the flow deploys beside the live variant too (an A/B test).
        deploy_model(model_version=1, endpoint_name="from-flow", store=store.root, weight=0.25)
        current = EndpointStore(store).current("from-flow")
        assert [(v.name, v.weight) for v in current.variants] == [("v2", 0.75), ("v1", 0.25)]
    finally:
        delete(store, "from-flow")
