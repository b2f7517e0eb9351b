import json
import threading

import pytest

from core.errors import AlreadyExistsError, NotFoundError, StoreError
from core.store import LAYOUT_FILE, Store
from tests.helpers import in_threads


def test_write_read_list(store: Store):
    store.write_json("a/b/c.json", {"x": 1})
    store.write_bytes("a/b/d.bin", b"123")
    assert store.read_json("a/b/c.json") == {"x": 1}
    assert store.list("a/b") == ["c.json", "d.bin"]
    assert store.list("nothing/here") == []
    assert store.url("a/b/c.json").endswith("/store/a/b/c.json")


def test_write_replaces_whole_and_leaves_no_temp_files(store: Store):
    store.write_bytes("k/obj", b"old")
    store.write_bytes("k/obj", b"new")
    assert store.read_bytes("k/obj") == b"new"
    assert store.list("k") == ["obj"]


def test_missing_object_names_it(store: Store):
    with pytest.raises(NotFoundError, match="nope.json does not exist"):
        store.read_json("nope.json")


def test_create_exclusive_refuses_second_create(store: Store):
    store.create_exclusive("claims/1", b"first")
    with pytest.raises(AlreadyExistsError, match="already exists"):
        store.create_exclusive("claims/1", b"second")
    assert store.read_bytes("claims/1") == b"first"
    assert store.list("claims") == ["1"]


def test_concurrent_exclusive_creates_have_one_winner(store: Store):
    winners, barrier = [], threading.Barrier(8)

    def claim(i: int) -> None:
        barrier.wait()
        try:
            store.create_exclusive("claims/x", str(i).encode())
            winners.append(i)
        except AlreadyExistsError:
            pass

    in_threads(claim, 8)
    assert len(winners) == 1
    assert store.read_bytes("claims/x") == str(winners[0]).encode()


@pytest.mark.parametrize("key", ["../escape", "a//b", "/abs", "a/./b", ".hidden"])
def test_keys_cannot_escape_the_root(store: Store, key: str):
    with pytest.raises(StoreError, match="invalid store key"):
        store.write_bytes(key, b"x")


def test_layout_file_written_once_and_checked(tmp_path):
    store = Store(str(tmp_path / "s"))
    store.ensure_layout()
    store.ensure_layout()  # idempotent
    assert store.read_json(LAYOUT_FILE) == {"layout_version": 1}
    (tmp_path / "s" / LAYOUT_FILE).write_text(json.dumps({"layout_version": 99}))
    with pytest.raises(StoreError, match="layout version 99"):
        store.ensure_layout()
