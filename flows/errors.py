"""Errors of the flow layer."""

from algorithms.errors import SchemaError, SkiffError


class DownloadError(SkiffError):
    """The source could not be fetched, or is not what was expected; names the URL."""


class ArchiveError(SchemaError):
    """The archive is corrupt or lacks the expected member; names the member."""


class PipelineError(SkiffError):
    """A pipeline step could not go on (for example, training did not complete).

    ``summary`` holds what the run had done by then, for the command line's summary file.
    """

    def __init__(self, message: str, summary: dict | None = None):
        super().__init__(message)
        self.summary = dict(summary or {})
