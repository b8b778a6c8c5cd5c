"""Sort an exception raised by a chat model into an ``LLMError`` reason.

The OpenAI client raises typed errors (LangChain's ``ChatOpenAI`` lets them through); the local
backends raise ``TimeoutError``, ``ContextWindowExceeded`` and ``RuntimeCrashed``. Anything unknown is ``"error"``
and is not retried: retrying a bug only hides it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import httpx2
import openai


class ContextWindowExceeded(ValueError):
    """The prompt and the answer do not fit in a local model's context window."""


class RuntimeCrashed(RuntimeError):
    """The child process that ran a local model died (a native crash, a kill, out of memory)."""


@dataclass(frozen=True)
class Failure:
    reason: str
    #: seconds the server asked us to wait (``Retry-After``), when it said so
    retry_after_s: float | None = None
    #: retries the openai client made itself before it raised (its ``max_retries``)
    sdk_retries: int = 0


def _retry_after(response: httpx2.Response | None) -> float | None:
    if response is None:
        return None
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:  # an HTTP date: rare enough to fall back on our own backoff
        return None


def _sdk_retries(exc: BaseException) -> int:
    """How many times the openai client retried before raising ``exc``: it numbers each request
    it sends in the ``x-stainless-retry-count`` header, and its errors keep the last request."""
    request = getattr(exc, "request", None) if isinstance(exc, openai.APIError) else None
    try:
        return int(request.headers.get("x-stainless-retry-count", 0)) if request is not None else 0
    except ValueError:
        return 0


def classify(exc: BaseException) -> Failure:
    """The ``LLMError`` reason of ``exc`` (see ``rag_pricer.llms.reply.REASONS``)."""
    return replace(_classify(exc), sdk_retries=_sdk_retries(exc))


def _classify(exc: BaseException) -> Failure:
    # Order matters: APITimeoutError is an APIConnectionError, TimeoutError an OSError.
    # openai>=3 sends through httpx2 (not httpx): its raw transport errors are httpx2's.
    if isinstance(exc, (openai.APITimeoutError, httpx2.TimeoutException, TimeoutError)):
        return Failure("timeout")
    if isinstance(exc, (openai.APIConnectionError, httpx2.TransportError, ConnectionError)):
        return Failure("connection")
    if isinstance(exc, openai.RateLimitError):
        return Failure("rate_limit", _retry_after(exc.response))
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status >= 500:
            return Failure("server_error", _retry_after(exc.response))
        if status in (401, 403):
            return Failure("auth")
        if status == 404:
            return Failure("not_found")
        if status == 429:
            return Failure("rate_limit", _retry_after(exc.response))
        if status in (400, 409, 413, 422):
            return Failure("bad_request")
        return Failure("error")
    if isinstance(exc, ContextWindowExceeded):
        return Failure("bad_request")
    if isinstance(exc, RuntimeCrashed):
        return Failure("crashed")
    return Failure("error")
