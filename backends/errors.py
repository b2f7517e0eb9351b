"""Errors of the backends layer."""

from algorithms.errors import SkiffError


class BackendError(SkiffError):
    """A backend could not be found, configured or started."""
