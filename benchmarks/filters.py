"""Filtered search at scale: Chroma's ``where`` vs over-fetching vs category partitions, and
the ``ef_search`` sweep, on stores of 100k and 400k products, persistent and client/server.

    nice -n 10 python -m benchmarks.filters --work-dir /tmp/filters-bench [--sizes 100000 400000]
        [--modes persistent server] [--queries 200] [--slow-queries 20] [--rounds 2] [--quick]

``--quick``: 20,000 products, 40 queries, one round, persistent only (the store is built first:
not finished in 8 minutes on the loaded 2-core machine; later runs reuse it).

The stores are ``benchmarks/scale.py``'s construction (the 16,442 real vectors of
``--source-store``, read from a copy of it, plus perturbed copies ``"{id}:{c}"`` carrying their
source's metadata), built into ``--work-dir/store-SIZE`` when missing and then partitioned by
category (``ProductStore.partition_by_category``), both timed; an existing store there is
reused as it is (build it once, measure many times).

Queries: the first ``--queries`` dev descriptions (MiniLM), k 7, through
``Retriever.search_vectors`` as knn searches. Filters: a fixed category (Electronics, 5% of the
store) and price range ($20-$50, 20%), as scale.py times them, and per query its own category,
a band of half to twice its price, and both. Methods, interleaved round by round in one process
per (size, mode): Chroma's ``where`` (``filter_overfetch=0``), over-fetching the whole store
(the store's partitions ignored), and the default (partitions for a category, over-fetch).
Chroma's ``where`` and the plain over-fetch take seconds per query at 400k: they run on the
first ``--slow-queries`` queries only. Recall@7 is against an exact search: numpy over the
vectors of the construction, the same filter applied to each product's metadata.

``ef_search`` sweep: 50, 100, 200, 400 set with ``collection.modify`` (no rebuild) and measured
in a new process (a loaded index keeps the value it was opened with; a server is restarted),
plain queries (a filtered search asks HNSW for 100 or more, past these values); the store's
value is put back afterwards.

Writes benchmarks/out/filters.json (after each step) with the CPU flags, the load average at
each step and the command; prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import scale
from benchmarks.support import ROOT, command_line, percentiles_ms, run_module

K = 7
EF_SEARCH = (50, 100, 200, 400)
FIXED = {"category Electronics": {"category": "Electronics"}, "price $20-50": {"min_price": 20.0, "max_price": 50.0}}
#: how each method searches: SearchOptions fields, and whether the store's partitions are used
METHODS: dict[str, dict[str, Any]] = {
    "chroma where": {"options": {"filter_overfetch": 0}, "partitions": False, "slow": True},
    "over-fetch": {"options": {}, "partitions": False, "slow": True},
    "default": {"options": {}, "partitions": True, "slow": False},
}


def filters_of(category: str | None, price: float) -> dict[str, dict[str, Any]]:
    """The filters of one query (SearchOptions fields): the fixed ones, then its own."""
    own = category or "Appliances"
    band = {"min_price": round(price / 2, 2), "max_price": round(price * 2, 2)}
    return {
        **FIXED,
        "own category": {"category": own},
        "own price band": band,
        "own category + band": {"category": own, **band},
    }


def cpu_flags() -> str:
    """The CPU's model and its vector extensions (what numpy and hnswlib can use)."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    wanted = [f for f in flags if f.startswith(("avx", "amx", "sse4", "fma"))]
    return f"{model}; {' '.join(wanted)}"


# ----------------------------------------------------------------------------- exact answers


def exact_filtered(
    base: scale.Base, size: int, queries: np.ndarray, allowed: np.ndarray, k: int = K
) -> list[list[str]]:
    """The true ``k`` nearest ids of each query among the products it allows (``allowed``: one
    row of base rows per query; copies carry their source's metadata), store streamed by rounds."""
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_ids = np.empty((len(queries), 0), dtype=object)
    for ids, vectors in scale.rounds(base, size):
        scores = queries @ vectors.T
        scores[~allowed[:, : len(ids)]] = -np.inf
        top = np.argsort(-scores, axis=1)[:, :k]
        best_scores = np.concatenate([best_scores, np.take_along_axis(scores, top, axis=1)], axis=1)
        best_ids = np.concatenate([best_ids, np.asarray(ids, dtype=object)[top]], axis=1)
        keep = np.argsort(-best_scores, axis=1, kind="stable")[:, :k]
        best_scores = np.take_along_axis(best_scores, keep, axis=1)
        best_ids = np.take_along_axis(best_ids, keep, axis=1)
    return [[i for i, s in zip(r, v) if np.isfinite(s)] for r, v in zip(best_ids, best_scores)]


def allowed_rows(base: scale.Base, filters: list[dict[str, Any]]) -> np.ndarray:
    """Per query, which base rows pass its filter (SearchOptions fields)."""
    categories = np.array([m.get("category") or "" for m in base.metadatas], dtype=object)
    prices = np.array([float(m.get("price", np.nan)) for m in base.metadatas])
    rows = np.ones((len(filters), len(base.ids)), dtype=bool)
    for q, f in enumerate(filters):
        if f.get("category"):
            rows[q] &= categories == f["category"]
        if f.get("min_price") is not None:
            rows[q] &= prices >= f["min_price"]
        if f.get("max_price") is not None:
            rows[q] &= prices <= f["max_price"]
    return rows


# ----------------------------------------------------------------------------- workers (fresh processes)


def _store(location: dict[str, Any]) -> Any:
    from rag_pricer.knowledge.store import ProductStore

    if location.get("host"):
        return ProductStore(None, host=location["host"], port=location["port"])
    return ProductStore(location["path"])


def search_worker(job: dict[str, Any]) -> dict[str, Any]:
    """Each (filter, method) one query at a time, methods in turns, round by round."""
    from rag_pricer.knowledge.retrieval import Retriever, SearchOptions
    from rag_pricer.query import Query

    vectors = np.load(job["queries"], allow_pickle=False)
    store = _store(job["location"])
    partitioned = store.partitioned()
    retriever = Retriever(None, store)  # type: ignore[arg-type]  (vectors come embedded)
    queries = [Query(f"dev query {i}") for i in range(len(vectors))]
    retriever.search_vectors(queries[:3], vectors[:3], SearchOptions(k=K))  # loads the index
    # each category's partition loads its index on its first search (once per process): timed apart
    started = time.perf_counter()
    for category in sorted(
        {f[name]["category"] for f in job.get("filters", []) for name in f if "category" in f[name]}
    ):
        retriever.search_vectors(queries[:1], vectors[:1], SearchOptions(k=K, category=category))
    warm_s = time.perf_counter() - started
    latencies: dict[str, list[float]] = {}
    found: dict[str, list[list[str]]] = {}
    names = ["plain", *job["filters"][0]] if job.get("filters") else ["plain"]
    for round_ in range(job["rounds"]):
        for method in job["methods"]:
            spec = METHODS[method]
            if spec["slow"] and round_ > 0:
                continue  # seconds a query at 400k: the slow methods are timed in the first round only
            store.partitioned = (lambda: partitioned) if spec["partitions"] else (lambda: False)  # type: ignore[method-assign]
            for name in names:
                if name == "plain" and method != job["methods"][-1]:
                    continue  # the plain query once per round
                count = job["slow_queries"] if spec["slow"] else len(vectors)
                key = "plain" if name == "plain" else f"{name} | {method}"
                ids = []
                for q in range(min(count, len(vectors))):
                    fields = {} if name == "plain" else job["filters"][q][name]
                    options = SearchOptions(k=K, **fields, **spec["options"])
                    started = time.perf_counter()
                    hits = retriever.search_vectors(queries[q : q + 1], vectors[q : q + 1], options)[0]
                    latencies.setdefault(key, []).append(time.perf_counter() - started)
                    ids.append([n.id for n in hits])
                found[key] = ids
    return {
        "count": store.count(),
        "partitioned": partitioned,
        "first_search_of_each_category_s": round(warm_s, 2),
        "results": {
            key: {**percentiles_ms(latencies[key]), "n": len(latencies[key]), "found": found[key]} for key in found
        },
        "load_average": os.getloadavg(),
        "reader": scale.memory_mb(),
    }


def ef_worker(job: dict[str, Any]) -> dict[str, Any]:
    """Set ``ef_search`` on the main collection and its partitions (no rebuild)."""
    store = _store(job["location"])
    client = store.client
    names = [c if isinstance(c, str) else c.name for c in client.list_collections()]
    before = client.get_collection("products", embedding_function=None).configuration["hnsw"]["ef_search"]
    for name in names:
        client.get_collection(name, embedding_function=None).modify(configuration={"hnsw": {"ef_search": job["ef"]}})
    return {"before": before, "collections": len(names)}


WORKERS = {"search": search_worker, "ef": ef_worker}


def run_worker(kind: str, job: dict[str, Any]) -> dict[str, Any]:
    done = run_module("benchmarks.filters", "--worker", kind, json.dumps(job))
    if done.returncode != 0:
        raise RuntimeError(f"{kind} worker failed ({done.returncode}): {done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# ----------------------------------------------------------------------------- main


def ensure_store(work: Path, base: scale.Base, size: int, only: list[str]) -> dict[str, Any]:
    """The store of ``size`` under ``work``, built and partitioned when missing (timed); with
    ``only``, the partitions of those categories alone (see ``partition``)."""
    store = work / f"store-{size}"
    made = store / "rag-pricer-bench.json"
    if made.exists():
        return dict(json.loads(made.read_text()), reused=True)
    shutil.rmtree(store, ignore_errors=True)
    built = scale.run_worker("build", {"work": str(work), "size": size, "location": {"path": str(store)}})
    started = time.perf_counter()
    done = run_module("benchmarks.filters", "--partition", str(store), *only)  # the index it loads is its own
    if done.returncode != 0:
        raise RuntimeError(f"partitioning failed: {done.stderr[-3000:]}")
    record = {
        "build": built,
        "partition_s": round(time.perf_counter() - started, 1),
        "partitions": json.loads(done.stdout.strip().splitlines()[-1]),
        "load_average": os.getloadavg(),
    }
    made.write_text(json.dumps(record))
    return record


def score(result: dict[str, Any], exact: dict[str, list[list[str]]]) -> dict[str, Any]:
    for key, figures in result["results"].items():
        name = key.split(" | ")[0]
        found = figures.pop("found")
        figures["recall_at_7"] = round(scale.recall(found, exact[name][: len(found)]), 4)
    return result


def measure(
    location: dict[str, Any], job: dict[str, Any], exact: dict[str, list[list[str]]], server: Any = None
) -> dict[str, Any]:
    """The methods compared, then the ef_search sweep (restarting ``server`` after each change)."""
    row: dict[str, Any] = {"search": score(run_worker("search", {**job, "location": location}), exact)}
    print(table(row["search"]["results"]), flush=True)
    sweep = []
    original = None
    for ef in [*job["ef_search"], None] if job["ef_search"] else []:
        setting = run_worker("ef", {"location": location, "ef": ef if ef is not None else original})
        original = original or setting["before"]
        if server is not None:
            server.stop()
            server.start()
            location.update(server.location)
        if ef is None:
            break
        # plain queries only: a filtered search over-fetches 100 or more, past any ef_search swept
        measured = run_worker("search", {**job, "location": location, "methods": ["default"], "filters": []})
        sweep.append({"ef_search": ef, **score(measured, exact)})
        plain = sweep[-1]["results"]["plain"]
        print(f"  ef_search {ef}: plain p50/p95 {plain['p50_ms']}/{plain['p95_ms']} ms, recall {plain['recall_at_7']}")
    row["ef_search_sweep"] = sweep
    return row


def table(results: dict[str, Any]) -> str:
    lines = [f"  {'filter | method':<46} {'p50 ms':>9} {'p95 ms':>9} {'recall@7':>9} {'n':>5}"]
    for key, r in results.items():
        lines.append(f"  {key:<46} {r['p50_ms']:>9.1f} {r['p95_ms']:>9.1f} {r['recall_at_7']:>9.3f} {r['n']:>5}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 400_000])
    parser.add_argument("--modes", nargs="+", choices=["persistent", "server"], default=["persistent", "server"])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--slow-queries", type=int, default=20, help="queries timed with the slow methods")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    parser.add_argument("--ef-search", type=int, nargs="*", default=list(EF_SEARCH))
    parser.add_argument(
        "--partition-only", nargs="*", default=[], help="partition a new store for these categories only (faster)"
    )
    parser.add_argument("--quick", action="store_true", help="20k products, 40 queries, one round, persistent")
    parser.add_argument("--work-dir", type=Path, default=None, help="where the stores are kept (reused when there)")
    parser.add_argument("--source-store", type=Path, default=ROOT / "var" / "store")
    parser.add_argument("--items", type=Path, default=ROOT.parent / "shared" / "data" / "items.jsonl.gz")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "filters.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.modes, args.queries, args.slow_queries, args.rounds = [20_000], ["persistent"], 40, 10, 1
    from rag_pricer.items import read_items

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="rag-pricer-filters-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "command": command_line("benchmarks.filters", argv if argv is not None else sys.argv[1:]),
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "cpu": cpu_flags(),
        "chromadb": __import__("chromadb").__version__,
        "load_average_start": os.getloadavg(),
        "sizes": {},
    }

    def save() -> None:
        results["load_average_end"] = os.getloadavg()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))

    if not (work / "base_vectors.npy").exists():
        if not args.source_store.is_dir():
            raise SystemExit(f"no store at {args.source_store}: build it (run.sh) or pass --source-store")
        scale.read_base(args.source_store, work).save(work)
    base = scale.Base.load(work)
    dev = read_items(args.items, split="dev", limit=args.queries)
    queries_path = work / f"queries-{len(dev)}.npy"
    if not queries_path.exists():
        np.save(queries_path, scale.embed_queries(args.items, len(dev)))
    queries = np.load(queries_path)
    filters = [filters_of(item.category, item.price) for item in dev]
    for size in args.sizes:
        print(f"{size:,} products: store ...", flush=True)
        entry: dict[str, Any] = {"store": ensure_store(work, base, size, args.partition_only), "modes": {}}
        results["sizes"][str(size)] = entry
        exact = {"plain": scale.exact_top_k(base, size, queries, None)}
        for name in filters[0]:
            exact[name] = exact_filtered(base, size, queries, allowed_rows(base, [f[name] for f in filters]))
        job = {
            "queries": str(queries_path),
            "filters": filters,
            "methods": args.methods,
            "rounds": args.rounds,
            "slow_queries": args.slow_queries,
            "ef_search": args.ef_search,
        }
        for mode in args.modes:
            print(f"{size:,} products, {mode}:", flush=True)
            store = work / f"store-{size}"
            if mode == "server":
                server = scale.ChromaServer(store)
                server.start()
                try:
                    entry["modes"][mode] = measure(dict(server.location), job, exact, server)
                    entry["modes"][mode]["server"] = server.memory()
                finally:
                    server.stop()
            else:
                entry["modes"][mode] = measure({"path": str(store)}, job, exact)
            save()
    save()
    print(f"load average at start {results['load_average_start']}, at end {results['load_average_end']}")
    return results


def partition(path: str, only: list[str]) -> None:
    """Partition the store at ``path`` (``ProductStore.partition_by_category``); with ``only``,
    the partitions of those categories alone (a benchmark's shortcut when there is no time to
    write them all: the other categories are then searched as an unpartitioned store's, and the
    store must not be written to afterwards, since its writers would not know which are missing)."""
    from rag_pricer.knowledge.store import PARTITIONED, ProductStore

    store = ProductStore(path)
    if not only:
        counts = store.partition_by_category()
    else:
        counts = {}
        collection = store.collection()
        step = store.max_batch_size
        for offset in range(0, collection.count(), step):
            page = collection.get(limit=step, offset=offset, include=["embeddings", "metadatas"])
            rows = [r for r, m in enumerate(page["metadatas"]) if (m or {}).get("category") in only]
            vectors = np.asarray(page["embeddings"], dtype=np.float32)[rows]
            categories = [page["metadatas"][r]["category"] for r in rows]
            store._repartition([page["ids"][r] for r in rows], categories, vectors, {})
            for category in categories:
                counts[category] = counts.get(category, 0) + 1
        collection.modify(metadata={**(collection.metadata or {}), PARTITIONED: True})
    print(json.dumps({"products": sum(counts.values()), "categories": len(counts), "counts": counts, "only": only}))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        print(json.dumps(WORKERS[sys.argv[2]](json.loads(sys.argv[3]))))
    elif len(sys.argv) >= 3 and sys.argv[1] == "--partition":
        partition(sys.argv[2], sys.argv[3:])
    else:
        main()
