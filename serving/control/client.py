"""A small client for Skiff endpoints (and anything speaking SageMaker's container contract)."""

from __future__ import annotations

import ssl
from collections.abc import Iterable

import httpx
import numpy as np

from core.errors import ServingError
from serving.contract import TARGET_VARIANT


def rows_to_csv(rows: np.ndarray) -> bytes:
    """Encoded feature rows as CSV (an empty field for a missing value)."""
    lines = (",".join("" if np.isnan(v) else f"{v:.9g}" for v in row) for row in rows)
    return ("\n".join(lines) + "\n").encode()


class EndpointClient:
    """Invokes an endpoint over HTTP, keeping one connection open."""

    def __init__(
        self,
        url: str,
        timeout: float = 60.0,
        headers: dict[str, str] | None = None,
        verify: ssl.SSLContext | bool = True,
    ):
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, timeout=timeout, headers=headers, verify=verify)

    def __enter__(self) -> EndpointClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def invoke(
        self,
        body: bytes,
        content_type: str = "text/csv",
        accept: str | None = None,
        target_variant: str | None = None,
    ) -> httpx.Response:
        headers = {"Content-Type": content_type}
        if accept:
            headers["Accept"] = accept
        if target_variant:
            headers[TARGET_VARIANT] = target_variant
        return self.http.post("/invocations", content=body, headers=headers)

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Scores for encoded feature rows, sent as one CSV request.

        Raises:
            ServingError: the endpoint answered an error (its message included).
        """
        response = self.invoke(rows_to_csv(rows), accept="text/csv")
        if response.status_code != 200:
            raise ServingError(f"{self.url} answered {response.status_code}: {response.text}")
        return np.array([float(x) for x in response.text.split()], dtype=np.float64)

    def predict_batches(self, rows: np.ndarray, batch_size: int) -> Iterable[np.ndarray]:
        for start in range(0, len(rows), batch_size):
            yield self.predict(rows[start : start + batch_size])
