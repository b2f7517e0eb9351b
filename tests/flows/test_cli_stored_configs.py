"""The ``skiff endpoints`` commands never corrupt a stored config, and one broken config never
takes the commands down for the others (hardening, part 2: items 6 and 9)."""

from __future__ import annotations

import json

import pytest

from core.errors import StoreError
from core.records.endpoints import EndpointConfig, EndpointStore, Variant
from core.store import Store
from flows.cli import main

TWO = [
    Variant(name="v1", model_group="g", model_version=1, weight=0.5),
    Variant(name="v2", model_group="g", model_version=2, weight=0.5),
]


@pytest.fixture
def endpoints(store: Store) -> EndpointStore:
    configs = EndpointStore(store)
    for name in ("good", "other"):
        configs.update(name, lambda _, name=name: EndpointConfig(endpoint=name, variants=TWO))
    return configs


def run(capsys, store: Store, *args: str) -> tuple[int, str, str]:
    try:
        code = main(["--store", store.root, *args])
    except SystemExit as exit_:
        code = exit_.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize(
    ("weight", "why"),
    [
        ("v1", "expected VARIANT=WEIGHT, got 'v1'"),
        ("v1=nan", "v1: the weight must be a number >= 0, not 'nan'"),
        ("v1=inf", "v1: the weight must be a number >= 0, not 'inf'"),
        ("v1=-1", "v1: the weight must be a number >= 0, not '-1'"),
        ("v1=heavy", "v1: the weight must be a number >= 0, not 'heavy'"),
    ],
)
def test_a_bad_weight_exits_2_at_once_and_changes_nothing(capsys, store, endpoints, weight, why):
    before = store.read_bytes("endpoints/good/config.json")
    code, _, err = run(capsys, store, "endpoints", "weights", "good", weight, "v2=1")
    assert code == 2 and why in err and "Traceback" not in err
    assert store.read_bytes("endpoints/good/config.json") == before
    assert [c.number for c in endpoints.history("good")] == [1]


def test_an_invalid_config_is_never_written_whatever_built_it(store, endpoints):
    current = endpoints.current("good")
    nan = current.variants[0].model_copy(update={"weight": float("nan")})  # skips validation
    with pytest.raises(StoreError, match=r"invalid EndpointConfig: variants\.0\.weight"):
        endpoints.update("good", lambda c: c.model_copy(update={"variants": [nan, TWO[1]]}))
    assert endpoints.current("good") == current and len(endpoints.history("good")) == 1


def test_a_broken_stored_config_takes_down_no_other_endpoint_and_can_be_deleted(
    capsys, store, endpoints
):
    # As an earlier Skiff could leave it: a NaN weight, written without validation.
    broken = json.loads(store.read_bytes("endpoints/good/config.json"))
    broken["variants"][0]["weight"] = float("nan")
    store.write_bytes("endpoints/good/config.json", json.dumps(broken).encode())

    code, out, _ = run(capsys, store, "endpoints", "list")
    assert code == 0 and "other" in out and "v1=g:1@0.5" in out
    assert "unreadable config" in out and "variants.0.weight" in out
    for command in (
        ["describe", "good"],
        ["weights", "good", "v1=1"],
        ["rollback", "good"],
        ["start", "good"],
    ):
        code, _, err = run(capsys, store, "endpoints", *command)
        assert code == 1 and err.count("\n") == 1, (command, err)
        assert "endpoints/good/config.json is not a valid EndpointConfig" in err, (command, err)
    code, out, _ = run(capsys, store, "endpoints", "delete", "good")
    assert code == 0 and "endpoint good deleted" in out
    code, out, _ = run(capsys, store, "endpoints", "list")
    assert "good" not in out and "other" in out
