"""Scale benchmark: Chroma stores of 20k, 100k and 400k products, persistent and client/server.

    nice -n 10 python -m benchmarks.scale [--sizes 20000 100000 400000] [--modes persistent server]
        [--queries 200] [--sweep-size 100000] [--source-store var/store]

How the stores are built (an honest construction, not 400k real products):

- The **real vectors**: the 16,442 `train` products of the knowledge base, read back with their
  metadata and documents from a *copy* of ``--source-store`` (the store run.sh builds; the
  original is never opened), so no text is embedded again.
- **Perturbed copies** fill the store up to the size: copy ``c`` of product ``i`` is
  ``normalise(v_i + N(0, sigma^2 I))`` with ``sigma`` 0.025 per dimension (cosine ~0.9 to its
  original, printed as ``copy_cosine``), its metadata and document copied and the id
  ``"{id}:{c}"``. Copies cluster around the real products, so the graph holds many close
  neighbours: harder for HNSW's recall than 400k distinct products would be, not easier.
- **Queries**: the first ``--queries`` `dev` descriptions embedded with the project's embedder
  (MiniLM, torch): real queries, none of them in the store.

Per (size, mode), each step in a fresh process so that memory and open time are its own:

- *build*: an empty collection (``{"hnsw": {"space": "cosine"}}``, as ``ProductStore`` creates
  it) written with ``upsert`` in batches of Chroma's maximum, as the indexer writes, with
  documents and metadata: write throughput in vectors/s, the writer's peak RSS (and the
  server's, in client/server mode), disk size once closed.
- *open and query*: a cold open (new process; a restarted ``chroma run`` server; the OS page
  cache is warm, nothing was dropped) = client + collection + first query, which loads the
  HNSW index; then one query at a time at k=7 with the includes ``ProductStore.query`` asks
  for: plain, filtered on a category (``Electronics``, ~5% of the store) and on a price range
  ($20-$50, ~20%) for the first ``--filtered-queries`` of them; p50/p95 latency, RSS after the
  queries, and recall@7 against an exact (numpy, brute-force) search with the same filter.
- HNSW settings (persistent mode, at ``--sweep-size``): ``ef_search`` (changed with
  ``collection.modify``, no rebuild), ``max_neighbors`` (M) and ``ef_construction`` (rebuilds),
  each with its build time, query time and recall@7.

Figures go to benchmarks/out/scale.json (rewritten after each row, so a run stopped early keeps
what it measured) and a table is printed. Stores are written under ``--work-dir`` (default: a
new folder in /tmp) and deleted after each row. The load average is recorded at start and end.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.support import ROOT, command_line, free_port, percentiles_ms, run_module, wait_listening

K = 7
SIGMA = 0.025
COLLECTION = "products"
#: the filters timed beside the plain query: a category (~5% of the store) and a price band (~20%)
FILTERS: dict[str, dict[str, Any] | None] = {
    "plain": None,
    "category": {"category": "Electronics"},
    "price_range": {"$and": [{"price": {"$gte": 20.0}}, {"price": {"$lte": 50.0}}]},
}
#: ef_search values tried on the default build of the sweep size (Chroma's default is 100)
EF_SEARCH_SWEEP = (10, 25, 50, 200)
#: builds tried besides the default (M=16, ef_construction=100)
BUILD_SWEEP: tuple[dict[str, int], ...] = ({"max_neighbors": 8}, {"max_neighbors": 32}, {"ef_construction": 200})


# ----------------------------------------------------------------------------- data


@dataclass
class Base:
    """The real products: unit vectors with their ids, metadata and documents."""

    ids: list[str]
    vectors: np.ndarray
    metadatas: list[dict[str, Any]]
    documents: list[str]

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "base_vectors.npy", self.vectors)
        (folder / "base_records.json").write_text(
            json.dumps({"ids": self.ids, "metadatas": self.metadatas, "documents": self.documents})
        )

    @classmethod
    def load(cls, folder: Path) -> Base:
        records = json.loads((folder / "base_records.json").read_text())
        vectors = np.load(folder / "base_vectors.npy", allow_pickle=False)
        return cls(records["ids"], vectors, records["metadatas"], records["documents"])


def read_base(store: Path, work: Path, collection: str = COLLECTION) -> Base:
    """The vectors, metadata and documents of ``store``, read from a copy of it (never the original)."""
    import chromadb
    from chromadb.config import Settings

    copy = work / "source-copy"
    shutil.copytree(store, copy)
    client = chromadb.PersistentClient(path=str(copy), settings=Settings(anonymized_telemetry=False))
    found = client.get_collection(collection, embedding_function=None)
    ids: list[str] = []
    vectors: list[np.ndarray] = []
    metadatas: list[dict[str, Any]] = []
    documents: list[str] = []
    step = int(client.get_max_batch_size())
    for offset in range(0, found.count(), step):
        page = found.get(limit=step, offset=offset, include=["embeddings", "metadatas", "documents"])
        ids += page["ids"]
        vectors.append(np.asarray(page["embeddings"], dtype=np.float32))
        metadatas += [dict(m or {}) for m in page["metadatas"] or []]
        documents += [d or "" for d in page["documents"] or []]
    del found, client
    shutil.rmtree(copy, ignore_errors=True)
    return Base(ids, _normalised(np.concatenate(vectors)), metadatas, documents)


def _normalised(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def rounds(base: Base, size: int, sigma: float = SIGMA, seed: int = 0) -> Iterator[tuple[list[str], np.ndarray]]:
    """``(ids, vectors)`` of the store of ``size``, one round at a time: round 0 is the real
    products, round ``c`` their perturbed copies ``"{id}:{c}"`` (item ``j`` of a round comes from
    ``base`` row ``j``). Deterministic, and never the whole store in memory."""
    count = len(base.ids)
    for c in range(-(-size // count)):
        take = min(count, size - c * count)
        if c == 0:
            yield base.ids[:take], base.vectors[:take]
            continue
        noise = np.random.default_rng([seed, c]).standard_normal((take, base.vectors.shape[1]), dtype=np.float32)
        yield [f"{i}:{c}" for i in base.ids[:take]], _normalised(base.vectors[:take] + sigma * noise)


def matches(meta: dict[str, Any], where: dict[str, Any] | None) -> bool:
    """Whether ``meta`` passes one of the ``FILTERS`` (the exact search's side of the filter)."""
    if where is None:
        return True
    if "$and" in where:
        return all(matches(meta, clause) for clause in where["$and"])
    ((key, condition),) = where.items()
    value = meta.get(key)
    if not isinstance(condition, dict):
        return value == condition
    ((op, bound),) = condition.items()
    if value is None:
        return False
    return {"$gte": value >= bound, "$lte": value <= bound, "$gt": value > bound, "$lt": value < bound}[op]


def exact_top_k(
    base: Base, size: int, queries: np.ndarray, where: dict[str, Any] | None, k: int = K
) -> list[list[str]]:
    """The true ``k`` nearest ids of each query (cosine, brute force), store streamed round by round."""
    allowed = np.array([matches(meta, where) for meta in base.metadatas])
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_ids = np.empty((len(queries), 0), dtype=object)
    for ids, vectors in rounds(base, size):
        scores = queries @ vectors.T
        scores[:, ~allowed[: len(ids)]] = -np.inf
        top = np.argsort(-scores, axis=1)[:, :k]
        best_scores = np.concatenate([best_scores, np.take_along_axis(scores, top, axis=1)], axis=1)
        best_ids = np.concatenate([best_ids, np.asarray(ids, dtype=object)[top]], axis=1)
        keep = np.argsort(-best_scores, axis=1)[:, :k]
        best_scores = np.take_along_axis(best_scores, keep, axis=1)
        best_ids = np.take_along_axis(best_ids, keep, axis=1)
    return [
        [i for i, s in zip(row_ids, row_scores) if np.isfinite(s)] for row_ids, row_scores in zip(best_ids, best_scores)
    ]


def recall(found: list[list[str]], exact: list[list[str]]) -> float:
    """Mean share of the exact top-k that the index returned."""
    shares = [len(set(f) & set(e)) / len(e) for f, e in zip(found, exact) if e]
    return float(np.mean(shares)) if shares else float("nan")


def selectivity(base: Base, where: dict[str, Any] | None) -> float:
    """Share of the store that passes ``where`` (copies carry their source's metadata)."""
    return float(np.mean([matches(meta, where) for meta in base.metadatas]))


# ----------------------------------------------------------------------------- measuring


def memory_mb(pid: int | str = "self") -> dict[str, float]:
    """Resident memory now (VmRSS) and at its peak (VmHWM) of a process, in MB (Linux)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = round(int(value.split()[0]) / 1024, 1)
    return {"rss_mb": fields.get("VmRSS", float("nan")), "peak_rss_mb": fields.get("VmHWM", float("nan"))}


def disk_mb(path: Path) -> float:
    """Disk used under ``path`` (allocated blocks, as du counts them)."""
    return round(sum(f.stat().st_blocks * 512 for f in path.rglob("*") if f.is_file()) / 2**20, 1)


def client(location: dict[str, Any]) -> Any:
    """A Chroma client for ``{"path": DIR}`` or ``{"host": H, "port": P}``."""
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False)
    if location.get("host"):
        return chromadb.HttpClient(host=location["host"], port=location["port"], settings=settings)
    return chromadb.PersistentClient(path=location["path"], settings=settings)


def build(collection: Any, base: Base, size: int, batch: int) -> float:
    """Write the store of ``size`` into ``collection`` as the indexer does (upserts of ``batch``
    with documents and metadata); returns the seconds the writes took."""
    seconds = 0.0
    for ids, vectors in rounds(base, size):
        for start in range(0, len(ids), batch):
            rows = slice(start, start + batch)
            source = range(start, min(start + batch, len(ids)))
            metadatas = [base.metadatas[j] for j in source]
            documents = [base.documents[j] for j in source]
            started = time.perf_counter()
            collection.upsert(ids=ids[rows], embeddings=vectors[rows], metadatas=metadatas, documents=documents)
            seconds += time.perf_counter() - started
    return seconds


def time_queries(
    collection: Any, queries: np.ndarray, where: dict[str, Any] | None, k: int = K
) -> tuple[list[float], list[list[str]]]:
    """One query at a time, as the service asks: latencies (s) and the ids found."""
    latencies, found = [], []
    for query in queries:
        started = time.perf_counter()
        result = collection.query(
            query_embeddings=query[None, :], n_results=k, where=where, include=["metadatas", "distances", "documents"]
        )
        latencies.append(time.perf_counter() - started)
        found.append(result["ids"][0])
    return latencies, found


# ----------------------------------------------------------------------------- workers (fresh processes)


def build_worker(job: dict[str, Any]) -> dict[str, Any]:
    base = Base.load(Path(job["work"]))
    chroma = client(job["location"])
    hnsw = {"space": "cosine", **job.get("hnsw", {})}
    collection = chroma.create_collection(COLLECTION, embedding_function=None, configuration={"hnsw": hnsw})
    batch = int(chroma.get_max_batch_size())
    write_s = build(collection, base, job["size"], batch)
    started = time.perf_counter()
    count = collection.count()
    # the first query after the writes waits for whatever indexing is still pending
    collection.query(query_embeddings=base.vectors[:1], n_results=K)
    settle_s = time.perf_counter() - started
    return {
        "count": count,
        "write_s": round(write_s, 2),
        "write_vectors_per_s": round(job["size"] / write_s, 1),
        "first_query_after_write_s": round(settle_s, 3),
        "batch": batch,
        "writer": memory_mb(),
    }


def query_worker(job: dict[str, Any]) -> dict[str, Any]:
    queries = np.load(Path(job["work"]) / "queries.npy", allow_pickle=False)
    started = time.perf_counter()
    import chromadb  # noqa: F401  (timed apart: the import is not the store's open time)

    import_s = time.perf_counter() - started
    started = time.perf_counter()
    chroma = client(job["location"])
    collection = chroma.get_collection(COLLECTION, embedding_function=None)
    if job.get("ef_search"):
        collection.modify(configuration={"hnsw": {"ef_search": job["ef_search"]}})
        collection = chroma.get_collection(COLLECTION, embedding_function=None)
    got_s = time.perf_counter() - started
    collection.query(query_embeddings=queries[:1], n_results=K)  # loads the HNSW index
    open_s = time.perf_counter() - started
    for query in queries[:5]:  # warm-up, not timed
        collection.query(query_embeddings=query[None, :], n_results=K)
    result: dict[str, Any] = {
        "import_chromadb_s": round(import_s, 2),
        "client_and_collection_s": round(got_s, 3),
        "open_s": round(open_s, 3),
        "count": collection.count(),
        "queries": {},
    }
    for name in job["filters"]:
        # filtered queries are much slower: fewer of them keep the 400k row within a run
        asked = queries if name == "plain" else queries[: job.get("filtered_queries", len(queries))]
        latencies, found = time_queries(collection, asked, FILTERS[name])
        result["queries"][name] = {**percentiles_ms(latencies), "found": found}
    result["reader"] = memory_mb()
    return result


WORKERS = {"build": build_worker, "query": query_worker}


def run_worker(kind: str, job: dict[str, Any]) -> dict[str, Any]:
    """Run a worker in a new process (its memory and open time are its own); its last line is JSON."""
    done = run_module("benchmarks.scale", "--worker", kind, json.dumps(job))
    if done.returncode != 0:
        raise RuntimeError(f"{kind} worker failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


class ChromaServer:
    """``chroma run`` on a free loopback port over ``path``; started and stopped by us."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 120) -> float:
        self.port = free_port()
        chroma = Path(sys.executable).with_name("chroma")
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [str(chroma), "run", "--path", str(self.path), "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_listening(self.port, timeout_s, self.process)
        except SystemExit as error:  # exited, or not listening in time: the caller's error to handle
            self.stop()
            raise RuntimeError(f"chroma run: {error}") from None
        return time.perf_counter() - started

    @property
    def location(self) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": self.port}

    def memory(self) -> dict[str, float]:
        assert self.process is not None
        return memory_mb(self.process.pid)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


# ----------------------------------------------------------------------------- one row


def measure(
    work: Path,
    base: Base,
    size: int,
    mode: str,
    exact: dict[str, list[list[str]]],
    hnsw: dict[str, int] | None = None,
    ef_search: tuple[int, ...] = (),
    filtered_queries: int = 50,
) -> dict[str, Any]:
    """Build, reopen and query one store; ``exact`` holds the true top-k per filter."""
    store = work / f"store-{mode}-{size}"
    shutil.rmtree(store, ignore_errors=True)
    row: dict[str, Any] = {
        "size": size,
        "mode": mode,
        "hnsw": {"max_neighbors": 16, "ef_construction": 100, "ef_search": 100, **(hnsw or {})},
    }
    job: dict[str, Any] = {
        "work": str(work),
        "size": size,
        "hnsw": hnsw or {},
        "filters": list(exact),
        "filtered_queries": filtered_queries,
    }
    server = ChromaServer(store) if mode == "server" else None
    try:
        if server is None:
            job["location"] = {"path": str(store)}
            row["build"] = run_worker("build", job)
        else:
            server.start()
            row["build"] = run_worker("build", {**job, "location": server.location})
            row["build"]["server"] = server.memory()
            server.stop()
        row["disk_mb"] = disk_mb(store)
        if server is not None:
            row["server_start_s"] = round(server.start(), 2)
            job["location"] = server.location
        opened = run_worker("query", job)
        if server is not None:
            opened["server"] = server.memory()
        row["open"] = _scored(opened, exact)
        row["ef_search_sweep"] = [
            {"ef_search": ef, **_scored(run_worker("query", {**job, "ef_search": ef, "filters": ["plain"]}), exact)}
            for ef in ef_search
        ]
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(store, ignore_errors=True)
    return row


def _scored(result: dict[str, Any], exact: dict[str, list[list[str]]]) -> dict[str, Any]:
    for name, figures in result["queries"].items():
        figures["recall_at_7"] = round(recall(figures.pop("found"), exact[name]), 4)
    return result


# ----------------------------------------------------------------------------- main


def embed_queries(items_path: Path, count: int) -> np.ndarray:
    from rag_pricer.items import read_items
    from rag_pricer.knowledge.embeddings import Embedder

    dev = read_items(items_path, split="dev", limit=count)
    return Embedder().encode([item.description for item in dev])


def copy_cosine(base: Base) -> float:
    """Mean cosine of the first perturbed copies to their originals."""
    _, copies = list(itertools.islice(rounds(base, 2 * len(base.ids)), 2))[1]
    return float(np.mean(np.sum(base.vectors * copies, axis=1)))


def _latencies(queries: dict[str, Any], name: str) -> str:
    q = queries.get(name)
    return f"{q['p50_ms']:.1f}/{q['p95_ms']:.1f}" if q else "-"


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'size':>8} {'mode':<10} {'M':>3} {'efC':>4} {'efS':>4} {'write/s':>8} {'disk MB':>8} {'open s':>7} "
        f"{'plain p50/p95 ms':>17} {'cat p50/p95':>13} {'price p50/p95':>14} {'R@7 plain/cat/price':>20} "
        f"{'RSS w/r MB':>12} {'server MB':>10}"
    )
    lines = [head]
    for row in rows:
        for variant in [None, *row.get("ef_search_sweep", [])]:
            opened = row["open"] if variant is None else variant
            queries = opened["queries"]
            hnsw = dict(row["hnsw"], **({"ef_search": variant["ef_search"]} if variant else {}))
            cell = functools.partial(_latencies, queries)
            recalls = "/".join(f"{queries[n]['recall_at_7']:.3f}" if n in queries else "-" for n in FILTERS)
            server = row["build"].get("server", {}).get("peak_rss_mb")
            lines.append(
                f"{row['size']:>8} {row['mode']:<10} {hnsw['max_neighbors']:>3} {hnsw['ef_construction']:>4} "
                f"{hnsw['ef_search']:>4} {row['build']['write_vectors_per_s'] if variant is None else '':>8} "
                f"{row['disk_mb']:>8} {opened['open_s']:>7} {cell('plain'):>17} {cell('category'):>13} "
                f"{cell('price_range'):>14} {recalls:>20} "
                f"{row['build']['writer']['peak_rss_mb']:>5.0f}/{opened['reader']['peak_rss_mb']:<6.0f} "
                f"{server if server is not None else '-':>10}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000, 400_000])
    parser.add_argument("--modes", nargs="+", choices=["persistent", "server"], default=["persistent", "server"])
    parser.add_argument("--queries", type=int, default=200, help="dev descriptions used as queries")
    parser.add_argument(
        "--filtered-queries", type=int, default=50, help="of those, how many are timed with each filter"
    )
    parser.add_argument("--sweep-size", type=int, default=100_000, help="size of the HNSW settings sweep (0: none)")
    parser.add_argument(
        "--source-store",
        type=Path,
        default=ROOT / "var" / "store",
        help="the built knowledge base (copied, never opened)",
    )
    parser.add_argument("--items", type=Path, default=ROOT.parent / "shared" / "data" / "items.jsonl.gz")
    parser.add_argument("--work-dir", type=Path, default=None, help="where stores are built (default: new /tmp folder)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "scale.json")
    args = parser.parse_args(argv)

    load_start = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="rag-pricer-scale-", dir=args.work_dir))
    try:
        started = time.perf_counter()
        base = read_base(args.source_store, work)
        base.save(work)
        read_s = time.perf_counter() - started
        queries = embed_queries(args.items, args.queries)
        np.save(work / "queries.npy", queries)
        results: dict[str, Any] = {
            "command": command_line("benchmarks.scale", argv if argv is not None else sys.argv[1:]),
            "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
            "chromadb": __import__("chromadb").__version__,
            "construction": {
                "real_vectors": len(base.ids),
                "read_back_s": round(read_s, 1),
                "sigma_per_dim": SIGMA,
                "copy_cosine_to_original_mean": round(copy_cosine(base), 4),
                "queries": len(queries),
                "filtered_queries": min(args.filtered_queries, len(queries)),
                "k": K,
                "filters": {
                    name: {"where": where, "selectivity": round(selectivity(base, where), 4)}
                    for name, where in FILTERS.items()
                },
            },
            "load_average_1_5_15min": {"start": load_start},
            "rows": [],
            "build_sweep": [],
        }
        exact_by_size: dict[int, dict[str, list[list[str]]]] = {}

        def exact(size: int) -> dict[str, list[list[str]]]:
            if size not in exact_by_size:
                exact_by_size[size] = {name: exact_top_k(base, size, queries, where) for name, where in FILTERS.items()}
            return exact_by_size[size]

        def save() -> None:
            results["load_average_1_5_15min"]["end"] = os.getloadavg()
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=2))

        for size in args.sizes:
            for mode in args.modes:
                sweep = EF_SEARCH_SWEEP if mode == "persistent" and size == args.sweep_size else ()
                row = measure(
                    work, base, size, mode, exact(size), ef_search=sweep, filtered_queries=args.filtered_queries
                )
                results["rows"].append(row)
                save()
                print(table([row]).splitlines()[-1 - len(sweep)], flush=True)
        if args.sweep_size:
            for hnsw in BUILD_SWEEP:
                only_plain = {"plain": exact(args.sweep_size)["plain"]}
                results["build_sweep"].append(measure(work, base, args.sweep_size, "persistent", only_plain, hnsw=hnsw))
                save()
        save()
        print(table(results["rows"] + results["build_sweep"]))
        print(f"load average at start {load_start}, at end {results['load_average_1_5_15min']['end']}")
        return results
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        print(json.dumps(WORKERS[sys.argv[2]](json.loads(sys.argv[3]))))
    else:
        main()
