"""The typed FastAPI dependencies of the routes: the settings, the pricing service and auth.

``create_app`` puts one of each on ``app.state``; routes ask for them by type
(``pricing: PricingDep``) instead of closing over ``create_app``'s locals, so that a router is
a plain module and a test can build an app with its own estimator, settings or auth.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials

from rag_pricer.service.auth import BearerAuth, bearer
from rag_pricer.service.pricing import PricingService
from rag_pricer.settings import Settings

Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def get_settings(request: Request) -> Settings:
    """The service's settings (default strategy, tokens, limits)."""
    settings: Settings = request.app.state.settings
    return settings


def get_pricing(request: Request) -> PricingService:
    """The pricing service: the estimator behind a deadline and the knn fallback."""
    pricing: PricingService = request.app.state.pricing
    return pricing


def get_read_auth(request: Request) -> BearerAuth:
    auth: BearerAuth = request.app.state.read_auth
    return auth


def require_reader(request: Request, credentials: Credentials) -> None:
    """Pass a request that shows the read token (any request when the server has none)."""
    get_read_auth(request).check(credentials)


def require_writer(request: Request, credentials: Credentials) -> None:
    """Pass a request that shows the write token; refuse every write (403) when the operator
    set none. The read token never passes here, even when both are the same string's holders."""
    write_auth: BearerAuth = request.app.state.write_auth
    write_auth.check(credentials)


SettingsDep = Annotated[Settings, Depends(get_settings)]
PricingDep = Annotated[PricingService, Depends(get_pricing)]
ReadAuthDep = Annotated[BearerAuth, Depends(get_read_auth)]
