"""What a client or a log line may show of the operator's settings: no credential, in any form.

``Redactor.credentials`` (every log line, every error a client sees) replaces the configured
secrets (tokens, API keys, the password of an endpoint URL) and their Base64 forms (HTTP Basic
auth sends ``base64(user:password)``), the user part of any ``scheme://user:password@host``, and
the value of any ``Basic``/``Bearer`` credentials by ``***``. ``Redactor.public`` (what
``/v1/strategies``, a 409 and ``check=true`` show) also names local files by their name only:
``/home/op/models/smol.gguf`` -> ``smol.gguf``. ``llm_name`` is an LLM spec as clients see it:
the backend's name (``openai-compatible``), never its model, file or endpoint.
``RedactingFilter`` applies ``credentials`` to every record a logging handler emits.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rag_pricer.settings import Settings

HIDDEN = "***"
#: ``scheme://user:password@`` (or ``scheme://token@``) in a URL
URL_CREDENTIALS = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^\s/@'\"<>]+)@")
#: the credentials of an ``Authorization`` header, or of the same words anywhere in a text
AUTH_VALUE = re.compile(r"\b(?P<scheme>Basic|Bearer|Token|Digest)(?P<gap>\s+|%20)[A-Za-z0-9._~+/=-]{4,}", re.IGNORECASE)
#: a local path of at least two parts (``/a/b``, ``~/a``, ``./a/b``, ``C:\\a\\b``), not the path of a URL
LOCAL_PATH = re.compile(
    r"(?<![\w/.~\\-])(?:~|\.{1,2})?(?:/[^\s/'\"<>@,;()]+){2,}|(?<![\w/])[A-Za-z]:\\(?:[^\s\\'\"<>]+\\)*[^\s\\'\"<>]+"
    r"|(?<![\w/.~-])~/[^\s'\"<>@,;()]+"
)
#: the shortest secret worth replacing: shorter strings would hide ordinary words
MIN_SECRET_CHARS = 4


def llm_name(spec: str | None) -> str | None:
    """The backend of an LLM spec (``local:/models/x.gguf`` -> ``local``), as ``/v1/llms`` shows it."""
    if spec is None:
        return None
    return spec.partition(":")[0].strip() or None


def url_secrets(text: str) -> list[str]:
    """The credentials in the URLs of ``text``: each ``user:password``, its password, and the
    Base64 of ``user:password`` (what HTTP Basic auth sends)."""
    found: list[str] = []
    for match in URL_CREDENTIALS.finditer(text):
        userinfo = match.group("userinfo")
        found.append(userinfo)
        user, _, password = userinfo.partition(":")
        if password:
            found.append(password)
        found.append(base64.b64encode(userinfo.encode()).decode())
    return found


class Redactor:
    """Hides ``secrets`` (and their Base64), URL credentials and auth header values; for clients,
    ``paths`` and any other local path too (by their names)."""

    def __init__(self, secrets: Iterable[str] = (), paths: Iterable[object] = ()) -> None:
        variants: set[str] = set()
        for secret in secrets:
            if not secret or len(secret) < MIN_SECRET_CHARS:
                continue
            variants.add(secret)
            variants.update(_base64_forms(secret))
            variants.update(url_secrets(secret))
        #: the longest first, so that a secret inside another is not half replaced
        self.secrets: list[str] = sorted((v for v in variants if len(v) >= MIN_SECRET_CHARS), key=len, reverse=True)
        self.paths: list[str] = sorted({str(p) for p in paths if p is not None and str(p) not in ("", ".")}, key=len)
        self.paths.reverse()

    @classmethod
    def from_settings(cls, *settings: Settings, extra: Sequence[str] = ()) -> Redactor:
        """The redactor of a process run with ``settings``: its tokens and keys, the credentials
        of its LLM specs and Chroma host, and its configured paths."""
        secrets: list[str] = list(extra)
        paths: list[object] = []
        for source in settings:
            for secret in (source.api_token, source.write_token, source.openai_api_key):
                if secret is not None:
                    secrets.append(secret.get_secret_value())
            for text in (source.llm, *source.service_llms, source.chroma_host or ""):
                secrets.extend(url_secrets(text))
            paths.extend([source.items_path, source.store_path, source.models_dir, source.llm_cache_dir])
        return cls(secrets, paths)

    def credentials(self, text: str) -> str:
        """``text`` without any credential: what a log line or an error message may hold."""
        for secret in self.secrets:
            text = text.replace(secret, HIDDEN)
        text = URL_CREDENTIALS.sub(lambda m: f"{m.group('scheme')}{HIDDEN}@", text)
        return AUTH_VALUE.sub(lambda m: f"{m.group('scheme')}{m.group('gap')}{HIDDEN}", text)

    def public(self, text: str | None) -> str | None:
        """``text`` as a client may see it: no credential, local files by their names only."""
        if text is None:
            return None
        text = self.credentials(text)
        for path in self.paths:
            text = text.replace(path, _name(path))
        return LOCAL_PATH.sub(lambda m: _name(m.group(0)), text)


class RedactingFilter(logging.Filter):
    """A logging filter that rewrites each record's message (and traceback) through
    ``Redactor.credentials``; it never drops a record."""

    def __init__(self, redactor: Redactor | None = None, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.redactor = redactor or Redactor(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler's own error handling
            return True
        redacted = self.redactor.credentials(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor.credentials(record.exc_text)
        return True


#: the loggers whose handlers a service process writes through
SERVICE_LOGGERS = ("", "rag_pricer", "uvicorn", "uvicorn.error", "uvicorn.access")


def install_log_redaction(redactor: Redactor, loggers: Sequence[str] = SERVICE_LOGGERS) -> RedactingFilter:
    """Put one ``RedactingFilter`` of ``redactor`` on every handler of ``loggers`` (replacing an
    earlier one), so that no line they write holds a credential."""
    redacting = RedactingFilter(redactor)
    for name in loggers:
        for handler in logging.getLogger(name).handlers:
            for old in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
                handler.removeFilter(old)
            handler.addFilter(redacting)
    return redacting


def _base64_forms(secret: str) -> list[str]:
    encoded = base64.b64encode(secret.encode()).decode()
    return [encoded, encoded.rstrip("="), base64.urlsafe_b64encode(secret.encode()).decode().rstrip("=")]


def _name(path: str) -> str:
    return re.split(r"[/\\]", path.rstrip("/\\"))[-1] or path
