"""Live knowledge updates against a running server: write rates, time to retrieval, SIGKILLs.

    python -m benchmarks.live_updates --store var/store [--work /tmp/live-store] [--out FILE]

``--store`` is only read: it is copied to ``--work`` (replaced on every run) and everything is
written to the copy. One ``rag-pricer serve`` (knn, fake LLM, a write token) runs on the copy,
on loopback; products are items of ``--items`` (``items_extra``) under fresh ids.

(a) **Writes while pricing**: ``--clients`` threads price with knn for ``--baseline-s`` seconds
    alone, then for ``--seconds`` while one thread ``PUT``s new products as fast as the server
    acknowledges them: writes per second, the pricing p50/p95 with and without the writes,
    errors.
(b) **Time to retrieval**: a product written by another process (``benchmarks.live_writer``,
    a long-lived process with ``KnowledgeWriter``; and ``rag-pricer-ingest add``), then one
    written over HTTP, is polled with ``POST /v1/estimate`` of its exact title until its id is
    among the comparables: seconds from the acknowledged write (the writer's own clock for the
    writer process, its exit for ``add``, the ``200`` for HTTP) to that response; median, max.
(c) **SIGKILLs**: the server and a writer process are killed with SIGKILL ``--kills`` times
    while both write (one HTTP writer thread, the writer process) and two clients price; each
    time the server is restarted on the same store. Clients send only while the server is ready
    (as behind a load balancer's readiness check); requests cut by a kill are connection errors,
    counted apart from 5xx. At the end, every write acknowledged in (a), (b) and (c) is looked
    up (``GET /v1/products/{id}``) and priced with its own description plus a word (``POST
    /v1/estimate/batch``; a verbatim copy of a product's text never retrieves it, as leakage):
    lost = acknowledged but not stored or not retrieved.

The parts run in the order (b), (a), (c), each on the store the previous one left.

Prints the figures and writes them as JSON (``--out``, default ``benchmarks/out/live_updates.json``)
with the CPU flags and load averages. Exits 1 when a write was lost or a request answered 5xx.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any

import httpx

from benchmarks.support import HOST, ROOT, command_line, free_port, percentiles_ms, wait_ready, wait_until
from rag_pricer.diagnostics import cpu_flags
from rag_pricer.items import Item, read_items

PY = sys.executable
TOKEN = "live-updates-benchmark"
WRITE_HEADERS = {"Authorization": f"Bearer {TOKEN}"}
SHOWN_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")


# pure helpers ----------------------------------------------------------------------------------------


class ProductFeed:
    """New products made of ``items``, under fresh ids ``live-<tag>-<n>``: each item once, then
    (when more are taken than there are items) again from the first, counted in ``reused``."""

    def __init__(self, items: Sequence[Item], tag: str) -> None:
        if not items:
            raise ValueError("no items to write")
        self._items = items
        self._tag = tag
        self._next = count()
        self._lock = threading.Lock()
        self.handed: dict[str, Item] = {}  # every product taken so far, by id

    @property
    def reused(self) -> int:
        return max(0, len(self.handed) - len(self._items))

    def take(self, n: int = 1) -> list[Item]:
        with self._lock:
            taken = [self._fresh(number) for number in (next(self._next) for _ in range(n))]
            self.handed.update((item.id, item) for item in taken)
        return taken

    def _fresh(self, number: int) -> Item:
        item = self._items[number % len(self._items)]
        return Item(
            id=f"live-{self._tag}-{number:05d}",
            title=item.title,
            text=item.text,
            price=item.price,
            category=item.category,
            split="live",
            source="benchmarks.live_updates",
        )


def product_body(item: Item) -> dict[str, Any]:
    """The ``PUT /v1/products/{id}`` body of ``item``."""
    return {"title": item.title, "text": item.text, "price": item.price, "category": item.category, "split": "live"}


def retrieved(estimate: dict[str, Any], product_id: str) -> bool:
    """Whether an estimate's comparables include the product ``product_id``."""
    return any(c.get("id") == product_id for c in estimate.get("comparables") or [])


def probe(item: Item) -> str:
    """A query that finds ``item`` first: its description, plus a word so that it is not a
    verbatim copy (retrieval leaves out a product whose text is the query's: leakage)."""
    return f"{item.description} (check)"


def seconds_summary(values: Sequence[float]) -> dict[str, Any]:
    """Median and max of ``values`` (seconds), and how many."""
    if not values:
        return {"n": 0, "median_s": None, "max_s": None}
    return {"n": len(values), "median_s": round(statistics.median(values), 3), "max_s": round(max(values), 3)}


def fresh_copy(source: Path, work: Path) -> Path:
    """Copy the store ``source`` to ``work``, replacing a store left there by an earlier run;
    ``SystemExit`` when ``work`` is (or is inside) ``source`` or is some other non-empty folder."""
    source, work = source.resolve(), work.resolve()
    if not (source / "chroma.sqlite3").is_file():
        raise SystemExit(f"no store at {source}: build it with `rag-pricer-ingest index ...` or pass --store")
    if work == source or source in work.parents:
        raise SystemExit(f"--work {work} must not be the store it copies ({source}): the original is never written")
    if work.exists():
        if not (work / "chroma.sqlite3").is_file() and any(work.iterdir()):
            raise SystemExit(f"--work {work} exists and is not a store: give an empty or new folder")
        shutil.rmtree(work)
    shutil.copytree(source, work)
    return work


@dataclass
class Tally:
    """Outcomes of requests from several threads: latencies of answered ones, statuses, and
    connection errors (nothing answered)."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    connection_errors: int = 0
    errors: list[str] = field(default_factory=list)  # the first bodies of 5xx answers
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def answered(self, status: int, seconds: float, body: str = "") -> None:
        with self.lock:
            self.statuses[status] += 1
            self.latencies.append(seconds)
            if status >= 500 and len(self.errors) < 5:
                self.errors.append(f"{status} {body[:300]}")

    def unanswered(self) -> None:
        with self.lock:
            self.connection_errors += 1

    def as_dict(self) -> dict[str, Any]:
        with self.lock:
            answered = sum(self.statuses.values())
            figures: dict[str, Any] = {
                "answered": answered,
                "ok": self.statuses[200],
                "4xx": sum(n for s, n in self.statuses.items() if 400 <= s < 500),
                "5xx": sum(n for s, n in self.statuses.items() if s >= 500),
                "connection_errors": self.connection_errors,
            }
            if self.errors:
                figures["first_5xx"] = list(self.errors)
            if self.latencies:
                figures |= percentiles_ms(self.latencies, digits=1)
        return figures


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# the server and the other writer ---------------------------------------------------------------------


def env() -> dict[str, str]:
    return os.environ | {
        "PYTHONPATH": str(ROOT),
        "RAG_PRICER_WRITE_TOKEN": TOKEN,
        "RAG_PRICER_LLM_CACHE_DIR": "",
        "TOKENIZERS_PARALLELISM": "false",
    }


class Server:
    """``rag-pricer serve`` on ``store`` (knn, fake LLM), always on the same loopback port, so
    that clients keep their URL across restarts."""

    def __init__(self, store: Path, folder: Path, ready_timeout_s: float) -> None:
        self.store = store
        self.log = folder / "server.log"
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.ready_timeout_s = ready_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self.feedback = folder / "feedback.sqlite3"

    def start(self) -> float:
        """Start it; seconds until ``/readyz`` answers 200."""
        command = [PY, "-m", "rag_pricer.cli.app", "serve", "--host", HOST, "--port", str(self.port)]
        command += ["--store", str(self.store), "--strategy", "knn", "--llm", "fake"]
        command += ["--log-level", "warning", "--no-access-log"]
        started = time.monotonic()
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env() | {"RAG_PRICER_FEEDBACK_PATH": str(self.feedback)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_ready(self.url, self.ready_timeout_s, self.process)
        return time.monotonic() - started

    def kill(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


class WriterProcess:
    """``benchmarks.live_writer`` on ``store``: products sent on its stdin (``send``) or read
    from a file, each acknowledged on its stdout once written (collected in ``acks``)."""

    def __init__(self, store: Path, folder: Path, items_file: Path | None = None, pause_s: float = 0.0) -> None:
        command = [PY, "-m", "benchmarks.live_writer", "--store", str(store), "--pause", str(pause_s)]
        command += ["--items", str(items_file) if items_file is not None else "-"]
        with open(folder / "writer.log", "ab") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True
            )
        self.acks: list[dict[str, Any]] = []
        self.ready = threading.Event()
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            message = json.loads(line)
            with self._changed:
                if message.get("ready"):
                    self.ready.set()
                else:
                    self.acks.append(message)
                self._changed.notify_all()

    def wait_ready(self, timeout_s: float) -> None:
        wait_until(lambda: True if self.ready.is_set() else None, timeout_s, "the writer process", self.process)

    def send(self, item: Item, timeout_s: float) -> dict[str, Any]:
        """Write ``item`` and return its acknowledgement."""
        assert self.process.stdin is not None
        with self._changed:
            before = len(self.acks)
        self.process.stdin.write(json.dumps(item.to_record()) + "\n")
        self.process.stdin.flush()
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.acks) > before, timeout_s):
                raise SystemExit(f"the writer process did not write {item.id} in {timeout_s:.0f} s")
            return self.acks[before]

    def acknowledged(self) -> list[str]:
        with self._changed:
            return [ack["id"] for ack in self.acks]

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self._reader.join(5)

    def close(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()
        self._reader.join(5)


# clients -------------------------------------------------------------------------------------------


class Clients:
    """Threads calling ``work(client, n)`` in a loop while ``serving`` is set, until ``stop``."""

    def __init__(self, url: str, threads: int, work: Callable[[httpx.Client, int], None]) -> None:
        self.stop = threading.Event()
        self.serving = threading.Event()
        self.serving.set()
        self._threads = [threading.Thread(target=self._loop, args=(url, work, i), daemon=True) for i in range(threads)]

    def _loop(self, url: str, work: Callable[[httpx.Client, int], None], index: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            for n in count(index * 1_000_000):
                while not self.serving.wait(0.2):
                    if self.stop.is_set():
                        return
                if self.stop.is_set():
                    return
                work(client, n)

    def __enter__(self) -> Clients:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(90)


def pricer(descriptions: Sequence[str], tally: Tally) -> Callable[[httpx.Client, int], None]:
    """One knn estimate per call, of the next description."""

    def price(client: httpx.Client, n: int) -> None:
        started = time.perf_counter()
        try:
            response = client.post("/v1/estimate", json={"description": descriptions[n % len(descriptions)]})
        except httpx.TransportError:
            tally.unanswered()
            time.sleep(0.1)
            return
        tally.answered(response.status_code, time.perf_counter() - started, response.text)

    return price


class HttpWriter:
    """``PUT /v1/products/{id}`` of the feed's next product per call; the acknowledged ids
    (``200``) in order, and whether a PUT is in flight (to tell a kill that cut one)."""

    def __init__(self, feed: ProductFeed, tally: Tally) -> None:
        self.feed = feed
        self.tally = tally
        self.acknowledged: list[str] = []
        self.attempted: list[str] = []
        self.in_flight = threading.Event()

    def __call__(self, client: httpx.Client, n: int) -> None:
        (item,) = self.feed.take()
        self.attempted.append(item.id)
        self.in_flight.set()
        started = time.perf_counter()
        try:
            response = client.put(f"/v1/products/{item.id}", json=product_body(item), headers=WRITE_HEADERS)
        except httpx.TransportError:
            self.tally.unanswered()
            time.sleep(0.1)
            return
        finally:
            self.in_flight.clear()
        self.tally.answered(response.status_code, time.perf_counter() - started, response.text)
        if response.status_code == 200:
            self.acknowledged.append(item.id)


def first_retrieval(client: httpx.Client, item: Item, timeout_s: float, k: int) -> tuple[float | None, int]:
    """Poll ``POST /v1/estimate`` with ``item``'s exact title until ``item`` is among the
    comparables: the monotonic time that response arrived (``None`` after ``timeout_s``) and
    the number of polls."""
    deadline = time.monotonic() + timeout_s
    polls = 0
    while time.monotonic() < deadline:
        polls += 1
        response = client.post("/v1/estimate", json={"description": item.title, "strategy": "knn", "k": k})
        if response.status_code == 200 and retrieved(response.json(), item.id):
            return time.monotonic(), polls
        if response.status_code >= 500:
            raise SystemExit(f"polling {item.id} got {response.status_code}: {response.text[:200]}")
        time.sleep(0.02)
    return None, polls


# the three parts -------------------------------------------------------------------------------------


def writes_while_pricing(
    server: Server, feed: ProductFeed, descriptions: Sequence[str], args: argparse.Namespace
) -> tuple[dict[str, Any], list[str]]:
    alone = Tally()
    with Clients(server.url, args.clients, pricer(descriptions, alone)):
        time.sleep(args.baseline_s)
    priced, put = Tally(), Tally()
    writer = HttpWriter(feed, put)
    started = time.monotonic()
    with Clients(server.url, args.clients, pricer(descriptions, priced)), Clients(server.url, 1, writer):
        time.sleep(args.seconds)
    elapsed = time.monotonic() - started
    figures = {
        "clients": args.clients,
        "pricing_alone": alone.as_dict() | {"per_s": round(alone.as_dict()["answered"] / args.baseline_s, 1)},
        "pricing_while_writing": priced.as_dict() | {"per_s": round(priced.as_dict()["answered"] / elapsed, 1)},
        "writes": put.as_dict() | {"per_s": round(len(writer.acknowledged) / elapsed, 2), "seconds": round(elapsed, 1)},
    }
    return figures, writer.acknowledged


def time_to_retrieval(
    server: Server, feed: ProductFeed, folder: Path, args: argparse.Namespace
) -> tuple[dict[str, Any], list[str]]:
    acknowledged: list[str] = []
    figures: dict[str, Any] = {"poll": f"POST /v1/estimate, knn, k={args.k}, the exact title"}
    with httpx.Client(base_url=server.url, timeout=60) as client:
        # another process, long-lived: KnowledgeWriter in benchmarks.live_writer
        writer = WriterProcess(server.store, folder)
        writer.wait_ready(args.ready_timeout)
        delays, polls, missed = [], [], []
        for item in feed.take(args.propagation):
            ack = writer.send(item, 120)
            acknowledged.append(item.id)
            found, n = first_retrieval(client, item, args.retrieval_timeout, args.k)
            polls.append(n)
            if found is None:
                missed.append(item.id)
            else:
                delays.append(found - ack["written_at"])
            time.sleep(args.gap_s)
        writer.close()
        figures["writer_process"] = seconds_summary(delays) | {"not_retrieved": missed, "polls_max": max(polls)}
        figures["writer_process"]["write_s_median"] = round(statistics.median(a["write_s"] for a in writer.acks), 3)

        # another process, one per write: rag-pricer-ingest add
        delays, walls, missed = [], [], []
        for item in feed.take(args.cli_writes):
            source = folder / f"{item.id}.jsonl"
            source.write_text(json.dumps(item.to_record()) + "\n")
            started = time.monotonic()
            done = subprocess.run(
                [PY, "-m", "ingest.cli", "add", str(source), "--store", str(server.store), "--json"],
                cwd=ROOT,
                env=env(),
                capture_output=True,
                text=True,
            )
            exited = time.monotonic()
            if done.returncode != 0:
                raise SystemExit(f"rag-pricer-ingest add failed: {done.stderr or done.stdout}")
            acknowledged.append(item.id)
            walls.append(exited - started)
            found, _ = first_retrieval(client, item, args.retrieval_timeout, args.k)
            if found is None:
                missed.append(item.id)
            else:
                delays.append(found - exited)
        figures["ingest_add"] = seconds_summary(delays) | {
            "not_retrieved": missed,
            "process_wall_median_s": round(statistics.median(walls), 2) if walls else None,
        }

        # the serving process itself: PUT /v1/products/{id}
        delays, puts, missed = [], [], []
        for item in feed.take(args.propagation):
            started = time.monotonic()
            response = client.put(f"/v1/products/{item.id}", json=product_body(item), headers=WRITE_HEADERS)
            answered = time.monotonic()
            if response.status_code != 200:
                raise SystemExit(f"PUT {item.id} answered {response.status_code}: {response.text[:200]}")
            acknowledged.append(item.id)
            puts.append(answered - started)
            found, _ = first_retrieval(client, item, args.retrieval_timeout, args.k)
            if found is None:
                missed.append(item.id)
            else:
                delays.append(found - answered)
        figures["http_put"] = seconds_summary(delays) | {
            "not_retrieved": missed,
            "put_median_s": round(statistics.median(puts), 3),
        }
    return figures, acknowledged


def sigkills(
    server: Server, feed: ProductFeed, descriptions: Sequence[str], folder: Path, args: argparse.Namespace
) -> tuple[dict[str, Any], list[str], list[str]]:
    """Kill the server and a writer process ``args.kills`` times mid-writes, restarting both,
    then let them write a last round to its end: the figures, the acknowledged ids (HTTP and
    writer process) and every id attempted."""
    rng = random.Random(args.seed)
    priced, put = Tally(), Tally()
    writer = HttpWriter(feed, put)
    kills: list[dict[str, Any]] = []
    restarts: list[float] = []
    child_acks: list[str] = []
    attempted: list[str] = []
    pricing = Clients(server.url, 2, pricer(descriptions, priced))
    writing = Clients(server.url, 1, writer)
    with pricing, writing:
        for round_ in range(args.kills + 1):
            last = round_ == args.kills
            if round_ > 0:
                restarts.append(server.start())
            items = feed.take(args.last_writes if last else args.child_writes)
            attempted += [item.id for item in items]
            items_file = folder / f"kill-round-{round_}.jsonl"
            items_file.write_text("".join(json.dumps(item.to_record()) + "\n" for item in items))
            child = WriterProcess(server.store, folder, items_file, pause_s=args.child_pause)
            pricing.serving.set()
            writing.serving.set()
            child.wait_ready(args.ready_timeout)
            if last:
                child.close()  # writes all its items, then exits
                child_acks += child.acknowledged()
                break
            time.sleep(rng.uniform(*args.kill_after))
            cut_put = writer.in_flight.is_set()
            server.kill()
            child.kill()
            pricing.serving.clear()
            writing.serving.clear()
            child_acks += child.acknowledged()
            kills.append(
                {
                    "http_put_in_flight": cut_put,
                    "writer_process_acks": len(child.acknowledged()),
                    "writer_process_left": len(items) - len(child.acknowledged()),
                }
            )
    figures = {
        "kills": len(kills),
        "each_kill": kills,
        "restart_to_ready_s": [round(s, 1) for s in restarts],
        "pricing": priced.as_dict(),
        "http_writes": put.as_dict() | {"acknowledged": len(writer.acknowledged)},
        "writer_process_acknowledged": len(child_acks),
    }
    return figures, writer.acknowledged + child_acks, writer.attempted + attempted


def verify(server: Server, acknowledged: dict[str, list[str]], attempted: list[str], items: dict[str, Item]) -> dict:
    """Every acknowledged write, looked up and priced with its own description (batches of 64)."""
    report: dict[str, Any] = {}
    with httpx.Client(base_url=server.url, timeout=120) as client:
        stored: set[str] = set()
        candidates = set(attempted) | {i for ids in acknowledged.values() for i in ids}
        statuses: Counter[int] = Counter()
        for product_id in sorted(candidates):
            response = client.get(f"/v1/products/{product_id}")
            statuses[response.status_code] += 1
            if response.status_code == 200:
                stored.add(product_id)
        found: set[str] = set()
        wanted = sorted(stored)
        for start in range(0, len(wanted), 64):
            chunk = wanted[start : start + 64]
            body = {"items": [{"description": probe(items[i]), "strategy": "knn", "k": 5} for i in chunk]}
            response = client.post("/v1/estimate/batch", json=body)
            statuses[response.status_code] += 1
            if response.status_code == 200:
                found |= {i for i, e in zip(chunk, response.json()["items"]) if retrieved(e, i)}
        for phase, ids in acknowledged.items():
            report[phase] = {
                "acknowledged": len(ids),
                "not_stored": sorted(set(ids) - stored),
                "stored_not_retrieved": sorted((set(ids) & stored) - found),
            }
        acked = {i for ids in acknowledged.values() for i in ids}
        report["lost"] = len(acked - (stored & found))
        report["unacknowledged_but_stored"] = len(stored - acked)
        report["verify_5xx"] = sum(n for s, n in statuses.items() if s >= 500)
    return report


# main ------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, required=True, help="The store to copy (only read).")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "live-store")
    parser.add_argument("--items", type=Path, default=ROOT.parent / "shared" / "data" / "items_extra.jsonl.gz")
    parser.add_argument("--queries", type=int, default=200, help="The last N items are priced, not written [200].")
    parser.add_argument("--clients", type=int, default=4, help="(a) pricing threads [4].")
    parser.add_argument("--baseline-s", type=float, default=10.0, help="(a) seconds of pricing alone [10].")
    parser.add_argument("--seconds", type=float, default=30.0, help="(a) seconds of pricing while writing [30].")
    parser.add_argument("--propagation", type=int, default=10, help="(b) writes per writer kind [10].")
    parser.add_argument("--cli-writes", type=int, default=3, help="(b) writes by rag-pricer-ingest add [3].")
    parser.add_argument("--k", type=int, default=10, help="(b) comparables per poll [10].")
    parser.add_argument("--gap-s", type=float, default=0.5, help="(b) pause between two writes [0.5].")
    parser.add_argument("--retrieval-timeout", type=float, default=30.0, help="(b) polling limit per write [30].")
    parser.add_argument("--kills", type=int, default=3, help="(c) SIGKILLs of the server and a writer [3].")
    parser.add_argument("--kill-after", type=float, nargs=2, default=(4.0, 10.0), metavar=("MIN", "MAX"))
    parser.add_argument("--child-writes", type=int, default=100, help="(c) products per killed writer [100].")
    parser.add_argument("--child-pause", type=float, default=0.05, help="(c) writer's pause between writes [0.05].")
    parser.add_argument("--last-writes", type=int, default=10, help="(c) products of the writer not killed [10].")
    parser.add_argument("--ready-timeout", type=float, default=240.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--logs", type=Path, default=Path(tempfile.gettempdir()) / "live-updates-logs", help="Server and writer logs."
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "live_updates.json")
    args = parser.parse_args()
    if (
        min(args.clients, args.propagation, args.queries) < 1
        or args.kills < 0
        or min(args.seconds, args.baseline_s) <= 0
    ):
        raise SystemExit("--clients, --propagation, --queries, --seconds and --baseline-s must be positive")

    began = time.monotonic()
    flags = cpu_flags()
    result: dict[str, Any] = {
        "command": command_line("benchmarks.live_updates", sys.argv[1:]),
        "cpu_flags": [f for f in SHOWN_FLAGS if f in flags],
        "cores": os.cpu_count(),
        "load_before": load_average(),
    }
    everything = read_items(args.items)
    if len(everything) <= args.queries:
        raise SystemExit(f"{args.items} has {len(everything)} items: fewer than --queries {args.queries} plus writes")
    queries = [item.description for item in everything[-args.queries :]]
    feed = ProductFeed(everything[: -args.queries], tag=time.strftime("%H%M%S"))
    work = fresh_copy(args.store, args.work)
    print(f"store copied to {work}", flush=True)
    args.logs.mkdir(parents=True, exist_ok=True)
    for log in ("server.log", "writer.log"):
        (args.logs / log).write_bytes(b"")
    folder = args.logs
    server = Server(work, folder, args.ready_timeout)
    try:
        result["start_to_ready_s"] = round(server.start(), 1)
        result["store_items_before"] = httpx.get(f"{server.url}/readyz").json()["store_items"]
        print(f"server ready in {result['start_to_ready_s']} s; (b) time from a write to its retrieval", flush=True)
        result["b_time_to_retrieval"], acked_b = time_to_retrieval(server, feed, folder, args)
        print(json.dumps(result["b_time_to_retrieval"]), flush=True)
        print("(a) writes while pricing", flush=True)
        result["a_writes_while_pricing"], acked_a = writes_while_pricing(server, feed, queries, args)
        result["load_after_a"] = load_average()
        print(json.dumps(result["a_writes_while_pricing"]), flush=True)
        print(f"(c) {args.kills} SIGKILLs of the server and a writer process", flush=True)
        result["c_sigkills"], acked_c, attempted = sigkills(server, feed, queries, folder, args)
        print(json.dumps(result["c_sigkills"]), flush=True)
        acknowledged = {"a": acked_a, "b": acked_b, "c": acked_c}
        result["verify"] = verify(server, acknowledged, attempted, feed.handed)
        result["store_items_after"] = httpx.get(f"{server.url}/readyz").json()["store_items"]
        result["items_reused"] = feed.reused
    except BaseException:
        print(f"server log (last lines of {server.log}):", file=sys.stderr)
        print((server.log.read_text(errors="replace") if server.log.exists() else "")[-3000:], file=sys.stderr)
        raise
    finally:
        server.stop()
    result["load_after"] = load_average()
    result["wall_s"] = round(time.monotonic() - began, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    fives = answered_5xx(result)
    if result["verify"]["lost"] or fives:
        raise SystemExit(f"{result['verify']['lost']} acknowledged write(s) lost, {fives} answer(s) 5xx")


def answered_5xx(result: dict[str, Any]) -> int:
    """Every 5xx answer the run counted (pricing and writes in (a) and (c), the verification)."""
    a, c = result["a_writes_while_pricing"], result["c_sigkills"]
    tallies = [a["pricing_alone"], a["pricing_while_writing"], a["writes"], c["pricing"], c["http_writes"]]
    return sum(t["5xx"] for t in tallies) + result["verify"]["verify_5xx"]


if __name__ == "__main__":
    main()
