"""Request ids: accepted from ``X-Request-ID`` (when it is a short token of safe characters) or
made here, returned in the response's ``X-Request-ID`` and put in every log line of the request.

The id lives in a context variable (``current``) that the observing middleware
(``service.metrics.ObservedRequests``) sets for the time of one request; ``RequestIdFilter``,
attached to the log handlers, copies it into each record as ``record.request_id`` ("-" outside a
request). Worker threads see it too: the pricing pools are entered with ``run_in_executor``
from the request's task, and the service copies the context into them.
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar
from dataclasses import dataclass

HEADER = "X-Request-ID"
#: what a caller's id may be: letters, digits and ``._:-``, at most 128 characters (no spaces,
#: quotes or line breaks that would forge log lines or headers)
VALID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


@dataclass
class RequestContext:
    """What the log and the metrics of one request need: its id, and what its route learnt
    (the strategy that priced it, whether a fallback answered)."""

    id: str
    strategy: str | None = None
    fallback: bool | None = None


current: ContextVar[RequestContext | None] = ContextVar("rag_pricer_request", default=None)


def request_id(offered: str | None) -> str:
    """``offered`` when it is a valid id, else a new one (a bad header is replaced, not refused:
    tracing must never cost a caller their answer)."""
    if offered is not None and VALID.fullmatch(offered):
        return offered
    return uuid.uuid4().hex


def note(strategy: str | None = None, fallback: bool | None = None) -> None:
    """Tell the current request's log line and metrics which strategy priced it, and whether a
    fallback answered (no-op outside a request)."""
    context = current.get()
    if context is None:
        return
    if strategy is not None:
        context.strategy = strategy if context.strategy in (None, strategy) else "mixed"
    if fallback is not None:
        context.fallback = bool(context.fallback) or fallback


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` (and, when the route noted them, ``strategy``) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = current.get()
        if not hasattr(record, "request_id"):
            record.request_id = context.id if context is not None else "-"
        return True
