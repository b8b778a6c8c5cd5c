"""The child side of ``RuntimeProcess``: ``python -m rag_pricer.llms.runtime_worker``.

Protocol, one JSON object a line: the parent writes the runtime's spec
``{"module", "qualname", "fields"}``, the child answers ``{"status": "ready"}`` once the class is
built with those fields and its ``load()`` returned; then each request ``{"method", "args"}`` gets
``{"status": "ok", "value"}`` or ``{"status": "error", "type", "message"}``. JSON rather than
pickle: nothing the pipe carries can run code. The child's stdout is kept for the protocol and
the runtime's own prints are sent to stderr, so a chatty native library cannot corrupt it.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
from typing import IO, Any


def _protocol_stream() -> IO[str]:
    stream = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # prints and native logs go to stderr
    return stream


def _send(stream: IO[str], message: dict[str, Any]) -> None:
    stream.write(json.dumps(message) + "\n")
    stream.flush()


def _error(exc: BaseException) -> dict[str, Any]:
    return {"status": "error", "type": type(exc).__name__, "message": str(exc)}


def _build(spec: dict[str, Any]) -> Any:
    cls = getattr(importlib.import_module(spec["module"]), spec["qualname"])
    runtime = cls(**spec["fields"])
    runtime.load()
    return runtime


def main() -> None:
    # The parent handles Ctrl-C and stops its child: dying of SIGINT first would only turn an
    # interrupted command into a reported crash.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = _protocol_stream()
    try:
        runtime = _build(json.loads(sys.stdin.readline()))
    except Exception as exc:  # reported to the parent, which raises it for the call
        _send(out, _error(exc))
        return
    _send(out, {"status": "ready"})
    for line in sys.stdin:  # ends when the parent closes the pipe or goes away
        request = json.loads(line)
        try:
            _send(out, {"status": "ok", "value": getattr(runtime, request["method"])(*request["args"])})
        except Exception as exc:
            _send(out, _error(exc))


if __name__ == "__main__":
    main()
