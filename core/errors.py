"""Every error Skiff raises on purpose, in one tree. A message is written for the user: it
names what is wrong (the key, the column and row, the option, the valid choices).

The map::

    SkiffError                     base of them all: catch it to catch any of ours
    ├── StoreError                 a store operation failed
    │   ├── AlreadyExistsError     (also FileExistsError) a claim lost: name or number taken
    │   └── NotFoundError          (also FileNotFoundError) an object the caller needs is missing
    ├── SchemaError                (also ValueError) data does not match its schema
    │   └── ArchiveError           the archive is corrupt, or lacks the member it should hold
    ├── DownloadError              a source cannot be fetched, or is not what was expected
    ├── HyperparameterError        (also ValueError) unknown, mistyped or out of range
    ├── AlgorithmError             an algorithm or predictor cannot be found, loaded or run
    ├── JobError                   a training job cannot be created or run
    │   └── WorkerLost             a Dask worker holding part of the job left the cluster
    ├── BackendError               a backend cannot be found, configured or started
    ├── TuningError                a tuning job cannot be created (a bad range), or run
    ├── RegistryError              a model version cannot be registered or read
    │   └── VersionNotFound        no such version in the group
    ├── ServingError               an endpoint cannot be started, updated or answer
    │   ├── EndpointNotFound       no endpoint of that name (here, or in the store)
    │   ├── OptionsConflict        options contradict each other or a running server's (exit 2)
    │   ├── ModelLoadError         a variant's model cannot be loaded or fails its warm-up
    │   ├── UpdateRolledBack       a blue/green update was undone (an alarm, a failed load)
    │   ├── BadRequest             a request is malformed; the message says how
    │   │   ├── UnsupportedMediaType
    │   │   ├── PayloadTooLarge
    │   │   └── BodyTimeout        the body did not arrive in time (the client's fault)
    │   ├── ServiceUnavailable     no model loaded yet, or the server is saturated
    │   └── RequestTimeout         a request outlived the server's request timeout
    └── PipelineError              a pipeline step cannot go on (``summary``: what the run did)
        ├── TrainingFailed         the job ended without a model
        └── NotApproved            only approved versions are deployed

    Interrupted (a BaseException)  SIGTERM where nothing else turns it into an exception

Which HTTP status an endpoint answers for each is one table: ``serving/http_status.py``.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


class SkiffError(Exception):
    """Base class of every error Skiff raises on purpose (its message is meant for users)."""


class StoreError(SkiffError):
    """A store operation failed."""


class AlreadyExistsError(StoreError, FileExistsError):
    """An object that must be created exclusively already exists."""


class NotFoundError(StoreError, FileNotFoundError):
    """An object the caller relies on is not in the store."""


class SchemaError(SkiffError, ValueError):
    """Input data does not match the expected schema; the message names column, row and value."""


class ArchiveError(SchemaError):
    """The archive is corrupt or lacks the expected member; names the member."""


class DownloadError(SkiffError):
    """The source could not be fetched, or is not what was expected; names the URL."""


class HyperparameterError(SkiffError, ValueError):
    """A hyperparameter is unknown, of the wrong type or out of range."""


class AlgorithmError(SkiffError):
    """An algorithm or predictor could not be found, loaded or run."""


class JobError(SkiffError):
    """A training job could not be created or run."""


class WorkerLost(JobError):
    """A worker that held part of the job left the cluster (killed, crashed, disconnected)."""


class BackendError(SkiffError):
    """A backend could not be found, configured or started."""


class TransformError(SkiffError):
    """A transform job cannot run, or a row of its input cannot be read (named: object and
    line)."""


class TuningError(SkiffError):
    """A tuning job could not be created (a range outside its hyperparameter's bounds, an
    unknown name, an objective the trials do not report) or run."""


class RegistryError(SkiffError):
    """A model version could not be registered or read (a bad group name, a checksum that
    does not match, a missing artifact)."""


class VersionNotFound(RegistryError):
    """The model group has no such version; the message lists the versions it has."""


class ServingError(SkiffError):
    """An endpoint could not be started, updated, or answer a request."""


class EndpointNotFound(ServingError):
    """No endpoint of that name; the message lists the endpoints there are."""


class OptionsConflict(ServingError):
    """Options that cannot all hold: the server already runs with other options than those
    asked for, or a flag needs another one. Nothing is ignored silently (a command exits 2
    naming the differences)."""


class ModelLoadError(ServingError):
    """A model could not be loaded or failed its warm-up; the old config keeps serving."""


class UpdateRolledBack(ServingError):
    """The update was undone: an alarm tripped, or the new model could not be served."""


class BadRequest(ServingError):
    """The request is malformed; the message names what is wrong."""


class UnsupportedMediaType(BadRequest):
    """The request's content type is not one the endpoint reads."""


class PayloadTooLarge(BadRequest):
    """The request's body is over the server's limit."""


class BodyTimeout(BadRequest):
    """The request's body did not arrive within the server's body timeout."""


class ServiceUnavailable(ServingError):
    """No model is loaded yet, or the server is saturated: try again shortly."""


class RequestTimeout(ServingError):
    """The request took longer than the server's request timeout."""


class PipelineError(SkiffError):
    """A pipeline step could not go on (for example, training did not complete).

    ``summary`` holds what the run had done by then, for the command line's summary file.
    """

    def __init__(self, message: str, summary: dict[str, Any] | None = None):
        super().__init__(message)
        self.summary = dict(summary or {})


class TrainingFailed(PipelineError):
    """The job ended without a model; ``summary`` holds its name, status and metrics."""


class NotApproved(PipelineError):
    """Only approved versions are deployed; the message says how to approve one."""


class Interrupted(BaseException):
    """SIGTERM arrived where nothing else turns it into an exception (not a SkiffError: like
    KeyboardInterrupt, it is not caught by ``except Exception``)."""


def describe_invalid(exc: ValidationError) -> str:
    """A pydantic error as our messages say it: ``field: why; other.field: why``."""
    problems = []
    for error in exc.errors():
        where = ".".join(map(str, error["loc"]))
        cause = error.get("ctx", {}).get("error")
        # A validator's own ValueError already says what is wrong: no "Value error, " prefix.
        why = str(cause) if isinstance(cause, ValueError) else error["msg"]
        problems.append(f"{where}: {why}" if where else why)
    return "; ".join(problems)
