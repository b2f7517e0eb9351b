"""An output object that appears whole or not at all.

On a local disk it is written to a hidden temporary file beside its name and renamed into
place when complete. On an object store (S3) an upload is already that: a multipart upload's
object exists only once the upload is completed, so it is written to its name directly, and
an upload abandoned (a failure, a stop) is aborted, leaving nothing.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import fsspec

OBJECT_STORES = {"s3", "s3a", "gs", "gcs", "abfs", "az"}


class OutputObject:
    """Write an output object in parts (``write``), then ``publish`` it, or ``discard`` it."""

    def __init__(self, url: str, storage_options: dict[str, Any]):
        self.url = url
        self.fs, self.path = fsspec.core.url_to_fs(url, **storage_options)
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        self.direct = bool(OBJECT_STORES & set(protocols))
        if self.direct:
            self.writing = self.path
        else:
            folder, _, name = self.path.rpartition("/")
            self.fs.makedirs(folder or ".", exist_ok=True)
            self.writing = f"{folder}/.{name}.{uuid.uuid4().hex[:8]}.partial"
        self.file = self.fs.open(self.writing, "wb")
        self.size = 0

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.size += len(data)

    def publish(self) -> str:
        """Complete the object under its name; returns its URL."""
        self.file.close()
        if not self.direct:
            os.replace(self.writing, self.path) if _local(self.fs) else self.fs.mv(
                self.writing, self.path
            )
        return self.url

    def discard(self) -> None:
        """Leave nothing: abort the upload, remove the temporary file. Safe to call twice."""
        try:
            if self.direct and hasattr(self.file, "discard") and not self.file.closed:
                self.file.discard()  # s3fs: aborts the multipart upload, nothing appears
            elif not self.file.closed:
                self.file.close()
        finally:
            if not self.direct and self.fs.exists(self.writing):
                self.fs.rm(self.writing)


def _local(fs: Any) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocols or "local" in protocols
