"""Ingestion memory against the number of items: the real ``Indexer`` pipeline, streamed.

    nice -n 10 python -m benchmarks.ingest_memory [--counts 10000 50000 100000] [--modes persistent server]
        [--source-store var/store] [--items ../shared/data/items.jsonl.gz]

Embedding 100k real texts would take 30+ minutes on 2 cores, and the model's memory does not
depend on the item count, so the model is replaced -- and only the model:

- **Items**: the real `train` items, streamed from ``--items`` with ``ItemReader`` (one line at a
  time) and again and again with ids ``"{id}:{c}"`` until ``count`` items were read; never a list.
- **Embedder**: ``PrecomputedEmbedder`` returns each text's real MiniLM vector, read back from a
  copy of ``--source-store`` (the knowledge base run.sh built), plus a little gaussian noise for
  the copies so that the HNSW graph is not built from exact duplicates. It holds the 16,442 real
  vectors (25 MB) whatever the count.
- **Everything else is the project's**: ``Indexer(ProductStore(...), embedder).run(items)`` with
  the CLI's defaults (chunks of 512, windows of 8,192, the writer thread, the already-stored
  check), into a new persistent store or a ``chroma run`` server.

Each count runs in a fresh process; it reports its peak RSS (VmHWM) and its RSS before indexing
(imports, the vectors table), and, in client/server mode, the server's peak RSS. The figures go
to benchmarks/out/ingest_memory.json; stores are written in /tmp and deleted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.scale import SIGMA, Base, ChromaServer, memory_mb, read_base
from benchmarks.support import ROOT, command_line, run_module
from rag_pricer.items import Item, ItemReader
from rag_pricer.knowledge.embeddings import Embedder


class PrecomputedEmbedder(Embedder):
    """The real vector of each known text; a text seen before (a copy) gets it plus gaussian noise."""

    def __init__(self, base: Base, sigma: float = SIGMA, model: str = "all-MiniLM-L6-v2") -> None:
        super().__init__(model)
        self.rows = {text: row for row, text in enumerate(base.documents)}
        self.base_vectors = base.vectors
        self.sigma = sigma
        self.rng = np.random.default_rng(0)
        self.uses = np.zeros(len(base.documents), dtype=np.int32)

    def encode(self, texts: list[str]) -> np.ndarray:  # type: ignore[override]
        missing = [t for t in texts if t not in self.rows]
        if missing:
            raise KeyError(f"{len(missing)} text(s) have no precomputed vector, e.g. {missing[0][:60]!r}")
        rows = np.array([self.rows[t] for t in texts])
        # a text's first use is the real product (its exact vector), later uses are its copies
        copies = (self.uses[rows] > 0)[:, None].astype(np.float32)
        np.add.at(self.uses, rows, 1)
        noise = self.sigma * self.rng.standard_normal((len(rows), self.base_vectors.shape[1]), dtype=np.float32)
        vectors = self.base_vectors[rows] + copies * noise
        return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def streamed_items(path: Path, count: int, split: str = "train") -> Iterator[Item]:
    """``count`` items: the file's items, then copies of them with ids ``"{id}:{c}"``, streamed."""
    yielded = 0
    for c in range(count + 1):
        for item in ItemReader(path, split=split):
            if yielded >= count:
                return
            yield item if c == 0 else replace(item, id=f"{item.id}:{c}")
            yielded += 1


def ingest_worker(job: dict[str, Any]) -> dict[str, Any]:
    from ingest.index import Indexer
    from rag_pricer.knowledge.store import ProductStore

    embedder = PrecomputedEmbedder(Base.load(Path(job["work"])))
    location = job["location"]
    store = (
        ProductStore(host=location["host"], port=location["port"])
        if location.get("host")
        else ProductStore(location["path"])
    )
    before = memory_mb()
    report = Indexer(store, embedder, progress=False).run(streamed_items(Path(job["items"]), job["count"]))
    return {"report": report.as_dict(), "before_indexing": before, "after": memory_mb()}


def run_one(work: Path, items: Path, count: int, mode: str) -> dict[str, Any]:
    store = work / f"ingest-{mode}-{count}"
    server = ChromaServer(store) if mode == "server" else None
    job: dict[str, Any] = {"work": str(work), "items": str(items), "count": count, "location": {"path": str(store)}}
    try:
        if server is not None:
            server.start()
            job["location"] = server.location
        done = run_module("benchmarks.ingest_memory", "--worker", json.dumps(job))
        if done.returncode != 0:
            raise RuntimeError(f"ingest worker failed ({done.returncode}): {done.stderr[-2000:]}")
        row = {"count": count, "mode": mode, **json.loads(done.stdout.strip().splitlines()[-1])}
        if server is not None:
            row["server"] = server.memory()
        return row
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(store, ignore_errors=True)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    parser.add_argument("--modes", nargs="+", choices=["persistent", "server"], default=["persistent", "server"])
    parser.add_argument(
        "--source-store",
        type=Path,
        default=ROOT / "var" / "store",
        help="the built knowledge base (copied, never opened)",
    )
    parser.add_argument("--items", type=Path, default=ROOT.parent / "shared" / "data" / "items.jsonl.gz")
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "ingest_memory.json")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {
        "command": command_line("benchmarks.ingest_memory", argv if argv is not None else sys.argv[1:]),
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "load_average_1_5_15min": {"start": os.getloadavg()},
        "rows": [],
    }
    work = Path(tempfile.mkdtemp(prefix="rag-pricer-ingest-memory-", dir=args.work_dir))
    try:
        read_base(args.source_store, work).save(work)
        head = ("mode", "items", "stored", "items/s", "RSS before MB", "peak RSS MB", "server peak MB")
        print(f"{head[0]:<11} " + " ".join(f"{name:>14}" for name in head[1:]))
        for mode in args.modes:
            for count in args.counts:
                row = run_one(work, args.items, count, mode)
                results["rows"].append(row)
                results["load_average_1_5_15min"]["end"] = os.getloadavg()
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(results, indent=2))
                server = row.get("server", {}).get("peak_rss_mb", "-")
                cells = [count, row["report"]["stored"], row["report"]["items_per_s"], row["before_indexing"]["rss_mb"]]
                cells += [row["after"]["peak_rss_mb"], server]
                print(f"{mode:<11} " + " ".join(f"{cell:>14}" for cell in cells), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average at start {results['load_average_1_5_15min']['start']}, at end {os.getloadavg()}")
    return results


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        print(json.dumps(ingest_worker(json.loads(sys.argv[2]))))
    else:
        main()
