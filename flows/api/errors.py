"""SageMaker's errors, as botocore reads them: ``__type`` and ``message``, HTTP 400 for a
client's mistake. SDKs match on the code and on the wording, so both are SageMaker's own."""

from __future__ import annotations


class ApiError(Exception):
    """An error answered to the client: ``code`` is SageMaker's (``ValidationException``)."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status

    def body(self) -> dict[str, str]:
        return {"__type": self.code, "message": self.message}


def invalid(message: str) -> ApiError:
    return ApiError("ValidationException", message)


def not_found() -> ApiError:
    """What real SageMaker answers for a missing job (not ResourceNotFound, whatever
    botocore's model says): the waiters and SDKs expect exactly this."""
    return ApiError("ValidationException", "Requested resource not found.")


def in_use(message: str) -> ApiError:
    return ApiError("ResourceInUse", message)


def limit_exceeded(message: str) -> ApiError:
    return ApiError("ResourceLimitExceeded", message)


def unauthorised(code: str, message: str) -> ApiError:
    """AWS's signature errors: ``UnrecognizedClientException``,
    ``InvalidSignatureException``, ``MissingAuthenticationTokenException``."""
    return ApiError(code, message, 403 if code != "UnrecognizedClientException" else 400)


def internal(message: str) -> ApiError:
    return ApiError("InternalFailure", message, 500)
