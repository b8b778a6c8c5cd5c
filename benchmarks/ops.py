"""Operating figures: ``price-file`` throughput on a catalogue of N rows, and feedback write rates.

    python -m benchmarks.ops --store /tmp/ops-store --rows 1000 --feedback 500 --out benchmarks/out/ops.json
    python -m benchmarks.ops --store /tmp/ops-store --skip-price-file --out benchmarks/out/ops-feedback.json

``price-file`` runs as the user runs it (a process, knn, default batch of 64, no progress bar),
on the first N ``items_extra`` products written as a CSV (sku, title, description); its own
final line gives the pricing rate without the model load, the wall clock gives it with. A
second run on the same output measures resuming (nothing left to price). Feedback: estimates
recorded (``synchronous=NORMAL``) and feedbacks added (``synchronous=FULL``, fsynced) through
``FeedbackJournal``, from one thread and from 4 at once; then ``POST /v1/feedback`` against a
real server from 4 client threads (acknowledged feedbacks per second, latency). CPU flags and load averages are
recorded with the figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.support import ROOT, free_port, percentiles_ms, wait_ready
from rag_pricer.feedback.journal import FeedbackJournal, Given
from rag_pricer.items import read_items


def cpu_flags() -> list[str]:
    wanted = {"avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"}
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return sorted(wanted & set(line.split(":", 1)[1].split()))
    return []


def load() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def catalogue(path: Path, items_path: Path, rows: int) -> Path:
    items = read_items(items_path, limit=rows)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sku", "title", "description"])
        writer.writerows([item.id, item.title, item.text] for item in items)
    return path


def price_file(source: Path, out: Path, store: Path, journal: Path) -> dict[str, float]:
    command = [sys.executable, "-m", "rag_pricer.cli.app", "price-file", str(source), "--out", str(out)]
    command += ["--strategy", "knn", "--id-columns", "sku", "--text-columns", "title,description", "--no-progress"]
    env = os.environ | {
        "PYTHONPATH": str(ROOT),
        "RAG_PRICER_STORE_PATH": str(store),
        "RAG_PRICER_FEEDBACK_PATH": str(journal),
        "RAG_PRICER_LLM_CACHE_DIR": "",
    }
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    final = re.search(r"priced (\d+) rows in ([\d.]+) s \(([\d.]+) rows/s\)", done.stderr)
    assert final is not None, done.stderr
    return {
        "rows_priced": int(final.group(1)),
        "pricing_s": float(final.group(2)),
        "rows_per_s": float(final.group(3)),
        "wall_s": round(wall, 2),
        "wall_rows_per_s": round(int(final.group(1)) / wall, 1),
    }


def feedback_rates(folder: Path, n: int, threads: int) -> dict[str, float]:
    journal = FeedbackJournal(folder / f"feedback-{threads}.sqlite3")
    given = [Given(f"e{i:08d}", "knn", 100.0, 80.0, 130.0, 0.8, False, f"product {i}") for i in range(n)]
    started = time.perf_counter()
    for g in given:  # one request's estimate at a time, as the service records them
        journal.record([g])
    record_s = time.perf_counter() - started

    def send(part: list[Given]) -> None:
        for g in part:
            journal.add(90.0, estimate_id=g.id)

    parts = [given[i::threads] for i in range(threads)]
    workers = [threading.Thread(target=send, args=(part,)) for part in parts]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    add_s = time.perf_counter() - started
    assert len(journal.feedbacks()) == n
    return {
        "threads": threads,
        "estimates_recorded_per_s": round(n / record_s, 1),
        "feedbacks_per_s": round(n / add_s, 1),
    }


def http_feedback(store: Path, folder: Path, n: int, clients: int) -> dict[str, object]:
    """``POST /v1/feedback`` against a real server (``rag-pricer serve``, knn) from ``clients``
    threads, each naming an estimate the server gave: acknowledged feedbacks per second."""
    import httpx

    port = free_port()
    command = [sys.executable, "-m", "rag_pricer.cli.app", "serve", "--store", str(store), "--port", str(port)]
    command += ["--strategy", "knn", "--llm", "fake", "--log-level", "warning", "--no-access-log"]
    env = os.environ | {
        "PYTHONPATH": str(ROOT),
        "RAG_PRICER_FEEDBACK_PATH": str(folder / "http-feedback.sqlite3"),
        "RAG_PRICER_LLM_CACHE_DIR": "",
    }
    with open(folder / "server.log", "wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, 300, process)
        with httpx.Client(timeout=60) as client:
            batch = [{"description": f"Cordless drill 18V kit number {i}"} for i in range(64)]
            ids = [e["id"] for e in client.post(f"{url}/v1/estimate/batch", json={"items": batch}).json()["items"]]
        latencies: list[float] = []
        failures: list[int] = []

        def send(share: int) -> None:
            with httpx.Client(timeout=60) as client:
                for i in range(share, n, clients):
                    started = time.perf_counter()
                    response = client.post(f"{url}/v1/feedback", json={"estimate_id": ids[i % len(ids)], "price": 99.0})
                    latencies.append(time.perf_counter() - started)
                    if response.status_code != 200:
                        failures.append(response.status_code)

        workers = [threading.Thread(target=send, args=(c,)) for c in range(clients)]
        started = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - started
    finally:
        process.terminate()
        process.wait(30)
    stored = len(FeedbackJournal(folder / "http-feedback.sqlite3").feedbacks())
    return {
        "clients": clients,
        "feedbacks_per_s": round(n / elapsed, 1),
        **percentiles_ms(latencies),
        "non_200": len(failures),
        "stored": stored,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", type=Path, required=True, help="A copy of the main job's store.")
    parser.add_argument("--items", type=Path, default=ROOT.parent / "shared" / "data" / "items_extra.jsonl.gz")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--feedback", type=int, default=500)
    parser.add_argument("--skip-price-file", action="store_true", help="Measure the feedback writes only.")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "ops.json")
    args = parser.parse_args()
    result: dict[str, object] = {"cpu_flags": cpu_flags(), "cores": os.cpu_count(), "load_before": load()}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = catalogue(folder / "catalogue.csv", args.items, args.rows)
        out, journal = folder / "priced.csv", folder / "journal.sqlite3"
        if not args.skip_price_file:
            result["price_file"] = price_file(source, out, args.store, journal)
            result["price_file_resumed"] = price_file(source, out, args.store, journal)
            result["load_after_price_file"] = load()
        result["feedback"] = [feedback_rates(folder, args.feedback, threads) for threads in (1, 4)]
        result["http_feedback"] = http_feedback(args.store, folder, args.feedback, clients=4)
    result["load_after"] = load()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
