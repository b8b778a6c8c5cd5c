"""Estimation benchmark: latency of ``knn`` and ``rag`` (local model) and batch throughput.

    python benchmarks/estimate.py [--store var/store] [--items ../shared/data/items.jsonl.gz]
                                  [--n 200] [--rag-n 20] [--llm local]

Model loading is timed separately and excluded from the latencies. Prints the figures and
writes them to benchmarks/out/estimate.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag_pricer.api import Estimator  # noqa: E402
from rag_pricer.items import read_items  # noqa: E402


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in seconds)
    pick = lambda q: ms[min(len(ms) - 1, int(round(q * (len(ms) - 1))))]  # noqa: E731
    return {"p50_ms": round(statistics.median(ms), 2), "p95_ms": round(pick(0.95), 2), "max_ms": round(ms[-1], 2)}


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
    args = parser.parse_args()

    # No response cache: every rag call must reach the model.
    estimator = Estimator.from_settings(store_path=args.store, llm=args.llm, llm_cache_dir=None)
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
        "command": "python " + " ".join(sys.argv),
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

    started = time.perf_counter()
    rag = estimator.pricer("rag", llm=args.llm)
    rag.llm.ask(rag.messages(_query(items[0]), []))  # loads the local model
    rag_load = time.perf_counter() - started
    rag_items = items[: args.rag_n]
    rag_single = one_at_a_time(rag, rag_items)
    results["rag"] = {
        "llm": args.llm,
        "items": len(rag_items),
        "load_s": round(rag_load, 2),
        **percentiles(rag_single),
        "per_s": round(len(rag_items) / sum(rag_single), 2),
    }
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


def _query(item):
    from rag_pricer.query import Query

    return Query.of(item.description)


if __name__ == "__main__":
    main()
