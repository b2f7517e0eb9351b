"""Downloading the archive and finding the CSV in it, over the real download path."""

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from core.errors import ArchiveError, DownloadError
from core.store import Store
from flows.data import download, extract_member
from tests.helpers import free_port

SHA = "e689f38cc6bd689f64f031e7a1fbe0849aabb7ad57544fc75068e30129bbd514"
MEMBER = "bank-additional-full.csv"


def test_download_over_http_keeps_archive_in_store(store: Store, http_root):
    _, base = http_root
    raw = download(f"{base}/bank-additional.zip", store, sha256=SHA)
    assert raw.sha256 == SHA
    assert raw.key == f"raw/{SHA}/bank-additional.zip"
    assert hashlib.sha256(store.read_bytes(raw.key)).hexdigest() == SHA
    again = download(f"{base}/bank-additional.zip", store)  # second time: nothing new written
    assert again == raw
    assert store.list(f"raw/{SHA}") == ["bank-additional.zip"]


def test_download_from_local_path(store: Store, archive: Path):
    assert download(str(archive), store).sha256 == SHA


def test_checksum_mismatch_names_url_and_both_digests(store: Store, archive: Path):
    with pytest.raises(
        DownloadError, match=rf"{archive}: SHA-256 mismatch: expected 0+, got {SHA}"
    ):
        download(str(archive), store, sha256="0" * 64)
    assert store.list("raw") == []  # nothing kept


def test_http_404_names_url(store: Store, http_root):
    _, base = http_root
    with pytest.raises(DownloadError, match=rf"{base}/missing.zip: not found"):
        download(f"{base}/missing.zip", store)


def test_unreachable_url_names_url(store: Store):
    url = f"http://127.0.0.1:{free_port()}/bank.zip"  # nothing listens there
    with pytest.raises(DownloadError, match=rf"{url}: unreachable: .*Connect"):
        download(url, store)


def test_missing_local_file_names_path(store: Store, tmp_path: Path):
    with pytest.raises(DownloadError, match="nothing.zip: not found"):
        download(str(tmp_path / "nothing.zip"), store)


def test_extract_from_zip_holding_the_csv(archive: Path):
    csv = extract_member(archive.read_bytes(), MEMBER, "a.zip")
    assert csv.startswith(b'"age";"job"')


def test_extract_from_zip_holding_the_zip(archive: Path):
    """UCI's current download nests bank-additional.zip inside bank+marketing.zip."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as outer:
        outer.writestr("bank.zip", b"not the one")
        outer.writestr("bank-additional.zip", archive.read_bytes())
    csv = extract_member(buffer.getvalue(), MEMBER, "bank+marketing.zip")
    assert csv.startswith(b'"age";"job"')


def test_corrupt_zip_is_named(archive: Path):
    data = archive.read_bytes()[:-5000]  # truncated: the central directory is gone
    with pytest.raises(ArchiveError, match="truncated.zip is not a valid zip archive"):
        extract_member(data, MEMBER, "truncated.zip")


def test_missing_member_is_named():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("bank-additional/other.csv", "a;b\n")
    with pytest.raises(ArchiveError, match=rf"x.zip has no member '{MEMBER}' .*other.csv"):
        extract_member(buffer.getvalue(), MEMBER, "x.zip")


def test_http_error_status_is_named(store: Store):
    """A server error (not a 404) is reported with its status."""
    import http.server
    import threading

    class Broken(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_error(503, "down for maintenance")

        do_HEAD = do_GET

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Broken)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/bank.zip"
    try:
        with pytest.raises(DownloadError, match=rf"{url}: (the server answered HTTP 503|.*503)"):
            download(url, store)
    finally:
        server.shutdown()
        server.server_close()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buffer.getvalue()


def test_a_zip_bomb_is_refused_before_it_is_read(tmp_path):
    """Hardening 2, item 11: a member declaring more than the limit is refused unread, and one
    inside a nested zip too; a line too long for a record stops the read at once."""
    bomb = _zip({MEMBER: b"0" * 20_000_000})  # 20 MB of one byte: about 20 kB zipped
    assert len(bomb) < 100_000
    with pytest.raises(
        ArchiveError,
        match=r"a.zip!bank-additional-full.csv is 20,000,000 bytes "
        r"uncompressed, over the 1,000,000-byte limit \(--max-archive-bytes\)",
    ):
        extract_member(bomb, MEMBER, "a.zip", max_bytes=1_000_000)
    nested = _zip({"bank-additional.zip": bomb})
    with pytest.raises(ArchiveError, match=r"bank-additional.zip is 2\d,\d{3} bytes|over the"):
        extract_member(nested, MEMBER, "n.zip", max_bytes=10_000)
    with pytest.raises(
        ArchiveError, match=r"has a line over 1,048,576 bytes: not a CSV of records"
    ):
        extract_member(bomb, MEMBER, "a.zip")  # within the size limit: one 20 MB "line"


def test_nested_zips_are_looked_into_one_level_only():
    deep = _zip({MEMBER: b"a;b\n1;2\n"})
    for _ in range(1100):  # item 15: a 1100-level nested zip is one clear error
        deep = _zip({"inner.zip": deep})
    with pytest.raises(ArchiveError, match="has no member 'bank-additional-full.csv'"):
        extract_member(deep, MEMBER, "deep.zip")
    assert extract_member(_zip({"one.zip": _zip({MEMBER: b"a;b\n"})}), MEMBER, "x") == b"a;b\n"


def test_a_download_over_the_limit_is_refused(http_root, store):
    url = f"{http_root[1]}/bank-additional.zip"
    with pytest.raises(DownloadError, match=r"over the 1,000-byte limit \(--max-archive-bytes\)"):
        download(url, store, max_bytes=1000)
    assert store.list("raw") == []
