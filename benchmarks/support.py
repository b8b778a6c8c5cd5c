"""What the benchmarks share: a free loopback port, waiting for a server, latency percentiles.

Percentiles have one formula here (numpy's linear interpolation between order statistics), so
a p95 means the same in every benchmark's figures.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"  # loopback only


def free_port(host: str = HOST) -> int:
    """A port nothing listens on now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_until(
    check: Callable[[], Any],
    timeout_s: float,
    what: str,
    process: subprocess.Popen[Any] | None = None,
    interval_s: float = 0.25,
) -> Any:
    """Call ``check`` every ``interval_s`` until it returns something other than ``None`` (its
    value is returned); ``SystemExit`` naming ``what`` when ``process`` exits or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"{what}: the process exited with code {process.returncode}; see its log")
        found = check()
        if found is not None:
            return found
        time.sleep(interval_s)
    raise SystemExit(f"{what}: not ready after {timeout_s:.0f} s")


def wait_listening(port: int, timeout_s: float, process: subprocess.Popen[Any] | None = None, host: str = HOST) -> None:
    """Return once something accepts connections on ``host:port`` (polled every 0.1 s)."""

    def listening() -> bool | None:
        with socket.socket() as sock:
            return True if sock.connect_ex((host, port)) == 0 else None

    wait_until(listening, timeout_s, f"{host}:{port}", process, interval_s=0.1)


def wait_ready(url: str, timeout_s: float, process: subprocess.Popen[Any] | None = None) -> dict[str, Any]:
    """The service's ``/readyz`` body once it answers 200; ``SystemExit`` when it failed to load."""
    import httpx

    def ready() -> dict[str, Any] | None:
        try:
            response = httpx.get(f"{url}/readyz", timeout=2)
        except httpx.TransportError:
            return None
        body: dict[str, Any] = response.json()
        if response.status_code == 200:
            return body
        if body.get("status") == "failed":
            raise SystemExit(f"the server could not load: {body.get('detail')}")
        return None

    return dict(wait_until(ready, timeout_s, f"the service at {url}", process))


def percentiles_ms(seconds: Sequence[float], quantiles: Sequence[int] = (50, 95), digits: int = 2) -> dict[str, float]:
    """``{"p50_ms": ..., "p95_ms": ...}`` of latencies given in seconds."""
    values = np.percentile(np.asarray(seconds, dtype=float) * 1000, list(quantiles))
    return {f"p{q}_ms": round(float(v), digits) for q, v in zip(quantiles, values)}


def command_line(module: str, args: Sequence[str]) -> str:
    """How to run a benchmark again, as its figures record it: ``python -m benchmarks.x ARGS``."""
    return " ".join(["python", "-m", module, *args])


def run_module(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m module args`` from the project's root, output captured (a measured child)."""
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True, check=False)
