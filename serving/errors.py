"""Errors of the serving layer; each carries the HTTP status a server would answer with."""

from algorithms.errors import SkiffError


class ServingError(SkiffError):
    status_code = 500


class RegistryError(ServingError):
    status_code = 400


class VersionNotFound(RegistryError):
    status_code = 404


class EndpointNotFound(ServingError):
    status_code = 404


class BadRequest(ServingError):
    """The request is malformed; the message names what is wrong."""

    status_code = 400


class UnsupportedMediaType(BadRequest):
    status_code = 415


class PayloadTooLarge(BadRequest):
    status_code = 413


class ModelLoadError(ServingError):
    """A model could not be loaded or failed its warm-up; the old config keeps serving."""

    status_code = 500


class ServiceUnavailable(ServingError):
    """No model is loaded yet, or the server is saturated: try again shortly."""

    status_code = 503


class RequestTimeout(ServingError):
    """The request took longer than the server's request timeout."""

    status_code = 504
