"""The store: every artifact Skiff writes lives under one root URL (a local folder or s3://...).

The layout rules make a local disk and S3 behave alike:

* objects are written whole, never appended to or renamed into place by callers;
* a set of objects becomes visible when its manifest is published, last;
* registry versions and job names are claimed by exclusive creation (O_EXCL on a local disk,
  ``If-None-Match: *`` on S3 through s3fs's ``"xb"`` mode).

Machine-local state (process ids, ports) never goes here.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from core.errors import AlreadyExistsError, NotFoundError, StoreError

DEFAULT_STORE = "./.skiff"
LAYOUT_FILE = "skiff-store.json"
LAYOUT_VERSION = 1
_SAFE_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=-]*$")


def _check_key(key: str) -> str:
    parts = key.split("/")
    for part in parts:
        if not _SAFE_PART.match(part):
            raise StoreError(f"invalid store key {key!r}: part {part!r} is not a plain name")
    return key


class Store:
    """A root URL and the few I/O primitives the layout rules allow.

    Args:
        root: a local path or any fsspec URL (``s3://bucket/prefix``).
        storage_options: passed to fsspec (credentials, ``endpoint_url``...).
    """

    def __init__(self, root: str = DEFAULT_STORE, storage_options: dict[str, Any] | None = None):
        self.storage_options = dict(storage_options or {})
        try:
            self.fs, path = fsspec.core.url_to_fs(root, **self.storage_options)
        except (ValueError, ImportError) as exc:  # an unknown protocol, a missing driver
            raise StoreError(f"cannot use {root!r} as a store: {exc}") from None
        self.is_local = isinstance(self.fs, LocalFileSystem)
        self._root = path.rstrip("/")
        self.root = self._root if self.is_local else self.fs.unstrip_protocol(self._root)

    def __repr__(self) -> str:
        return f"Store({self.root!r})"

    # -- addressing -------------------------------------------------------------------------
    def _path(self, key: str) -> str:
        return f"{self._root}/{_check_key(key)}"

    def url(self, key: str) -> str:
        """The full URL of ``key``: what a job spec or another machine is given."""
        path = self._path(key)
        return path if self.is_local else self.fs.unstrip_protocol(path)

    # -- reading ----------------------------------------------------------------------------
    def exists(self, key: str) -> bool:
        return self.fs.exists(self._path(key))

    def read_bytes(self, key: str) -> bytes:
        try:
            return self.fs.cat_file(self._path(key))
        except FileNotFoundError as exc:
            raise NotFoundError(f"{self.url(key)} does not exist") from exc
        except OSError as exc:  # a name too long, a folder where a file should be, no access
            raise StoreError(f"cannot read {self.url(key)}: {exc}") from exc

    def read_json(self, key: str) -> Any:
        return json.loads(self.read_bytes(key))

    def list(self, prefix: str) -> list[str]:
        """Names directly under ``prefix`` (files and folders), sorted; [] when there is none."""
        try:
            entries = self.fs.ls(self._path(prefix), detail=False)
        except FileNotFoundError:
            return []
        return sorted(e.rstrip("/").rsplit("/", 1)[-1] for e in entries)

    def open(self, key: str, mode: str = "rb"):
        """A file object, for readers that stream (Parquet, zip archives)."""
        if "r" not in mode:
            raise StoreError("Store.open is for reading; write objects whole with write_bytes")
        return self.fs.open(self._path(key), mode)

    # -- writing ----------------------------------------------------------------------------
    def write_bytes(self, key: str, data: bytes) -> str:
        """Write one object whole, replacing any earlier one. Readers never see half of it."""
        path = self._path(key)
        if self.is_local:
            with self._local_temp(path, data) as tmp:
                os.replace(tmp, path)
        else:
            self.fs.pipe_file(path, data)  # one PUT: S3 objects appear whole
        return self.url(key)

    def write_json(self, key: str, obj: Any) -> str:
        return self.write_bytes(key, _json_bytes(obj))

    def upload_file(self, local_path: str | Path, key: str) -> str:
        """Copy a local file to ``key`` whole (large artifacts: Parquet, models)."""
        path = self._path(key)
        if self.is_local:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=Path(path).parent, prefix=".tmp-")
            os.close(fd)
            try:
                self.fs.cp_file(str(local_path), tmp)
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        else:
            self.fs.put_file(str(local_path), path)
        return self.url(key)

    def create_exclusive(self, key: str, data: bytes) -> str:
        """Create ``key`` with ``data`` only if it does not exist yet.

        Raises:
            AlreadyExistsError: someone created it first (a claimed version, a taken job name).
        """
        path = self._path(key)
        if self.is_local:
            # Link a complete temp file into place: link(2) fails if the name exists, so the
            # object is claimed and complete in one step (open(O_EXCL) would expose a half file).
            with self._local_temp(path, data) as tmp:
                try:
                    os.link(tmp, path)
                except FileExistsError as exc:
                    raise AlreadyExistsError(f"{path} already exists") from exc
        else:
            try:
                with self.fs.open(path, "xb") as f:  # s3fs sends If-None-Match: *
                    f.write(data)
            except FileExistsError as exc:
                raise AlreadyExistsError(f"{self.url(key)} already exists") from exc
            except OSError as exc:  # S3 answers 412 Precondition Failed
                if "PreconditionFailed" in str(exc) or "412" in str(exc):
                    raise AlreadyExistsError(f"{self.url(key)} already exists") from exc
                raise
        return self.url(key)

    def create_json_exclusive(self, key: str, obj: Any) -> str:
        return self.create_exclusive(key, _json_bytes(obj))

    def delete(self, key: str) -> None:
        if self.exists(key):
            self.fs.rm(self._path(key), recursive=True)

    def _local_temp(self, path: str, data: bytes):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return _TempFile(Path(path).parent, data)

    # -- layout -----------------------------------------------------------------------------
    def require_layout(self) -> None:
        """Check that a store is here (its layout file), for commands that only read one.

        Raises:
            StoreError: there is none (a mistyped --store): naming the root.
        """
        if not self.exists(LAYOUT_FILE):
            raise StoreError(
                f"no Skiff store at {self.root} (it has no {LAYOUT_FILE}); a pipeline run with "
                f"--store {self.root} makes one"
            )

    def ensure_layout(self) -> None:
        """Create the layout-version file at the root, or check that it names our version.

        Raises:
            StoreError: another layout version, or a root that cannot be written (naming why).
        """
        try:
            self.create_json_exclusive(LAYOUT_FILE, {"layout_version": LAYOUT_VERSION})
        except AlreadyExistsError:
            found = self.read_json(LAYOUT_FILE).get("layout_version")
            if found != LAYOUT_VERSION:
                raise StoreError(
                    f"store {self.root} has layout version {found}; this Skiff reads version "
                    f"{LAYOUT_VERSION}"
                ) from None
        except StoreError:
            raise
        except OSError as exc:  # not a folder, no permission, an unreachable bucket
            raise StoreError(f"cannot write to the store at {self.root}: {exc}") from None


class _TempFile:
    """A complete temp file beside its destination, removed on exit if still there."""

    def __init__(self, folder: Path, data: bytes):
        self.folder, self.data = folder, data

    def __enter__(self) -> str:
        fd, self.name = tempfile.mkstemp(dir=self.folder, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(self.data)
        return self.name

    def __exit__(self, *exc: object) -> None:
        if os.path.exists(self.name):
            os.unlink(self.name)


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n").encode()
