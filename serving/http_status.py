"""Which HTTP status an endpoint answers for each error: one table, read along the error's
class hierarchy (the most specific entry wins). Anything not listed is the server's fault: 500.
"""

from __future__ import annotations

from core.errors import (
    BadRequest,
    BodyTimeout,
    EndpointNotFound,
    ModelLoadError,
    PayloadTooLarge,
    RequestTimeout,
    ServiceUnavailable,
    UnsupportedMediaType,
    VersionNotFound,
)

HTTP_STATUS: dict[type[Exception], int] = {
    BadRequest: 400,
    PayloadTooLarge: 413,
    BodyTimeout: 408,
    UnsupportedMediaType: 415,
    EndpointNotFound: 404,
    VersionNotFound: 404,
    ModelLoadError: 500,
    ServiceUnavailable: 503,
    RequestTimeout: 504,
}


def http_status(exc: BaseException) -> int:
    """The status for ``exc``: its class's entry, else its nearest listed base's, else 500."""
    for cls in type(exc).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500
