"""Estimation benchmark: latency of ``knn`` and ``rag`` (local model) and batch throughput.

    python -m benchmarks.estimate [--store var/store] [--items ../shared/data/items.jsonl.gz]
                                  [--n 200] [--rag-n 20] [--llm local] [--compare-knn]

Model loading is timed separately and excluded from the latencies. Prints the figures and
writes them to benchmarks/out/estimate.json, with the machine's load average before and after.
``--compare-knn`` also measures knn one at a time with each embedding configuration in turn
(torch fp32 as before, the ONNX default without a query cache, its fused export, and the
default with the cache: a first pass of new descriptions, then the same descriptions again). ``--rag-n 0``
skips rag.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.support import ROOT, command_line, percentiles_ms
from rag_pricer.api import Estimator
from rag_pricer.items import read_items


def percentiles(seconds: list[float]) -> dict[str, float]:
    return {**percentiles_ms(seconds), "max_ms": round(max(seconds) * 1000, 2)}


def one_at_a_time(pricer, items) -> list[float]:
    latencies = []
    for item in items:
        started = time.perf_counter()
        pricer.estimate(item.description)
        latencies.append(time.perf_counter() - started)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=ROOT / "var" / "store")
    parser.add_argument("--items", type=Path, default=ROOT.parent / "shared" / "data" / "items.jsonl.gz")
    parser.add_argument("--n", type=int, default=200, help="dev items for knn")
    parser.add_argument("--rag-n", type=int, default=20, help="dev items for rag (each is an LLM call)")
    parser.add_argument("--llm", default="local")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "estimate.json")
    parser.add_argument("--compare-knn", action="store_true", help="knn one at a time: torch, onnx, onnx + query cache")
    args = parser.parse_args()
    load_before = os.getloadavg()

    # No response cache: every rag call must reach the model; no query-embedding cache either:
    # the batch pass re-prices the same descriptions and must embed them again
    estimator = Estimator.from_settings(store_path=args.store, llm=args.llm, llm_cache_dir=None, embedding_cache_size=0)
    items = read_items(args.items, split="dev", limit=args.n)
    store_size = estimator.resources.store.count()

    started = time.perf_counter()
    knn = estimator.pricer("knn")
    knn.estimate(items[0].description)  # loads the embedding model and opens the store
    knn_load = time.perf_counter() - started

    single = one_at_a_time(knn, items)
    started = time.perf_counter()
    knn.estimate_many([item.description for item in items])
    batch_s = time.perf_counter() - started
    results = {
        "command": command_line("benchmarks.estimate", sys.argv[1:]),
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
        "store_items": store_size,
        "knn": {
            "items": len(items),
            "load_s": round(knn_load, 2),
            **percentiles(single),
            "one_at_a_time_per_s": round(len(items) / sum(single), 1),
            "batch_per_s": round(len(items) / batch_s, 1),
            "batch_speedup": round((len(items) / batch_s) / (len(items) / sum(single)), 2),
        },
    }

    results["embedding"] = {
        "backend": estimator.settings.embedding_backend,
        "threads": estimator.settings.embedding_threads,
        "query_cache_size": estimator.settings.embedding_cache_size,
    }
    if args.compare_knn:
        results["knn_compare"] = compare_knn(args.store, items)
    if args.rag_n > 0:
        results["rag"] = measure_rag(estimator, items[: args.rag_n], args.llm)
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    results["load_average_1_5_15min"] = {"before": load_before, "after": os.getloadavg()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


def compare_knn(store: Path, items) -> dict:
    """knn one at a time per embedding configuration, in turns on each description (so that
    they share the machine's noise); then the cached configuration on the same descriptions again."""
    configs: dict[str, dict[str, Any]] = {
        "torch fp32, no query cache (old default)": {"embedding_backend": "torch", "embedding_cache_size": 0},
        "onnx fp32, 1 thread, no query cache": {
            "embedding_backend": "onnx",
            "embedding_threads": 1,
            "embedding_cache_size": 0,
        },
        "onnx fp32 fused (optimize=True), 1 thread, no query cache": {
            "embedding_backend": "onnx",
            "embedding_threads": 1,
            "embedding_cache_size": 0,
            "fused": True,
        },
        "onnx fp32, 1 thread, query cache (default)": {"embedding_backend": "onnx", "embedding_threads": 1},
    }
    pricers = {}
    for name, overrides in configs.items():
        overrides = dict(overrides)
        fused = overrides.pop("fused", False)
        knn = Estimator.from_settings(store_path=store, llm_cache_dir=None, **overrides).pricer("knn")
        if fused:  # before the session is built: run the fused export
            knn.retriever.embedder.model.optimize = True
        knn.estimate("a warm-up description, priced by none of the measured calls")  # loads the model, opens the store
        pricers[name] = knn
    latencies: dict[str, list[float]] = {name: [] for name in pricers}
    busy = dict.fromkeys(pricers, 0.0)
    for item in items:
        for name, knn in pricers.items():
            started = time.process_time()
            latencies[name] += one_at_a_time(knn, [item])
            busy[name] += time.process_time() - started
    # CPU time (all threads of this process) per estimate: what one costs whatever else runs;
    # on a shared machine the wall-clock latency adds the time spent waiting for a core
    rows = {
        name: percentiles(found) | {"cpu_ms_per_estimate": round(busy[name] / len(items) * 1000, 2)}
        for name, found in latencies.items()
    }
    cached = "onnx fp32, 1 thread, query cache (default)"
    again = cached.replace("query cache", "query cache, the same descriptions again")
    rows[again] = percentiles(one_at_a_time(pricers[cached], items))
    return rows


def measure_rag(estimator, rag_items, llm: str) -> dict:
    started = time.perf_counter()
    rag = estimator.pricer("rag", llm=llm)
    rag.llm.ask(rag.messages(_query(rag_items[0]), []))  # loads the local model
    rag_load = time.perf_counter() - started
    rag_single = one_at_a_time(rag, rag_items)
    return {
        "llm": llm,
        "items": len(rag_items),
        "load_s": round(rag_load, 2),
        **percentiles(rag_single),
        "per_s": round(len(rag_items) / sum(rag_single), 2),
    }


def _query(item):
    from rag_pricer.query import Query

    return Query.of(item.description)


if __name__ == "__main__":
    main()
