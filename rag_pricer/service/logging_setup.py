"""The logging of ``rag-pricer serve``: uvicorn's own set-up, extended to the service's loggers,
with the request id in every line, as text or as one JSON object per line (``--log-format json``)."""

from __future__ import annotations

import copy
import json
import logging
from datetime import UTC, datetime
from typing import Any, Literal

#: record attributes every ``LogRecord`` has: what is not among them came from ``extra=``
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "color_message"}
#: the fields of a JSON line besides the ``extra`` ones, in this order
_FIRST = ("time", "level", "logger", "message", "request_id")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, request_id, then
    whatever the call passed in ``extra`` (route, status, latency_ms, strategy, fallback ...), and
    the exception's traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        data |= {k: v for k, v in vars(record).items() if k not in _STANDARD and k not in _FIRST}
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str, ensure_ascii=False)


def log_config(level: str, log_format: Literal["text", "json"] = "text") -> dict[str, Any]:
    """uvicorn's ``LOGGING_CONFIG`` with the ``rag_pricer`` loggers on its default handler, the
    request id added to every record (text lines show it in brackets), and JSON formatters for
    ``log_format="json"``."""
    import uvicorn.config

    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["filters"] = {"request_id": {"()": "rag_pricer.service.request_ids.RequestIdFilter"}}
    for handler in config["handlers"].values():
        handler["filters"] = ["request_id"]
    if log_format == "json":
        json_lines = {"()": "rag_pricer.service.logging_setup.JsonFormatter"}
        config["formatters"] = {name: dict(json_lines) for name in config["formatters"]}
    else:
        config["formatters"]["default"]["fmt"] = "%(levelprefix)s [%(request_id)s] %(message)s"
        config["formatters"]["access"]["fmt"] = (
            '%(levelprefix)s [%(request_id)s] %(client_addr)s - "%(request_line)s" %(status_code)s'
        )
    config["loggers"]["rag_pricer"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config
