"""Errors of the base layer; every Skiff error derives from :class:`SkiffError`."""


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


class HyperparameterError(SkiffError, ValueError):
    """A hyperparameter is unknown, of the wrong type or out of range."""


class AlgorithmError(SkiffError):
    """An algorithm could not be found, loaded or run."""


class JobError(SkiffError):
    """A training job could not be created or run."""
