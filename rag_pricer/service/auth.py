"""Optional bearer-token authentication for the ``/v1`` endpoints."""

from __future__ import annotations

import secrets

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

# auto_error=False: a missing header reaches ``BearerAuth`` (which decides whether it matters)
# instead of failing before we know whether auth is on; it also puts the scheme in /docs.
_bearer = HTTPBearer(auto_error=False, description="The token set in RAG_PRICER_API_TOKEN.")


class BearerAuth:
    """A FastAPI dependency requiring ``Authorization: Bearer <token>`` when a token is set.

    With no token (``None`` or empty) every request passes. The comparison is constant-time so
    response timing says nothing about how much of a guess was right; the token itself is kept
    as bytes and never appears in errors, logs or ``repr``.
    """

    def __init__(self, token: SecretStr | None = None) -> None:
        value = token.get_secret_value() if token is not None else ""
        self._token = value.encode("utf-8") if value else None

    @property
    def enabled(self) -> bool:
        return self._token is not None

    def __repr__(self) -> str:
        return f"BearerAuth(enabled={self.enabled})"

    def __call__(self, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
        if self._token is None:
            return
        offered = credentials.credentials.encode("utf-8") if credentials is not None else b""
        if not secrets.compare_digest(offered, self._token):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="missing or invalid bearer token: send `Authorization: Bearer <token>`",
                headers={"WWW-Authenticate": "Bearer"},
            )
