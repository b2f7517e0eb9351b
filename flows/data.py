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
from typing import Any

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
MAX_ARCHIVE_BYTES = 1 << 30  # the default of --max-archive-bytes
MAX_LINE_BYTES = 1 << 20  # a bank record is ~200 bytes: a longer line is not one


@dataclass(frozen=True)
class RawArchive:
    """The downloaded archive as kept in the store."""

    source: str
    sha256: str
    key: str
    size: int


def download(
    source: str, store: Store, sha256: str | None = None, max_bytes: int = MAX_ARCHIVE_BYTES
) -> RawArchive:
    """Fetch ``source`` (https://, s3://, a local path...) and keep it in the store.

    The archive is kept under ``raw/<sha256>/``, so a second download of the same bytes
    stores nothing new. Progress is logged about every five seconds for long downloads.

    Raises:
        DownloadError: the URL is unreachable or answers an error, the checksum differs, or
            the download is over ``max_bytes``.
    """
    with tempfile.TemporaryFile() as tmp:
        digest, size = _fetch(source, tmp, max_bytes)
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


def _fetch(source: str, out: Any, max_bytes: int) -> tuple[str, int]:
    """Stream ``source`` into ``out``, at most ``max_bytes`` of it; return its SHA-256 and size."""
    hasher, size = hashlib.sha256(), 0
    try:
        with fsspec.open(source, "rb", block_size=CHUNK) as f:
            total = getattr(f, "size", None)
            last_report = time.monotonic()
            while chunk := f.read(CHUNK):
                hasher.update(chunk)
                out.write(chunk)
                size += len(chunk)
                if size > max_bytes:
                    raise DownloadError(
                        f"{source}: over the {max_bytes:,}-byte limit (--max-archive-bytes)"
                    )
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


def extract_member(
    archive: bytes,
    member: str,
    where: str,
    max_bytes: int = MAX_ARCHIVE_BYTES,
    nested: str = ".zip",
    max_line: int = MAX_LINE_BYTES,
) -> bytes:
    """The bytes of ``member`` (matched by file name), looking one level into nested zips.

    Accepts both layouts seen in the wild: a zip holding the CSV (SageMaker's copy), and a
    zip holding ``bank-additional.zip`` (UCI's current download). A member is read in chunks
    and refused as soon as it is over ``max_bytes`` (as it declares, or as it is read), and a
    CSV line over ``max_line`` bytes stops the read: a zip bomb or a file that is not records
    costs neither the memory nor the time to read it whole.

    Raises:
        ArchiveError: not a zip, no such member, or a member too large; names them.
    """
    outer = _open(archive, where)
    found = _find(outer, member, where, max_bytes, max_line)
    for info in () if found is not None else _members(outer):
        if info.filename.endswith(nested):  # one level in, no deeper
            inside = f"{where}!{info.filename}"
            try:
                inner = zipfile.ZipFile(io.BytesIO(_read(outer, info, inside, max_bytes, None)))
            except zipfile.BadZipFile:  # named .zip, but not one: not where the member is
                continue
            if (found := _find(inner, member, inside, max_bytes, max_line)) is not None:
                break
    if found is None:
        shown = ", ".join(i.filename for i in _members(outer) if not i.is_dir())[:300]
        raise ArchiveError(f"{where} has no member {member!r} (members: {shown})")
    return found


def _open(archive: bytes, where: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(archive))
    except zipfile.BadZipFile:
        raise ArchiveError(f"{where} is not a valid zip archive") from None


def _members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    return [i for i in archive.infolist() if not i.filename.startswith("__MACOSX/")]


def _find(
    archive: zipfile.ZipFile, member: str, where: str, max_bytes: int, max_line: int
) -> bytes | None:
    """``member``'s bytes if ``archive`` holds it (matched by file name), else None."""
    for info in _members(archive):
        if PurePosixPath(info.filename).name == member:
            return _read(archive, info, f"{where}!{info.filename}", max_bytes, max_line)
    return None


def _read(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    where: str,
    max_bytes: int,
    max_line: int | None,
) -> bytes:
    """One member's bytes, in chunks, within ``max_bytes`` and lines of ``max_line``."""
    if info.file_size > max_bytes:
        raise ArchiveError(
            f"{where} is {info.file_size:,} bytes uncompressed, over the {max_bytes:,}-byte "
            "limit (--max-archive-bytes)"
        )
    # Chunks no longer than a line may be, so a line too long always spans chunks: counting
    # the bytes since the last newline finds it.
    step = CHUNK if max_line is None else min(CHUNK, max_line)
    chunks, size, line = [], 0, 0
    try:
        f = archive.open(info)
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError) as exc:  # encrypted, unknown
        raise ArchiveError(f"{where}: cannot read this archive member: {exc}") from None
    with f:
        while chunk := _chunk(f, step, where):
            size += len(chunk)
            if size > max_bytes:
                raise ArchiveError(
                    f"{where} expands past the {max_bytes:,}-byte limit (--max-archive-bytes)"
                )
            if max_line is not None:
                first = chunk.find(b"\n")
                run = line + (len(chunk) if first < 0 else first)
                if run > max_line:
                    raise ArchiveError(
                        f"{where} has a line over {max_line:,} bytes: not a CSV of records"
                    )
                line = run if first < 0 else len(chunk) - chunk.rfind(b"\n") - 1
            chunks.append(chunk)
    return b"".join(chunks)


def _chunk(member: Any, size: int, where: str) -> bytes:
    try:
        return member.read(size)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:  # a bad CRC, a truncation
        raise ArchiveError(f"{where}: corrupt archive member: {exc}") from None
