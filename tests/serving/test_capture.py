"""Data capture on a real endpoint server: SageMaker's record format, exactly the sampled
requests, what was sent and answered, a failing destination that costs no request, and a stop
that writes what was buffered."""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path

import httpx
import pytest

from core.records.endpoints import DataCapture
from flows.approval import deploy_approved as deploy
from flows.cli import main as skiff
from serving.control import servers
from serving.control.deploys import delete
from tests.helpers import wait_for
from tests.serving_fixtures import GOOD1, csv_rows, post

pytestmark = pytest.mark.slow


def _records(folder: Path) -> list[dict]:
    return [
        json.loads(line)
        for path in sorted(folder.rglob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]


def test_every_request_is_recorded_as_sent_and_answered_and_a_stop_flushes(
    models, tmp_path, monkeypatch, capsys
):
    store, features, rows = models
    monkeypatch.setenv("SKIFF_CAPTURE_FLUSH_SECONDS", "3600")  # only the stop writes
    destination = tmp_path / "capture"
    capture = DataCapture(destination=str(destination), percent=100)
    url = deploy(store, "captured", "bank-marketing", GOOD1, capture=capture).endpoint_url
    sent = []
    try:
        for i in range(30):
            body = csv_rows(rows[i : i + 1 + i % 3], features)  # 1 to 3 rows
            answer = post(url, body)
            assert answer.status_code == 200
            sent.append((body, answer.text, "text/csv"))
        record = {"instances": rows[features][:2].values.tolist()}
        answer = post(url, json.dumps(record), "application/json")
        sent.append((json.dumps(record), answer.text, "application/json"))
        assert post(url, "1,2,3").status_code == 400  # refused: not recorded
        assert not list(destination.rglob("*.jsonl"))  # buffered, off the request path
    finally:
        servers.stop(store, "captured")  # a graceful stop writes what is buffered

    records = _records(destination)
    assert len(records) == len(sent)
    files = list(destination.rglob("*.jsonl"))
    parts = files[0].relative_to(destination).parts
    assert parts[:2] == ("captured", "v1") and len(parts) == 7  # endpoint/variant/yyyy/mm/dd/hh
    for record, (body, answer, kind) in zip(records, sent, strict=True):
        data = record["captureData"]
        assert record["eventVersion"] == "0" and record["eventMetadata"]["eventId"]
        assert record["eventMetadata"]["inferenceTime"].endswith("Z")
        assert data["endpointInput"] == {
            "observedContentType": kind,
            "mode": "INPUT",
            "data": body,
            "encoding": "CSV" if kind == "text/csv" else "JSON",
        }
        assert data["endpointOutput"]["mode"] == "OUTPUT"
        assert data["endpointOutput"]["data"] == answer

    assert skiff(["--store", store.root, "endpoints", "capture", "captured", "--json"]) == 0
    shown = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["input"] for r in shown] == [body for body, _, _ in sent]
    delete(store, "captured")


def test_a_seeded_share_is_sampled_and_a_failing_destination_costs_no_request(
    models, tmp_path, monkeypatch
):
    store, features, rows = models
    monkeypatch.setenv("SKIFF_CAPTURE_FLUSH_SECONDS", "0.2")
    body = csv_rows(rows[:1], features)
    sampled = DataCapture(destination=str(tmp_path / "twenty"), percent=20, seed=7,
                          capture_output=False, csv_types=[])  # fmt: skip
    url = deploy(store, "sampled", "bank-marketing", GOOD1, capture=sampled).endpoint_url
    try:
        with httpx.Client(timeout=30, headers={"Content-Type": "text/csv"}) as client:
            for _ in range(500):
                assert client.post(f"{url}/invocations", content=body).status_code == 200
    finally:
        servers.stop(store, "sampled")
        delete(store, "sampled")
    records = _records(tmp_path / "twenty")
    sigma = math.sqrt(500 * 0.2 * 0.8)
    assert abs(len(records) - 100) < 4 * sigma
    only_input = records[0]["captureData"]
    assert set(only_input) == {"endpointInput"}
    assert only_input["endpointInput"]["encoding"] == "BASE64"  # not listed as CSV
    assert base64.b64decode(only_input["endpointInput"]["data"]).decode() == body

    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    failing = DataCapture(destination=str(blocked / "capture"), percent=100)
    url = deploy(store, "failing", "bank-marketing", GOOD1, capture=failing).endpoint_url
    try:
        for _ in range(20):
            assert post(url, body).status_code == 200  # the destination fails, requests don't

        def dropped() -> float:
            metrics = httpx.get(f"{url}/metrics", timeout=5).text
            lines = [line for line in metrics.splitlines()
                     if line.startswith("skiff_capture_dropped_total")]  # fmt: skip
            return sum(float(line.rsplit(" ", 1)[1]) for line in lines)

        wait_for(lambda: dropped() == 20, 30, "20 dropped records counted")
    finally:
        delete(store, "failing")
