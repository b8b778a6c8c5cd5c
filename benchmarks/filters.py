"""Filtered retrieval: Chroma's ``where`` filter vs over-fetching the nearest products and
filtering them in Python (``SearchOptions.filter_overfetch``), at the store's real size.

    python -m benchmarks.filters --store var/store [--n 200] [--overfetch 50 100 200] [--rounds 3]

The queries are the first ``--n`` dev descriptions, embedded once beforehand (the embedding is
not timed: it is the same for every method). Filters per query: its own category (Appliances
for the items that have none), a price band of half to twice its price, and both. Each
(filter, method) runs one query at a time, the methods in turns round by round; the latencies
are those of ``Retriever.search_vectors`` (k 7, as knn), with the share of queries whose
neighbours differ from Chroma's ``where`` and the share that fell back to it. Writes
benchmarks/out/filters.json with the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from benchmarks.support import ROOT, command_line, percentiles_ms
from rag_pricer.items import read_items
from rag_pricer.knowledge.embeddings import Embedder
from rag_pricer.knowledge.retrieval import Retriever, SearchOptions
from rag_pricer.knowledge.store import ProductStore
from rag_pricer.query import Query


def filters_of(item) -> dict[str, SearchOptions]:
    category = item.category or "Appliances"
    band = {"min_price": round(item.price / 2, 2), "max_price": round(item.price * 2, 2)}
    return {
        "none": SearchOptions(k=7),
        "category": SearchOptions(k=7, category=category),
        "price band": SearchOptions(k=7, **band),
        "category + price band": SearchOptions(k=7, category=category, **band),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=ROOT / "var" / "store")
    parser.add_argument("--items", type=Path, default=ROOT.parent / "shared" / "data" / "items.jsonl.gz")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--overfetch", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "filters.json")
    args = parser.parse_args()
    load_before = os.getloadavg()

    store = ProductStore(args.store)
    items = read_items(args.items, split="dev", limit=args.n)
    queries = [Query.of(item) for item in items]
    vectors = Embedder().encode([query.text for query in queries])
    retriever = Retriever(Embedder(), store)
    methods = {"chroma where": 0, **{f"over-fetch {n}": n for n in args.overfetch}}
    retriever.search_vectors(queries[:2], vectors[:2])  # opens the store and loads the HNSW index

    latencies = {(f, m): [] for f in filters_of(items[0]) for m in methods}
    found: dict[tuple[str, str], list[list[str]]] = {}
    fallbacks = {key: 0 for key in latencies}
    for _ in range(args.rounds):
        for method, overfetch in methods.items():
            for name in filters_of(items[0]):
                ids = []
                for query, vector, item in zip(queries, vectors, items):
                    options = replace(filters_of(item)[name], filter_overfetch=overfetch)
                    started = time.perf_counter()
                    hits = retriever.search_vectors([query], vector[None, :], options)[0]
                    latencies[name, method].append(time.perf_counter() - started)
                    ids.append([n.id for n in hits])
                found[name, method] = ids
    # the fallbacks, counted once outside the timed loop: queries left short by the over-fetch
    for name in filters_of(items[0]):
        for method, overfetch in methods.items():
            if overfetch:
                for vector, item in zip(vectors, items):
                    options = filters_of(item)[name]
                    if options.where() is not None:
                        nearest = store.query(vector, k=overfetch)[0]
                        fallbacks[name, method] += sum(map(options.matches, nearest)) < options.k + 1

    rows = []
    for (name, method), seconds in latencies.items():
        reference = found[name, "chroma where"]
        differ = sum(a != b for a, b in zip(found[name, method], reference))
        rows.append(
            {
                "filter": name,
                "method": method,
                **percentiles_ms(seconds),
                "queries_whose_neighbours_differ_from_chroma_where": differ,
                "queries_falling_back_to_chroma_where": fallbacks[name, method],
            }
        )
        print(
            f"{name:>22} {method:>14}  p50 {rows[-1]['p50_ms']:7.2f} ms  p95 {rows[-1]['p95_ms']:7.2f} ms  "
            f"differ {differ:3d}  fallback {fallbacks[name, method]:3d}"
        )
    results = {
        "command": command_line("benchmarks.filters", sys.argv[1:]),
        "store_items": store.count(),
        "queries": len(queries),
        "rounds": args.rounds,
        "rows": rows,
        "load_average_1_5_15min": {"before": load_before, "after": os.getloadavg()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results["load_average_1_5_15min"]))


if __name__ == "__main__":
    main()
