"""Optional bearer-token authentication: one token for reading (``/v1`` pricing and lookups),
another for writing the knowledge base; a reader's token never opens a write."""

from __future__ import annotations

import secrets

from fastapi import HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

# auto_error=False: a missing header reaches ``BearerAuth`` (which decides whether it matters)
# instead of failing before we know whether auth is on; it also puts the scheme in /docs.
bearer = HTTPBearer(auto_error=False, description="The token set in RAG_PRICER_API_TOKEN.")


class BearerAuth:
    """Checks ``Authorization: Bearer <token>`` against a token, when one is set.

    With no token (``None`` or empty) every request passes, unless ``required``: then every
    request is refused (403), which is how writes stay closed until the operator sets their
    token. The comparison is constant-time so response timing says nothing about how much of a
    guess was right; the token itself is kept as bytes and never appears in errors, logs or
    ``repr``.
    """

    def __init__(self, token: SecretStr | None = None, required: bool = False, purpose: str = "this") -> None:
        value = token.get_secret_value() if token is not None else ""
        self._token = value.encode("utf-8") if value else None
        self.required = required
        self.purpose = purpose

    @property
    def enabled(self) -> bool:
        return self._token is not None

    def __repr__(self) -> str:
        return f"BearerAuth(enabled={self.enabled}, required={self.required})"

    def check(self, credentials: HTTPAuthorizationCredentials | None) -> None:
        """Return when ``credentials`` may pass; raise 401 (wrong or missing token) or 403 (a
        required token the operator has not set) otherwise."""
        if self._token is None:
            if self.required:
                raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"{self.purpose} is disabled on this server")
            return
        offered = credentials.credentials.encode("utf-8") if credentials is not None else b""
        if not secrets.compare_digest(offered, self._token):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="missing or invalid bearer token: send `Authorization: Bearer <token>`",
                headers={"WWW-Authenticate": "Bearer"},
            )
