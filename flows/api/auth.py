"""SigV4 signatures, checked by recomputing them with botocore's own signer (no hand-written
crypto): the request as it came, its signed headers only, its time, and the secret of the
access key it names. Credentials come from a file of ``access-key-id = secret`` lines (or a
JSON object of the same).
"""

from __future__ import annotations

import hmac
import json
import re
from datetime import UTC, datetime
from pathlib import Path

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from flows.api.errors import ApiError, unauthorised

_AUTH = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request,\s*SignedHeaders=(?P<headers>[^,]+),\s*"
    r"Signature=(?P<signature>[0-9a-f]+)"
)
MAX_SKEW_SECONDS = 15 * 60  # AWS's own limit on a request's age


def read_credentials(path: str | Path) -> dict[str, str]:
    """Access key id → secret, from ``path``.

    Raises:
        ValueError: the file is unreadable or holds no credentials, saying which line.
    """
    text = Path(path).read_text()
    if text.lstrip().startswith("{"):
        found = json.loads(text)
    else:
        found = {}
        for number, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            key, sep, secret = line.partition("=")
            if not sep or not key.strip() or not secret.strip():
                raise ValueError(f"{path} line {number}: expected 'access-key-id = secret'")
            found[key.strip()] = secret.strip()
    if not found or not all(isinstance(v, str) for v in found.values()):
        raise ValueError(f"{path} holds no credentials ('access-key-id = secret' lines)")
    return found


def verify(
    credentials: dict[str, str],
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    now: datetime | None = None,
) -> str:
    """The access key id of a correctly signed request.

    Raises:
        ApiError: unsigned, an unknown key, an expired or a wrong signature (AWS's codes).
    """
    header = headers.get("authorization", "")
    found = _AUTH.match(header)
    if not found:
        raise unauthorised("MissingAuthenticationTokenException", "Missing Authentication Token")
    key = found["key"]
    secret = credentials.get(key)
    if secret is None:
        raise unauthorised(
            "UnrecognizedClientException", "The security token included in the request is invalid."
        )
    stamp = headers.get("x-amz-date", "")
    try:
        signed_at = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise unauthorised(
            "IncompleteSignatureException", "X-Amz-Date is missing or malformed"
        ) from None
    skew = abs(((now or datetime.now(UTC)) - signed_at).total_seconds())
    if skew > MAX_SKEW_SECONDS:
        raise unauthorised(
            "InvalidSignatureException", f"Signature expired: {stamp} is now earlier than allowed"
        )
    signed = found["headers"].split(";")
    request = AWSRequest(
        method=method, url=url, data=body, headers={h: headers.get(h, "") for h in signed}
    )
    request.context["timestamp"] = stamp
    signer = SigV4Auth(Credentials(key, secret), found["service"], found["region"])
    to_sign = signer.string_to_sign(request, signer.canonical_request(request))
    expected = signer.signature(to_sign, request)
    if found["date"] != stamp[:8] or not hmac.compare_digest(expected, found["signature"]):
        raise unauthorised(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method.",
        )
    return key


__all__ = ["ApiError", "read_credentials", "verify"]
