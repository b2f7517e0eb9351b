"""How an endpoint server runs: processes, security and limits."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, field_validator, model_validator

from core.errors import ServingError


class ServerOptions(BaseModel):
    """Options of an endpoint's server (names are unique among the pipeline's options)."""

    server_workers: int = Field(1, ge=1, le=64, description="worker processes of the server")
    auth_token_file: str | None = Field(
        None,
        description="file holding a bearer token that requests must carry (/ping and "
        "health stay open)",
    )
    certfile: str | None = Field(None, description="TLS certificate (PEM): serve HTTPS")
    keyfile: str | None = Field(None, description="TLS private key (PEM) of certfile")
    max_body_mb: float = Field(6, gt=0, le=1024, description="largest request body (413 above)")
    request_timeout: float = Field(60, gt=0, description="seconds before a request gets a 504")
    max_concurrency: int = Field(
        128,
        ge=1,
        le=100_000,
        description="requests in flight per worker before new ones get a 503 (never a queue)",
    )
    max_header_kb: float = Field(
        32, gt=0, le=1024, description="largest request line and headers, in KiB (431 above)"
    )
    header_timeout: float = Field(
        5, gt=0, description="seconds a request's line and headers may take to arrive (408)"
    )
    body_timeout: float = Field(
        30, gt=0, description="seconds a request's body may take to arrive (408)"
    )
    idle_timeout: float = Field(
        5, gt=0, description="seconds a new connection may stay silent before it is closed"
    )
    alarm_max_rows: int = Field(
        1000,
        ge=1,
        description="largest request (in rows) whose latency the update alarms watch: a big "
        "batch is slow by nature, not a sign of a bad model",
    )

    @field_validator("auth_token_file", "certfile", "keyfile")
    @classmethod
    def _absolute(cls, path: str | None) -> str | None:
        # Stored as given, a relative path would break every command run from another folder.
        return None if path is None else str(Path(path).expanduser().absolute())

    def differences(self, running: ServerOptions) -> dict[str, tuple[object, object]]:
        """The options explicitly set here that ``running`` has otherwise: name → (asked, has)."""
        return {
            name: (getattr(self, name), getattr(running, name))
            for name in sorted(self.model_fields_set)
            if getattr(self, name) != getattr(running, name)
        }

    @model_validator(mode="after")
    def _tls_pair(self) -> ServerOptions:
        if (self.certfile is None) != (self.keyfile is None):
            raise ValueError("HTTPS needs both certfile and keyfile")
        return self

    @property
    def max_body(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)

    @property
    def max_header(self) -> int:
        return int(self.max_header_kb * 1024)

    def token(self) -> str | None:
        """The bearer token, read from its file.

        Raises:
            ServingError: the file cannot be read or is empty.
        """
        if self.auth_token_file is None:
            return None
        try:
            token = Path(self.auth_token_file).read_text().strip()
        except OSError as exc:
            raise ServingError(f"cannot read the auth token file: {exc}") from None
        if not token:
            raise ServingError(f"the auth token file {self.auth_token_file} is empty")
        return token
