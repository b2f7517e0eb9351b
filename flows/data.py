"""Fetching the raw archive (any fsspec URL) into the store, and finding the CSV inside it."""

from __future__ import annotations

import hashlib
import io
import logging
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath

import fsspec

from core.errors import AlreadyExistsError, ArchiveError, DownloadError
from core.store import Store

logger = logging.getLogger(__name__)

# UCI's current download for data set 222 holds bank-additional.zip, which holds the CSV.
UCI_URL = "https://archive.ics.uci.edu/static/public/222/bank+marketing.zip"
# SageMaker's demo read the inner archive straight from its sample-data bucket.
SAGEMAKER_URL = (
    "https://sagemaker-sample-data-us-west-2.s3-us-west-2.amazonaws.com/"
    "autopilot/direct_marketing/bank-additional.zip"
)
CHUNK = 1 << 20


@dataclass(frozen=True)
class RawArchive:
    """The downloaded archive as kept in the store."""

    source: str
    sha256: str
    key: str
    size: int


def download(source: str, store: Store, sha256: str | None = None) -> RawArchive:
    """Fetch ``source`` (https://, s3://, a local path...) and keep it in the store.

    The archive is kept under ``raw/<sha256>/``, so a second download of the same bytes
    stores nothing new. Progress is logged about every five seconds for long downloads.

    Raises:
        DownloadError: the URL is unreachable or answers an error, or the checksum differs.
    """
    with tempfile.TemporaryFile() as tmp:
        digest, size = _fetch(source, tmp)
        if sha256 and digest != sha256.lower():
            raise DownloadError(
                f"{source}: SHA-256 mismatch: expected {sha256.lower()}, got {digest}"
            )
        name = PurePosixPath(source.split("?")[0]).name or "archive.zip"
        key = f"raw/{digest}/{_safe_name(name)}"
        tmp.seek(0)
        try:
            store.create_exclusive(key, tmp.read())
            logger.info("kept %s (%.1f MB) as %s", source, size / 1e6, store.url(key))
        except AlreadyExistsError:
            logger.info("%s is already in the store as %s", source, store.url(key))
    return RawArchive(source=source, sha256=digest, key=key, size=size)


def _fetch(source: str, out) -> tuple[str, int]:
    """Stream ``source`` into ``out``; return its SHA-256 and size."""
    hasher, size = hashlib.sha256(), 0
    try:
        with fsspec.open(source, "rb", block_size=CHUNK) as f:
            total = getattr(f, "size", None)
            last_report = time.monotonic()
            while chunk := f.read(CHUNK):
                hasher.update(chunk)
                out.write(chunk)
                size += len(chunk)
                if time.monotonic() - last_report > 5:
                    last_report = time.monotonic()
                    done = f" of {total / 1e6:.1f} MB ({100 * size / total:.0f}%)" if total else ""
                    logger.info("downloading %s: %.1f MB%s", source, size / 1e6, done)
    except FileNotFoundError as exc:
        # fsspec's HTTP layer turns every failed lookup into FileNotFoundError: a refused
        # connection or an unknown host is "unreachable", not "not found".
        cause = exc.__cause__ or exc.__context__
        status = getattr(cause, "status", None)
        if status == 404 or cause is None or isinstance(cause, FileNotFoundError):
            raise DownloadError(f"{source}: not found (HTTP 404 or no such file)") from None
        if status is not None:
            raise DownloadError(f"{source}: the server answered HTTP {status}") from None
        raise DownloadError(f"{source}: unreachable: {type(cause).__name__}: {cause}") from exc
    except Exception as exc:  # fsspec raises whatever its backend raises: name the URL
        raise DownloadError(f"{source}: download failed: {type(exc).__name__}: {exc}") from exc
    if size == 0:
        raise DownloadError(f"{source}: the download is empty")
    return hasher.hexdigest(), size


def _safe_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "._-" else "_" for c in name).lstrip("._-")
    return cleaned or "archive.zip"


def extract_member(archive: bytes, member: str, where: str, nested: str = ".zip") -> bytes:
    """The bytes of ``member`` (matched by file name), looking one level into nested zips.

    Accepts both layouts seen in the wild: a zip holding the CSV (SageMaker's copy), and a
    zip holding ``bank-additional.zip`` (UCI's current download).

    Raises:
        ArchiveError: not a zip, or no such member; names the archive and the member.
    """
    try:
        outer = zipfile.ZipFile(io.BytesIO(archive))
    except zipfile.BadZipFile:
        raise ArchiveError(f"{where} is not a valid zip archive") from None
    names = [n for n in outer.namelist() if not n.startswith("__MACOSX/")]
    try:
        for name in names:
            if PurePosixPath(name).name == member:
                return outer.read(name)
        for name in names:
            if name.endswith(nested):
                try:
                    return extract_member(outer.read(name), member, f"{where}!{name}", nested)
                except ArchiveError:
                    continue
    except (zipfile.BadZipFile, OSError, EOFError) as exc:  # a corrupt member (CRC, truncation)
        raise ArchiveError(f"{where}: corrupt archive member: {exc}") from None
    shown = ", ".join(n for n in names if not n.endswith("/"))[:300]
    raise ArchiveError(f"{where} has no member {member!r} (members: {shown})")
