"""Blue/green updates, weights, rollback, worker processes and /metrics, on real endpoint servers
with real models (each test starts its own server; a Load thread pool keeps requests flowing)."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import threading
from collections import Counter

import httpx
import pandas as pd
import pytest

from core.errors import ServingError
from core.records.endpoints import EndpointConfig, EndpointStore, Variant
from flows.api.context import ApiContext
from flows.api.server import make_app
from flows.approval import deploy_approved as deploy
from flows.cli import main as cli
from serving.contract import INVOKED_VARIANT, TARGET_VARIANT
from serving.control import scrapes, servers
from serving.control.deploys import delete
from serving.control.rollouts import (
    Alarms,
    BlueGreen,
    UpdatePolicy,
    UpdateRolledBack,
    publish,
    set_weights,
)
from serving.options import ServerOptions
from tests.helpers import wait_for
from tests.serving_fixtures import ERRATIC, GOOD1, GOOD2, SLEEPY, Load, csv_rows, post

GROUP = "bank-marketing"


@pytest.fixture
def endpoint(request, models):
    """A fresh endpoint serving version 1; deleted afterwards."""
    store = models[0]
    name = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name)[:40].strip("-")
    workers = getattr(request, "param", 1)
    deployed = deploy(store, name, GROUP, 1, server=ServerOptions(server_workers=workers))
    yield name, deployed.endpoint_url
    delete(store, name)


def counters(url: str) -> dict[str, scrapes.VariantCounters]:
    return scrapes.parse(httpx.get(f"{url}/metrics").text)


@pytest.mark.parametrize("endpoint", [2], indirect=True)
def test_two_workers_share_the_socket_and_one_scrape_sums_them(endpoint, models):
    _, url = endpoint
    _, features, test = models
    pids: set[int] = set()

    def both_answered() -> bool:  # a new connection each time: the kernel spreads them
        pids.add(httpx.get(f"{url}/skiff/status").json()["pid"])
        return len(pids) == 2

    wait_for(both_answered, 30, "answers from both worker processes", every=0.01)
    body = csv_rows(test[:3], features)
    for _ in range(60):
        assert post(url, body).status_code == 200
    assert post(url, "1,2\n").status_code == 400  # wrong feature count: a 4xx, counted
    # Each worker publishes its tallies a few times a second: wait for the other one's.
    wait_for(lambda: counters(url)["v1"].invocations == 61, 10, "61 requests in one scrape")
    scrape = httpx.get(f"{url}/metrics").text
    v1 = scrapes.parse(scrape)["v1"]
    assert v1.invocations == 61 and v1.buckets[-1][1] == 61  # every worker's requests, summed
    assert 'skiff_invocation_4xx_errors_total{variant="v1"} 1.0' in scrape
    assert 'skiff_model_load_seconds{variant="v1"}' in scrape

    # Hardening part 1, item 5: a worker killed outright is replaced; its gauges go with it,
    # its replacement takes no request before its model is loaded, and updates still apply.
    name = endpoint[0]
    server = servers.running(models[0], name)
    victim = pids.pop()
    with Load(url, body, fresh=True) as load:
        load.answered(20, "requests on fresh connections")
        os.kill(victim, signal.SIGKILL)

        def replaced() -> bool:
            status = servers.status_of(server)
            return status is not None and status.pid not in (victim, *pids)

        wait_for(replaced, 60, "an answer from the replacement worker", every=0.01)
        load.answered(50, "requests once the replacement serves")
    assert not [key for key in load.counts if key[0] == 503], load.counts
    assert load.counts[(200, "v1")] > 0
    assert servers.status_of(server).workers_ready == 2  # not 3: the dead one's gauge is gone
    deploy(models[0], name, GROUP, 2)  # waits until every worker serves it
    assert post(url, body).headers[INVOKED_VARIANT] == "v2"


def test_an_ab_test_beside_the_live_version_compared_promoted_and_removed(endpoint, models, capsys):
    """Issue 24: deploy beside at 10%, compare from one scrape, change the weights through
    SageMaker's UpdateEndpointWeightsAndCapacities on this CLI-made endpoint, roll back,
    promote, remove."""
    name, url = endpoint
    store, features, test = models
    configs = EndpointStore(store)

    def skiff(*args: str) -> str:
        assert cli(["--store", store.root, "endpoints", *args]) == 0
        return capsys.readouterr().out

    assert "v1 90%, v2 10%" in skiff("deploy", name, "2", "--weight", "0.1")
    beside = configs.current(name)
    assert [(v.name, v.weight) for v in beside.variants] == [("v1", 0.9), ("v2", 0.1)]
    assert not beside.transitional  # an A/B test is settled: a rollback may return to it

    n, body = 1000, csv_rows(test[:1], features)
    scores: dict[str, list[float]] = {"v1": [], "v2": []}
    with httpx.Client(base_url=url) as client:
        for _ in range(n):
            r = client.post("/invocations", content=body, headers={"Content-Type": "text/csv"})
            scores[r.headers[INVOKED_VARIANT]].append(float(r.text))
        bad = {"Content-Type": "text/csv", TARGET_VARIANT: "v2"}
        assert client.post("/invocations", content="1,2\n", headers=bad).status_code == 400
    share = len(scores["v2"]) / n
    assert abs(share - 0.1) < 4 * math.sqrt(0.1 * 0.9 / n), share  # 4 sigma
    assert len(scores["v1"]) + len(scores["v2"]) == n

    def compared() -> dict[str, dict]:
        return {row["variant"]: row for row in json.loads(skiff("compare", name, "--json"))}

    # Each worker publishes its tallies a few times a second: wait until all are in.
    wait_for(lambda: compared()["v2"]["errors_4xx"] == 1, 10, "the last requests in /metrics")
    rows = compared()  # one scrape: both variants' figures
    for variant, answered in scores.items():
        row = rows[variant]
        assert row["requests"] == len(answered) + (variant == "v2")  # the 400 counts as one
        assert row["errors_5xx"] == 0 and row["p50_ms"] <= row["p99_ms"]
        mean = sum(answered) / len(answered)  # of the answers, written to 6 digits
        assert row["mean_score"] == pytest.approx(mean, rel=1e-5)
    assert (rows["v1"]["share"], rows["v2"]["share"]) == (0.9, 0.1)
    shown = skiff("compare", name)
    assert "MEAN_SCORE" in shown.upper() and "bank-marketing:2" in shown

    from tests.api.conftest import sagemaker, serve_in_thread  # the API, over this store

    api = serve_in_thread(make_app(ApiContext(store)))
    client = sagemaker(next(api))
    try:
        client.update_endpoint_weights_and_capacities(
            EndpointName=name,
            DesiredWeightsAndCapacities=[
                {"VariantName": "v1", "DesiredWeight": 0.5},
                {"VariantName": "v2", "DesiredWeight": 0.5},
            ],
        )
        described = client.describe_endpoint(EndpointName=name)
    finally:
        api.close()
    assert described["EndpointStatus"] == "InService"
    weights = {v["VariantName"]: v["CurrentWeight"] for v in described["ProductionVariants"]}
    assert weights == {"v1": 0.5, "v2": 0.5}

    assert f"rollback to config {beside.number}" in skiff("rollback", name)
    assert [(v.name, v.weight) for v in configs.current(name).variants] == [
        ("v1", 0.9),
        ("v2", 0.1),
    ]
    assert "promote v2: it serves all traffic (dropped: v1)" in skiff("promote", name, "v2")
    assert {post(url, body).headers[INVOKED_VARIANT] for _ in range(20)} == {"v2"}
    assert "(not live)" in skiff("compare", name)  # v1's counts, since the server started

    skiff("deploy", name, str(GOOD1), "--weight", "0.25")
    assert "remove v1 (v2 serve on): v2 100%" in skiff("remove", name, "v1")
    assert [v.name for v in configs.current(name).variants] == ["v2"]
    for args, message in (
        (["remove", name, "v2"], "v2 is endpoint '%s''s only variant; to stop serving it, delete"),
        (["promote", name, "v9"], "has no variant v9; its variants: v2"),
        (["weights", name, "v9=1"], "has no variant v9; its variants: v2"),
        (["deploy", name, "1", "--weight", "1"], "--weight 1: the new variant's share"),
        (["deploy", name, "1", "--weight", "0.1", "--strategy", "LINEAR", "--wait-seconds", "1"],
         "--weight deploys beside the live variants and keeps them; --strategy LINEAR"),
        (["deploy", "no-such-endpoint", "1", "--weight", "0.1"],
         "endpoint 'no-such-endpoint' does not exist yet"),
    ):  # fmt: skip
        assert cli(["--store", store.root, "endpoints", *args]) == 1
        assert message.replace("%s", name) in capsys.readouterr().err
    assert [v.name for v in configs.current(name).variants] == ["v2"]  # nothing changed

    # A config the server cannot serve does not stay published for it to pick up.
    current = configs.current(name)
    server = servers.running(store, name)
    missing = Variant(name="v99", model_group=GROUP, model_version=99)
    with pytest.raises(ServingError, match=rf"rejected config {current.number + 1}: .*"):
        publish(configs, EndpointConfig(endpoint=name, variants=[missing]), server)
    restored = configs.current(name)
    assert [v.name for v in restored.variants] == ["v2"]
    assert restored.reason.startswith(f"rollback: config {current.number + 1} not served")


def test_weights_set_during_the_termination_wait_stand(endpoint, models):
    """Issue 24, item 1: an A/B test begun while blue waits at weight 0 is not overwritten
    when the update ends (the wait is the injected sleep, which sets the weights)."""
    name, _ = endpoint
    store, _, _ = models
    configs, server = EndpointStore(store), servers.running(store, name)
    policy = UpdatePolicy(termination_wait_seconds=30)

    def wait(seconds: float) -> None:
        if seconds == policy.termination_wait_seconds:  # a person, during the wait
            set_weights(configs, name, {"v1": 0.9, "v2": 0.1}, server)

    green = Variant(name="v2", model_group=GROUP, model_version=GOOD2)
    done = BlueGreen(configs, server, policy, sleep=wait).run(green, "deploy version 2")
    assert done.reason == "weights: v1=0.9, v2=0.1"
    assert configs.current(name) == done


# A fifth of the traffic, watched for up to a minute: the erratic model trips it long before.
CANARY = UpdatePolicy(
    strategy="CANARY",
    canary_size=0.2,
    wait_seconds=60,
    alarms=Alarms(max_error_rate=0.05, min_requests=10),
)


def test_linear_update_under_load_has_zero_failed_requests(endpoint, models, capsys):
    name, url = endpoint
    store, features, test = models
    flags = ["--strategy", "LINEAR", "--linear-step", "0.5", "--wait-seconds", "1"]
    # Two steps a second apart; a p99 bound a loaded CI machine cannot trip.
    flags += ["--termination-wait-seconds", "0.5", "--max-p99-ms", "30000"]
    with Load(url, csv_rows(test[:1], features)) as load:
        load.answered(20, "requests to flow")
        assert cli(["--store", store.root, "endpoints", "deploy", name, "2", *flags]) == 0
        load.answered(20, "requests after the update")
    # Issue 23, item 5: each step said as it happens, with one timestamp.
    said = capsys.readouterr().out.splitlines()
    assert all(re.match(r"\d\d:\d\d:\d\d [a-z]", line) for line in said[:-1]), said
    steps = [line[9:] for line in said]
    assert steps[0].endswith(": LINEAR 50% to v2") and steps[1].startswith("baking 1 s: the")
    assert any(s.startswith("baked: v2 answered") and s.endswith("no alarm") for s in steps)
    assert "the old variants stay loaded, at weight 0, for 0.5 s" in steps
    assert said[-1].startswith(f"endpoint {name}: {GROUP} version 2 serves all traffic at {url}")
    assert {status for status, _ in load.counts} == {200}, load.counts
    assert load.counts[(200, "v1")] > 0 and load.counts[(200, "v2")] > 0
    history = EndpointStore(store).history(name)
    steps = [c.reason for c in history if c.number > history[0].number]
    assert steps == [
        f"deploy {GROUP} version 2: LINEAR 50% to v2",
        f"deploy {GROUP} version 2: LINEAR 100% to v2",
        f"deploy {GROUP} version 2: done, v2 serves all traffic",
    ]
    assert [v.name for v in EndpointStore(store).current(name).variants] == ["v2"]


def test_an_erratic_canary_trips_its_alarm_and_traffic_rolls_back(endpoint, models):
    name, url = endpoint
    store, features, test = models
    with Load(url, csv_rows(test[:1], features)) as load:
        load.answered(20, "requests to flow")
        before = load.total()
        with pytest.raises(
            UpdateRolledBack, match=rf"alarm: v{ERRATIC} answered \d+ of \d+ requests with 5xx"
        ):
            deploy(store, name, GROUP, ERRATIC, policy=CANARY)
        during = load.total() - before
        load.answered(50, "requests after the rollback")
    failed = {key: n for key, n in load.counts.items() if key[0] != 200}
    assert set(failed) == {(500, f"v{ERRATIC}")}, load.counts  # only the canary failed, never v1
    # Failures are bounded by the canary's share of the requests until the alarm tripped.
    assert failed[(500, f"v{ERRATIC}")] <= 0.2 * during + 3 * CANARY.alarms.min_requests, (
        failed,
        during,
    )
    current = EndpointStore(store).current(name)
    assert [v.name for v in current.variants] == ["v1"]
    assert current.reason.startswith(f"rollback: alarm: v{ERRATIC}")


@pytest.mark.slow  # four seconds of baking, and a server of its own
def test_what_clients_send_to_a_canary_never_rolls_it_back(models):
    """Item 2: huge batches and malformed bodies aimed at the new variant reach it, yet its
    alarms judge it by the requests that parsed (their 5xx) and by the latency of those of at
    most ``alarm_max_rows`` rows. Before, a client could roll back any canary this way."""
    store, features, test = models
    server = ServerOptions(alarm_max_rows=50)
    url = deploy(store, "hostile", GROUP, GOOD1, server=server).endpoint_url
    green = f"v{SLEEPY}"
    # 300 rows take the sleepy model a second: far over the p99 limit, were they watched.
    big = csv_rows(pd.concat([test] * 2)[:300], features)
    policy = UpdatePolicy(
        strategy="CANARY",
        canary_size=0.5,
        wait_seconds=4,
        alarms=Alarms(max_p99_ms=200, min_requests=3),
    )
    answers: Counter = Counter()
    lock, stop = threading.Lock(), threading.Event()

    def hostile(body: str) -> None:
        while not stop.is_set():
            r = post(url, body, **{TARGET_VARIANT: green})
            with lock:
                answers[body == big, r.status_code, r.headers.get(INVOKED_VARIANT)] += 1

    threads = [threading.Thread(target=hostile, args=(b,)) for b in (big, big, big, "1,2\n")]
    try:
        for thread in threads:
            thread.start()
        deploy(store, "hostile", GROUP, SLEEPY, policy=policy)  # no UpdateRolledBack
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        delete(store, "hostile")
    assert answers[True, 200, green] >= policy.alarms.min_requests, answers
    assert answers[False, 400, green] >= policy.alarms.min_requests, answers
