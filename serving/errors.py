"""Errors of the serving layer; each carries the HTTP status a server would answer with."""

from algorithms.errors import SkiffError


class ServingError(SkiffError):
    status_code = 500


class RegistryError(ServingError):
    status_code = 400


class VersionNotFound(RegistryError):
    status_code = 404
