"""Load test of the HTTP service on loopback: throughput, latency percentiles, errors, memory.

Starts ``rag-pricer serve`` itself (a subprocess on a free 127.0.0.1 port, with ``--store`` and
``--llm``), waits for ``/readyz``, then for each strategy and each number of concurrent clients
sends dev-split descriptions to ``POST /v1/estimate`` until ``--max-requests`` or
``--max-seconds``, whichever comes first. Reports requests/s, p50/p95/p99 latency (client side,
including HTTP), errors (must be 0), fallbacks, and the server's peak RSS (psutil).

    python -m benchmarks.service --store var/store                 # knn and rag (fake LLM)
    python -m benchmarks.service --strategies knn --concurrency 4 --max-seconds 10
    python -m benchmarks.service --strategies knn --concurrency 1 4 --embedding-backends torch onnx

Each embedding backend gets its own server, in turn. The query-embedding cache is off unless
``--embedding-cache-size`` says otherwise: scenarios send the same dev descriptions again, and
with the cache on they would measure look-ups instead of embeddings.

Writes ``benchmarks/out/service.json`` and ``benchmarks/out/service.md`` (a snippet for
``benchmarks/RESULTS.md``). Exits 1 if any request failed. The load generator runs on the same
machine as the server, so both share its cores: read the numbers as a lower bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import numpy as np
import psutil
from rich.console import Console
from rich.table import Table

from benchmarks.support import HOST, ROOT, command_line, free_port, percentiles_ms, wait_ready
from rag_pricer.items import read_items

# HOST is loopback only: this tool never sends load anywhere else
console = Console(width=130)  # the table has 10 columns: do not squeeze it into 80


@dataclass
class Scenario:
    backend: str
    strategy: str
    concurrency: int
    requests: int
    seconds: float
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    errors: int
    fallbacks: int
    peak_rss_mb: float


class MemorySampler:
    """Samples the RSS of a process and its children in a thread; ``peak`` in bytes."""

    def __init__(self, pid: int, interval_s: float = 0.05) -> None:
        self.process = psutil.Process(pid)
        self.interval_s = interval_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        try:
            return self.process.memory_info().rss + sum(
                c.memory_info().rss for c in self.process.children(recursive=True)
            )
        except psutil.Error:
            return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> MemorySampler:
        self.peak = self.rss()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._stop.clear()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def start_server(
    store: Path, llm: str, port: int, log_path: Path, torch_threads: int, backend: str, cache_size: int
) -> subprocess.Popen:
    env = {**os.environ, "RAG_PRICER_LLM_CACHE_DIR": "", "RAG_PRICER_API_TOKEN": ""}  # no cache: measure the calls
    env |= {"RAG_PRICER_EMBEDDING_BACKEND": backend, "RAG_PRICER_EMBEDDING_CACHE_SIZE": str(cache_size)}
    command = [
        sys.executable,
        "-m",
        "rag_pricer.cli.app",
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--store",
        str(store),
        "--llm",
        llm,
        "--strategy",
        "knn",
        "--log-level",
        "warning",
        "--no-access-log",
        "--torch-threads",
        str(torch_threads),
    ]
    log = open(log_path, "w")
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


async def run_scenario(
    url: str, strategy: str, concurrency: int, descriptions: list[str], max_requests: int, max_seconds: float
) -> tuple[list[float], int, int, float]:
    """Latencies (s) of the successful requests, errors, fallbacks, and the wall time."""
    latencies: list[float] = []
    errors = fallbacks = 0
    issued = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    started = time.perf_counter()
    stop_at = started + max_seconds

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:

        async def worker() -> None:
            nonlocal issued, errors, fallbacks
            while issued < max_requests and time.perf_counter() < stop_at:
                body = {"description": descriptions[issued % len(descriptions)], "strategy": strategy}
                issued += 1
                t0 = time.perf_counter()
                try:
                    response = await client.post("/v1/estimate", json=body)
                except httpx.HTTPError:
                    errors += 1
                    continue
                elapsed = time.perf_counter() - t0
                if response.status_code != 200:
                    errors += 1
                    continue
                latencies.append(elapsed)
                fallbacks += bool(response.json()["fallback"])

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors, fallbacks, time.perf_counter() - started


def summarise(
    backend: str,
    strategy: str,
    concurrency: int,
    latencies: list[float],
    errors: int,
    fallbacks: int,
    wall_s: float,
    peak: int,
) -> Scenario:
    ms = np.array(latencies) * 1000 if latencies else np.array([np.nan])
    spread = percentiles_ms(latencies or [np.nan], (50, 95, 99), digits=1)
    return Scenario(
        backend=backend,
        strategy=strategy,
        concurrency=concurrency,
        requests=len(latencies) + errors,
        seconds=round(wall_s, 2),
        requests_per_s=round(len(latencies) / wall_s, 1),
        p50_ms=spread["p50_ms"],
        p95_ms=spread["p95_ms"],
        p99_ms=spread["p99_ms"],
        mean_ms=round(float(ms.mean()), 1),
        max_ms=round(float(ms.max()), 1),
        errors=errors,
        fallbacks=fallbacks,
        peak_rss_mb=round(peak / 2**20, 1),
    )


def markdown(results: dict) -> str:
    meta = results["machine"]
    lines = [
        f"### HTTP service (`{results['command']}`)",
        "",
        f"Store: {results['store_items']:,} products; LLM `{results['llm']}`; torch threads "
        f"{results['torch_threads']}; server and load generator on the same "
        f"{meta['cpus']}-core machine (load average {meta['load_before']} before the run, shared with other work); "
        f"up to {results['max_requests']} requests or {results['max_seconds']:g} s per row; latency measured by "
        "the client.",
        "",
        "| embedding | strategy | clients | requests | req/s | p50 ms | p95 ms | p99 ms | errors | fallbacks "
        "| peak RSS MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in results["scenarios"]:
        lines.append(
            f"| {s['backend']} | {s['strategy']} | {s['concurrency']} | {s['requests']} | {s['requests_per_s']} "
            f"| {s['p50_ms']} | "
            f"{s['p95_ms']} | {s['p99_ms']} | {s['errors']} | {s['fallbacks']} | {s['peak_rss_mb']} |"
        )
    target = results["target"]
    if results["skipped_strategies"]:
        lines += ["", f"Not measured (not registered in the server): {', '.join(results['skipped_strategies'])}."]
    if target["knn_p95_ms_at_4"] is not None:
        verdict = "met" if target["met"] else "NOT met"
        lines += [
            "",
            f"Target knn p95 < {target['p95_ms']} ms at 4 clients: {target['knn_p95_ms_at_4']} ms ({verdict}).",
        ]
    return "\n".join(lines) + "\n"


def measure_server(
    args: argparse.Namespace, backend: str, descriptions: list[str]
) -> tuple[list[Scenario], list[str], dict, int]:
    """Start a server embedding with ``backend``, run every scenario against it, stop it."""
    port = free_port()
    url = f"http://{HOST}:{port}"
    log = args.out / f"service-server-{backend}.log"
    server = start_server(args.store, args.llm, port, log, args.torch_threads, backend, args.embedding_cache_size)
    scenarios: list[Scenario] = []
    skipped: list[str] = []
    try:
        started = time.monotonic()
        ready = wait_ready(url, args.ready_timeout, server)
        console.print(
            f"{backend} server ready in {time.monotonic() - started:.1f} s: {ready['store_items']:,} products at {url}"
        )
        sampler = MemorySampler(server.pid)
        idle_rss = sampler.rss()
        known = {s["name"] for s in httpx.get(f"{url}/v1/strategies", timeout=10).json()["strategies"]}
        skipped = [s for s in args.strategies if s not in known]
        for strategy in skipped:
            console.print(f"[yellow]skipped {strategy}: not registered in the server[/]")
        for strategy in [s for s in args.strategies if s in known]:
            warm = asyncio.run(run_scenario(url, strategy, 1, descriptions[-50:], args.warmup, args.max_seconds))
            if warm[1]:
                raise SystemExit(f"{strategy}: the warm-up requests failed (is the strategy registered?)")
            for concurrency in args.concurrency:
                with sampler:
                    latencies, errors, fallbacks, wall = asyncio.run(
                        run_scenario(url, strategy, concurrency, descriptions, args.max_requests, args.max_seconds)
                    )
                scenario = summarise(backend, strategy, concurrency, latencies, errors, fallbacks, wall, sampler.peak)
                scenarios.append(scenario)
                console.print(
                    f"{backend:>9} {strategy:>10} x{concurrency:<3} {scenario.requests_per_s:7.1f} req/s  "
                    f"p50 {scenario.p50_ms:7.1f}  "
                    f"p95 {scenario.p95_ms:7.1f}  p99 {scenario.p99_ms:7.1f} ms  errors {errors}  fallbacks {fallbacks}"
                )
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
    return scenarios, skipped, ready, idle_rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--store", type=Path, default=ROOT / "var" / "store", help="Chroma store directory [var/store]."
    )
    parser.add_argument(
        "--items",
        type=Path,
        default=ROOT.parent / "shared" / "data" / "items.jsonl.gz",
        help="Items file; its dev split gives the queries.",
    )
    parser.add_argument("--llm", default="fake", help="LLM spec of the server [fake].")
    parser.add_argument("--strategies", nargs="+", default=["knn", "rag"])
    parser.add_argument("--concurrency", nargs="+", type=int, default=[1, 4, 16])
    parser.add_argument("--max-requests", type=int, default=400, help="Per scenario [400].")
    parser.add_argument("--max-seconds", type=float, default=20.0, help="Per scenario [20].")
    parser.add_argument("--torch-threads", type=int, default=1, help="Passed to `rag-pricer serve` [1].")
    parser.add_argument(
        "--embedding-backends", nargs="+", default=["onnx"], help="One server per backend, in turn [onnx]."
    )
    parser.add_argument(
        "--embedding-cache-size", type=int, default=0, help="Query-embedding cache of the server [0: off]."
    )
    parser.add_argument("--warmup", type=int, default=10, help="Unmeasured requests per strategy first [10].")
    parser.add_argument("--ready-timeout", type=float, default=300.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = parser.parse_args()
    if not args.store.exists():
        raise SystemExit(f"no store at {args.store}: build it with `rag-pricer-ingest index ...` or pass --store")
    if min(args.concurrency) < 1 or args.max_requests < 1 or args.max_seconds <= 0:
        raise SystemExit("--concurrency, --max-requests and --max-seconds must be positive")

    descriptions = [item.description for item in read_items(args.items, split="dev")]
    if not descriptions:
        raise SystemExit(f"no dev items in {args.items}")
    args.out.mkdir(parents=True, exist_ok=True)
    load_before = round(os.getloadavg()[0], 2)
    scenarios: list[Scenario] = []
    for backend in args.embedding_backends:
        found, skipped, ready, idle_rss = measure_server(args, backend, descriptions)
        scenarios += found

    last = args.embedding_backends[-1]
    knn4 = next((s.p95_ms for s in scenarios if (s.backend, s.strategy, s.concurrency) == (last, "knn", 4)), None)
    command = command_line("benchmarks.service", sys.argv[1:])
    results = {
        "command": command.strip(),
        "store": str(args.store),
        "store_items": ready["store_items"],
        "llm": args.llm,
        "torch_threads": args.torch_threads,
        "embedding_cache_size": args.embedding_cache_size,
        "max_requests": args.max_requests,
        "max_seconds": args.max_seconds,
        "idle_rss_mb": round(idle_rss / 2**20, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "load_before": load_before,
            "load_after": round(os.getloadavg()[0], 2),
            "load_average_1_5_15min_after": os.getloadavg(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "scenarios": [asdict(s) for s in scenarios],
        "skipped_strategies": skipped,
        "target": {"p95_ms": 100, "knn_p95_ms_at_4": knn4, "met": knn4 is not None and knn4 < 100},
    }
    (args.out / "service.json").write_text(json.dumps(results, indent=2) + "\n")
    snippet = markdown(results)
    (args.out / "service.md").write_text(snippet)

    table = Table(title=f"rag-pricer service on {HOST} ({results['store_items']:,} products, LLM {args.llm})")
    for column in (
        "embedding",
        "strategy",
        "clients",
        "requests",
        "req/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "errors",
        "fallbacks",
        "peak RSS MB",
    ):
        table.add_column(column, justify="left" if column == "strategy" else "right")
    for s in scenarios:
        table.add_row(
            s.backend,
            s.strategy,
            str(s.concurrency),
            str(s.requests),
            f"{s.requests_per_s}",
            f"{s.p50_ms}",
            f"{s.p95_ms}",
            f"{s.p99_ms}",
            str(s.errors),
            str(s.fallbacks),
            f"{s.peak_rss_mb}",
        )
    console.print(table)
    console.print(f"wrote {args.out / 'service.json'} and {args.out / 'service.md'}")
    if any(s.errors for s in scenarios):
        raise SystemExit("some requests failed")


if __name__ == "__main__":
    main()
