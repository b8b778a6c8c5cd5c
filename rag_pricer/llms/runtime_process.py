"""A local model's native runtime in a child process.

llama.cpp and torch run native kernels that can crash the whole process (a segfault in a CPU
kernel that this machine's features select, an abort in ggml). In a child process such a crash
kills the child only: the caller gets ``RuntimeCrashed`` (an ``LLMError`` with the reason
``crashed`` once ``PricingLLM`` has classified it), the strategy falls back to knn, and the next
call starts a fresh child. A child that crashes ``max_crashes`` times in a row is not restarted
for ``cooldown_s``: a runtime that dies on every call must not cost a model load per request.
A call that outlives its deadline kills the child (a native prompt evaluation cannot be
interrupted from inside) and raises ``TimeoutError``.

The child is a fresh interpreter (``python -m rag_pricer.llms.runtime_worker``), not a fork and
not ``multiprocessing``'s spawn: forking a process that holds threads (a web server, torch's
pool) can deadlock the child, and spawn re-runs the caller's main script, which breaks any user
script without an ``if __name__ == "__main__"`` guard.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from rag_pricer.llms.errors import ContextWindowExceeded, RuntimeCrashed

#: exceptions of the child that keep their type in the parent (PricingLLM classifies them)
_KNOWN: dict[str, type[Exception]] = {
    cls.__name__: cls for cls in (TimeoutError, ContextWindowExceeded, FileNotFoundError, ValueError)
}


def _cause(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


class RuntimeProcess:
    """Builds ``spec`` (``{"module", "qualname", "fields"}``: a class, its JSON-able keyword
    arguments, and a ``load()`` method) in a child process and calls its methods there.

    Calls are serialised: one child serves them all, in order.
    """

    def __init__(
        self, spec: dict[str, Any], *, load_timeout_s: float = 300.0, max_crashes: int = 3, cooldown_s: float = 60.0
    ) -> None:
        self.spec = spec
        self.load_timeout_s = load_timeout_s
        self.max_crashes = max_crashes
        self.cooldown_s = cooldown_s
        self.crashes = 0  # in a row
        self.starts = 0
        self._lock = threading.Lock()
        self._child: subprocess.Popen[str] | None = None
        self._last_crash_at = 0.0

    def __repr__(self) -> str:
        return f"RuntimeProcess({self.spec['qualname']}, pid={self.pid}, starts={self.starts}, crashes={self.crashes})"

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None and self._child.poll() is None else None

    def start(self) -> None:
        """Start the child and wait until its runtime is loaded (raises what loading raised)."""
        with self._lock:
            self._ensure_started()

    def call(self, method: str, *args: Any, timeout_s: float | None = None) -> Any:
        """``runtime.method(*args)`` in the child. Raises ``RuntimeCrashed`` if the child dies,
        ``TimeoutError`` after ``timeout_s`` (the child is then killed), or the child's error."""
        with self._lock:
            child = self._ensure_started()
            try:
                self._send(child, {"method": method, "args": list(args)})
            except OSError:  # the child died since the last call: EPIPE
                return self._died(f"{method}()")
            return self._receive(child, timeout_s, f"{method}()")

    def close(self) -> None:
        with self._lock:
            self._stop()

    def __del__(self) -> None:
        self._stop()

    # -- the parts -------------------------------------------------------------------------

    def _ensure_started(self) -> subprocess.Popen[str]:
        if self._child is not None and self._child.poll() is None:
            return self._child
        self._stop()
        if self.crashes >= self.max_crashes:
            if time.monotonic() < self._last_crash_at + self.cooldown_s:
                raise RuntimeCrashed(
                    f"the local model runtime crashed {self.crashes} times in a row; it is not restarted until its "
                    "cool-down ends"
                )
            self.crashes = 0
        # The child imports what this process can: the runtime's class may live on sys.path only.
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self._child = subprocess.Popen(
            [sys.executable, "-m", "rag_pricer.llms.runtime_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            env=env,
            start_new_session=True,  # a Ctrl-C in a terminal reaches this process, which stops the child
        )
        self.starts += 1
        self._send(self._child, self.spec)
        self._receive(self._child, self.load_timeout_s, "loading the model", answered_a_call=False)
        return self._child

    @staticmethod
    def _send(child: subprocess.Popen[str], message: dict[str, Any]) -> None:
        assert child.stdin is not None
        child.stdin.write(json.dumps(message) + "\n")
        child.stdin.flush()

    def _receive(
        self, child: subprocess.Popen[str], timeout_s: float | None, what: str, answered_a_call: bool = True
    ) -> Any:
        assert child.stdout is not None
        ready, _, _ = select.select([child.stdout], [], [], timeout_s)
        if not ready:
            self._stop()
            raise TimeoutError(f"the local model runtime took longer than {timeout_s:g} s ({what}); it was stopped")
        line = child.stdout.readline()  # the child writes each answer as one line
        if not line:
            return self._died(what)
        if answered_a_call:  # a runtime that loads and then dies at every call is still crashing
            self.crashes = 0
        answer = json.loads(line)
        if answer["status"] == "error":
            known = _KNOWN.get(answer["type"])
            raise known(answer["message"]) if known else RuntimeError(f"{answer['type']}: {answer['message']}")
        return answer.get("value")

    def _died(self, what: str) -> Any:
        cause = _cause(self._child.wait(timeout=5) if self._child is not None else None)
        self.crashes += 1
        self._last_crash_at = time.monotonic()
        self._stop()
        raise RuntimeCrashed(f"the local model runtime died while {what} ({cause}); the next call restarts it")

    def _stop(self) -> None:
        child, self._child = getattr(self, "_child", None), None
        if child is None:
            return
        for stream in (child.stdin, child.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        if child.poll() is None:
            child.kill()
        child.wait(timeout=5)
