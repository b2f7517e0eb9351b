"""Batch transform on the local backend: real runner processes scoring real bank models, their
output checked against the endpoint's answers for the same rows."""

from __future__ import annotations

import re

import httpx
import orjson
import pandas as pd
import pytest

from core.errors import BackendError, TransformError
from core.records.jobs import Status
from core.records.transforms import TransformJob, TransformStore
from flows.approval import deploy_approved as deploy
from flows.cli import main as skiff
from flows.transforms.jobs import run
from serving.batch.jsonpath import JsonPath
from serving.control.deploys import delete
from tests.serving_fixtures import GOOD1, csv_rows


def _job(name: str, input_url: str, output_url: str, **fields) -> TransformJob:
    return TransformJob(
        name=name,
        model_group="bank-marketing",
        model_version=GOOD1,
        input_url=input_url,
        output_url=output_url,
        **fields,
    )


@pytest.fixture(scope="module")
def data(models, tmp_path_factory):
    """Two CSV objects under a prefix (the larger in several 1 MB batches), the endpoint's
    answer for each, and the rows as frames."""
    store, features, rows = models
    folder = tmp_path_factory.mktemp("transform")
    big = pd.concat([rows] * 12, ignore_index=True)  # ~1.2 MB of CSV: two batches of 1 MB
    parts = {"a.csv": big, "sub/b.csv": rows[:50]}
    name = "transform-check"
    url = deploy(store, name, "bank-marketing", GOOD1).endpoint_url
    expected = {}
    try:
        for part, frame in parts.items():
            (folder / "in" / part).parent.mkdir(parents=True, exist_ok=True)
            body = csv_rows(frame, features)
            (folder / "in" / part).write_text(body)
            answer = httpx.post(f"{url}/invocations", content=body, timeout=60,
                                headers={"Content-Type": "text/csv"})  # fmt: skip
            expected[part] = answer.text
    finally:
        delete(store, name)
    return store, features, folder, parts, expected


@pytest.mark.slow
def test_output_is_the_endpoints_answer_in_input_order(data):
    store, _, folder, parts, expected = data
    status = run(store, _job("plain", str(folder / "in"), str(folder / "out"), max_payload_mb=1))
    assert status.status == Status.COMPLETED, status.failure_reason
    assert sorted(status.outputs) == sorted(str(folder / "out" / f"{p}.out") for p in parts)
    for part in parts:
        assert (folder / "out" / f"{part}.out").read_text() == expected[part]
    assert status.rows == sum(len(f) for f in parts.values())
    assert status.objects_done == 2 and status.rows_per_second > 0
    assert sum(status.histogram.counts) == status.rows
    # Nothing but the outputs: no temporary file is left beside them.
    assert sorted(p.name for p in (folder / "out").rglob("*") if p.is_file()) == [
        "a.csv.out",
        "b.csv.out",
    ]


@pytest.mark.slow
def test_headers_filters_and_joins(data):
    """SageMaker's own recipe: the label first, `$[1:]` to drop it, each score joined to its
    row, `$[0,-1]` to keep the label and the score; a header names the columns."""
    store, features, folder, parts, expected = data
    frame = parts["sub/b.csv"].assign(id=range(50))[["id", *features]]
    labelled = folder / "labelled.csv"
    frame.to_csv(labelled, index=False)  # with a header
    status = run(
        store,
        _job(
            "joined",
            str(labelled),
            str(folder / "joined"),
            header=True,
            input_filter="$[1:]",
            join_source="Input",
            output_filter="$[0,-1]",
        ),
    )
    assert status.status == Status.COMPLETED, status.failure_reason
    lines = (folder / "joined" / "labelled.csv.out").read_text().splitlines()
    scores = expected["sub/b.csv"].splitlines()
    assert lines == [f"{i},{s}" for i, s in enumerate(scores)]

    # A header naming the model's columns in another order, and a column it does not take:
    # the columns are picked by name.
    shuffled = frame[["id", *reversed(features)]]
    shuffled.to_csv(folder / "shuffled.csv", index=False)
    status = run(store, _job("by-name", str(folder / "shuffled.csv"), str(folder / "named"),
                             header=True))  # fmt: skip
    assert (folder / "named" / "shuffled.csv.out").read_text() == expected["sub/b.csv"]

    # One record a batch, or the whole object as one record: the same answer.
    small = str(folder / "in" / "sub" / "b.csv")
    for name, options in (("single", {"batch_strategy": "SingleRecord"}),
                          ("whole", {"split_type": "None", "assemble_with": "None"})):  # fmt: skip
        status = run(store, _job(name, small, str(folder / name), **options))
        assert (folder / name / "b.csv.out").read_text() == expected["sub/b.csv"], name

    # JSON lines: a record per line, the features in a member; joined, the output is added
    # to the record as SageMakerOutput.
    records = [
        {"id": i, "features": row}
        for i, row in enumerate(parts["sub/b.csv"][features].values.tolist())
    ]
    (folder / "rows.jsonl").write_bytes(b"\n".join(orjson.dumps(r) for r in records))
    status = run(store, _job("jsonl", str(folder / "rows.jsonl"), str(folder / "jsonl"),
                             content_type="application/jsonlines", accept="application/jsonlines",
                             input_filter="$.features", join_source="Input",
                             output_filter="$['id','SageMakerOutput']"))  # fmt: skip
    assert status.status == Status.COMPLETED, status.failure_reason
    out = [
        orjson.loads(line)
        for line in (folder / "jsonl" / "rows.jsonl.out").read_bytes().splitlines()
    ]
    assert [o[0] for o in out] == list(range(50))
    assert [f"{o[1]['score']:.6g}" for o in out] == scores

    # Parquet: the model's columns by name.
    parts["sub/b.csv"].to_parquet(folder / "rows.parquet")
    status = run(store, _job("parquet", str(folder / "rows.parquet"), str(folder / "pq"),
                             content_type="application/x-parquet"))  # fmt: skip
    assert (folder / "pq" / "rows.parquet.out").read_text() == expected["sub/b.csv"]


@pytest.mark.slow
def test_a_bad_row_is_named_and_fails_the_job_unless_skipped(data):
    store, features, folder, _, expected = data
    body = (folder / "in" / "sub" / "b.csv").read_text().splitlines()
    body[6] = body[6].replace(",", ",abc,", 1)  # line 7: one field too many, and not a number
    body[20] = "1,2,3"
    (folder / "bad").mkdir()
    (folder / "bad" / "b.csv").write_text("\n".join(body) + "\n")
    (folder / "bad-out").mkdir()
    (folder / "bad-out" / "b.csv.out").write_text("an earlier run's output\n")

    status = run(store, _job("strict", str(folder / "bad"), str(folder / "bad-out")))
    assert status.status == Status.FAILED
    assert f"{folder / 'bad' / 'b.csv'}, line 7: expected {len(features)} features, got" in (
        status.failure_reason
    )
    assert status.outputs == []
    # Nothing half-written: what was there is as it was, and no temporary file is left.
    assert (folder / "bad-out" / "b.csv.out").read_text() == "an earlier run's output\n"
    assert [p.name for p in (folder / "bad-out").iterdir()] == ["b.csv.out"]

    status = run(store, _job("lenient", str(folder / "bad"), str(folder / "bad-out"),
                             skip_bad_rows=True))  # fmt: skip
    assert status.status == Status.COMPLETED and status.bad_rows == 2 and status.rows == 48
    assert [e.rsplit(", line ", 1)[1].split(":")[0] for e in status.bad_row_examples] == ["7", "21"]
    kept = [s for i, s in enumerate(expected["sub/b.csv"].splitlines()) if i not in (6, 20)]
    assert (folder / "bad-out" / "b.csv.out").read_text().splitlines() == kept


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"input_filter": "$[1:"}, "JSONPath '$[1:': cannot read"),
        ({"input_filter": "$.features"}, "does not pick columns of a CSV row"),
        ({"input_filter": "$[2:]"}, "fields, {} after InputFilter '$[2:]'; the model takes"),
        ({"join_source": "Input", "accept": "application/jsonlines"}, "must be the same format"),
        ({"model_version": 99}, "cannot transform with bank-marketing:99"),
        ({"input_url": "/no/such/place"}, "no input objects at /no/such/place"),
    ],
)
def test_bad_options_are_named_before_anything_is_recorded(data, fields, message):
    store, features, folder, _, _ = data
    spec = _job("refused", str(folder / "in" / "sub"), str(folder / "refused")).model_copy(
        update=fields
    )
    message = message.format(len(features) - 2)
    with pytest.raises(TransformError, match=re.escape(message)):
        run(store, spec)
    assert "refused" not in TransformStore(store).names()


@pytest.mark.slow
def test_ec2_refuses_transform_jobs_by_name(data):
    store, _, folder, _, _ = data
    with pytest.raises(BackendError, match="the ec2 backend does not run transform jobs"):
        run(store, _job("on-ec2", str(folder / "in"), str(folder / "x"), backend="ec2"),
            {"region": "us-east-1"})  # fmt: skip
    assert "on-ec2" not in TransformStore(store).names()


@pytest.mark.slow
def test_stop_ends_the_job_stopped_with_no_output(data):
    store, _, folder, _, _ = data
    jobs = TransformStore(store)
    # One record a batch: slow enough to be stopped halfway.
    spec = _job("stopped", str(folder / "in" / "a.csv"), str(folder / "stopped"),
                batch_strategy="SingleRecord")  # fmt: skip

    def stop_once_scoring(status) -> None:
        if status.rows:
            jobs.request_stop("stopped")

    status = run(store, spec, {"threads": 1}, progress=stop_once_scoring, every=0.2)
    assert status.status == Status.STOPPED and status.failure_reason == "stop requested"
    assert 0 < jobs.status("stopped").rows < 7200
    assert not (folder / "stopped").exists() or not list((folder / "stopped").iterdir())


@pytest.mark.slow
def test_the_command_line(data, capsys):
    store, _, folder, _, expected = data
    arguments = ["--store", store.root, "transform", f"bank-marketing:{GOOD1}"]
    code = skiff([*arguments, str(folder / "in" / "sub"), str(folder / "cli"), "--name", "cli"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "transform job cli: Completed; 1/1 object(s), 50 rows" in printed
    assert (folder / "cli" / "b.csv.out").read_text() == expected["sub/b.csv"]
    assert skiff(["--store", store.root, "transforms", "list"]) == 0
    assert re.search(r"\ncli +Completed +bank-marketing:1 +50 ", capsys.readouterr().out)
    assert skiff(["--store", store.root, "transforms", "describe", "cli"]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith("transform job cli: Completed\n") and "  rows:" in shown
    assert "50 scored" in shown and "\noutputs:\n" in shown
    assert skiff(["--store", store.root, "transforms", "stop", "cli"]) == 0
    assert "already ended Completed" in capsys.readouterr().out


def test_json_paths():
    row = ["a", "b", "c", "d"]
    assert JsonPath("$[1:]").apply(row) == ["b", "c", "d"]
    assert JsonPath("$[0,-1]").apply(row) == ["a", "d"]
    assert JsonPath("$[2]").apply(row) == "c"
    assert JsonPath("$[0, 2:]").columns(4) == [0, 2, 3]
    assert JsonPath("$").apply(row) == row and JsonPath("$").is_root
    record = {"id": 1, "data": {"features": [1, 2, 3]}}
    assert JsonPath("$.data.features[1:]").apply(record) == [2, 3]
    assert JsonPath("$['id','data']").apply(record) == [1, record["data"]]
    for path, message in (("$[9]", "index 9 is outside"), ("$.nope", "has no 'nope'"),
                          ("$..x", "cannot read")):  # fmt: skip
        with pytest.raises(TransformError, match=message):
            JsonPath(path).apply(record if "." in path else row)


def test_the_transform_flow_shows_progress_and_a_summary_in_prefect(data, prefect_server):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.transforms import report
    from flows.transforms.flow import transform

    store, _, folder, _, expected = data
    line = transform(store.root, GOOD1, str(folder / "in"), str(folder / "flow"), name="in-prefect")
    assert line.startswith("2/2 object(s), 7,250 rows")
    assert (folder / "flow" / "a.csv.out").read_text() == expected["a.csv"]
    key = report.artifact_key("in-prefect")
    with get_client(sync_client=True) as client:
        summary = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
        everything = client.read_artifacts()
    assert len(summary) == 1
    assert "| 7,250 |" in summary[0].data and "data:image/png;base64," in summary[0].data
    progress = [a for a in everything if a.type == "progress" and a.data == 100.0]
    assert any("2/2 object(s), 7,250 rows" in (a.description or "") for a in progress)
