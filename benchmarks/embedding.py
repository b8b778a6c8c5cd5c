"""Embedding runtimes side by side in one run: today's ONNX fp32 path, the optimised one, torch.

    python -m benchmarks.embedding [--n 1000] [--queries 1000] [--rounds 3] [--store var/store] [--quick]

Each runtime embeds the same ``--n`` train descriptions in turn, round by round, so that they
share the machine's noise; per round it reports items/s and the CPU seconds per 1,000 texts
(``time.process_time``, all threads of this process: what the text costs whatever else runs),
and the ratio of each to the plain ONNX path of the same round. Agreement: cosine of each
runtime's vectors to torch's (the reference), and top-5 neighbours of ``--queries`` dev
descriptions (the dev split, then ``items_extra``) searched in a copy of the store (the original
is only read), compared with the neighbours of torch's query vectors.

Runtimes: ``torch`` (sentence-transformers fp32), ``onnx plain, char-sorted`` (the path before
this change: the plain export, batches of 32 cut from texts sorted by characters and padded by
the tokenizer), ``onnx plain, token-sorted`` (the default: the plain export with this version's
batching, sorted by token count, padded per batch) and ``onnx fused`` (``optimize=True``:
onnxruntime's BERT fusions of the same export, the same batching). Threads: onnxruntime's
default (one per physical core) unless ``--threads``.

Writes ``benchmarks/out/embedding.json`` with the CPU's model name and flags and the load
averages before, after each round and after. ``--quick``: 200 texts, 200 queries, 2 rounds.

Then the fusions alone: the plain and the fused export's ``session.run`` on the same token
batches, alternated batch by batch (1 thread, timed by the calling thread's CPU clock, where
onnxruntime computes with one thread; then the default threads, by the process's CPU clock).

``--shorter 128 64`` also measures what a shorter maximum sequence length (it changes the
vectors) costs in accuracy: the store's products and 500 dev descriptions embedded again, cut at
that many tokens, then knn (k 7, similarity ** 4, exact search) on dev with the store's vectors
vs the shorter ones; the MAE difference with a paired bootstrap 95% interval, and the CPU
seconds per 1,000 texts of each length. Long: it embeds the whole store once per length.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.support import ROOT, command_line
from rag_pricer.items import read_items
from rag_pricer.knowledge.embeddings import Embedder, resolve_model
from rag_pricer.knowledge.onnx_embedder import OnnxEmbedder
from rag_pricer.knowledge.store import ProductStore

#: the flags that decide which kernels the runtimes pick
KERNEL_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile")


def cpu() -> dict[str, object]:
    """The CPU's model name, core count and kernel-relevant flags (from /proc/cpuinfo)."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    flags = set(fields.get("flags", "").split())
    return {
        "model": fields.get("model name"),
        "cpus": os.cpu_count(),
        "kernel_flags": [flag for flag in KERNEL_FLAGS if flag in flags],
        "avx512": "avx512f" in flags,
        "amx": "amx_tile" in flags,
    }


class CharSortedOnnx(OnnxEmbedder):
    """The ONNX path before this version: the plain export, batches cut from the texts sorted by
    characters and padded by the tokenizer (kept here to measure the change against)."""

    def __init__(self, threads: int | None) -> None:
        super().__init__(resolve_model("all-MiniLM-L6-v2"), quantize=False, optimize=False, threads=threads)

    def encode(self, texts):  # type: ignore[no-untyped-def]
        texts = [str(text).strip() for text in texts]
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        session = self.session
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            tokens = self.tokenizer(
                [texts[i] for i in rows], padding=True, truncation="longest_first", max_length=self.max_tokens
            )
            vectors[rows] = self._run(session, dict(tokens))
        return vectors


def runtimes(threads: int | None) -> dict[str, Callable[[list[str]], np.ndarray]]:
    model = resolve_model("all-MiniLM-L6-v2")
    return {
        "torch fp32": Embedder(backend="torch").encode,
        "onnx plain, char-sorted (before)": CharSortedOnnx(threads).encode,
        "onnx plain, token-sorted (default)": OnnxEmbedder(model, quantize=False, threads=threads).encode,
        "onnx fused (optimize=True)": OnnxEmbedder(model, quantize=False, optimize=True, threads=threads).encode,
    }


def timed(
    encode: Callable[[list[str]], np.ndarray], texts: list[str], chunk: int = 512
) -> tuple[np.ndarray, float, float]:
    """Vectors, wall seconds and CPU seconds of ``texts`` embedded in chunks, as the indexer does."""
    wall, busy = time.perf_counter(), time.process_time()
    parts = [encode(texts[start : start + chunk]) for start in range(0, len(texts), chunk)]
    return np.concatenate(parts), time.perf_counter() - wall, time.process_time() - busy


def neighbours(store: ProductStore, vectors: np.ndarray) -> list[list[str]]:
    return [[n.id for n in found] for found in store.query(vectors, k=5)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = ROOT.parent / "shared" / "data"
    parser.add_argument("--items", type=Path, default=data / "items.jsonl.gz")
    parser.add_argument("--extra", type=Path, default=data / "items_extra.jsonl.gz", help="more dev-like queries")
    parser.add_argument("--store", type=Path, default=ROOT / "var" / "store", help="copied, never written")
    parser.add_argument("--n", type=int, default=1000, help="train descriptions embedded per runtime and round")
    parser.add_argument("--queries", type=int, default=1000, help="dev queries: top-5 neighbours compared")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime threads [one per physical core]")
    parser.add_argument("--quick", action="store_true", help="200 texts, 200 queries, 2 rounds")
    parser.add_argument("--shorter", type=int, nargs="*", default=[], help="max token counts to price on dev")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "embedding.json")
    args = parser.parse_args()
    if args.quick:
        args.n, args.queries, args.rounds = 200, 200, 2
    if not args.store.exists():
        raise SystemExit(f"no store at {args.store}: build it with `rag-pricer-ingest index` or pass --store")

    texts = [item.description for item in read_items(args.items, split="train", limit=args.n)]
    queries = [item.description for item in read_items(args.items, split="dev", limit=args.queries)]
    if len(queries) < args.queries and args.extra.is_file():
        queries += [item.description for item in read_items(args.extra, limit=args.queries - len(queries))]
    load = {"before": os.getloadavg(), "rounds": []}

    encoders = runtimes(args.threads)
    started = {}
    for name, encode in encoders.items():  # load, build (once per cache) and warm up, untimed
        t0 = time.perf_counter()
        encode(texts[:8])
        started[name] = round(time.perf_counter() - t0, 2)
    rates: dict[str, list[float]] = {name: [] for name in encoders}
    cpu_ms: dict[str, list[float]] = {name: [] for name in encoders}
    vectors: dict[str, np.ndarray] = {}
    for round_ in range(args.rounds):
        for name, encode in encoders.items():
            vectors[name], wall, busy = timed(encode, texts)
            rates[name].append(len(texts) / wall)
            cpu_ms[name].append(busy / len(texts) * 1000)
            print(f"round {round_ + 1} {name:34} {rates[name][-1]:7.1f} items/s {cpu_ms[name][-1]:6.1f} CPU s/1000")
        load["rounds"].append(os.getloadavg())

    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "store"
        shutil.copytree(args.store, copy, ignore=shutil.ignore_patterns("*.lock"))
        store = ProductStore(copy)
        query_vectors = {name: encode(queries) for name, encode in encoders.items()}
        found = {name: neighbours(store, v) for name, v in query_vectors.items()}
        store_items = store.count()
        store.close()

    baseline = "onnx plain, char-sorted (before)"
    reference = "torch fp32"
    rows = []
    for name in encoders:
        cosine = np.sum(vectors[name] * vectors[reference], axis=1)
        query_cosine = np.sum(query_vectors[name] * query_vectors[reference], axis=1)
        same = [set(a) == set(b) for a, b in zip(found[name], found[reference])]
        overlap = [len(set(a) & set(b)) / 5 for a, b in zip(found[name], found[reference])]
        rows.append(
            {
                "runtime": name,
                "load_and_warm_up_s": started[name],
                "items_per_s_per_round": [round(r, 1) for r in rates[name]],
                "cpu_s_per_1000_texts_per_round": [round(c, 1) for c in cpu_ms[name]],
                "speedup_vs_before_per_round": [round(a / b, 2) for a, b in zip(rates[name], rates[baseline])],
                "cpu_saving_vs_before_per_round": [round(b / a, 2) for a, b in zip(cpu_ms[name], cpu_ms[baseline])],
                "speedup_vs_before_median": round(float(np.median(np.array(rates[name]) / rates[baseline])), 2),
                "cosine_to_torch_mean_min": [round(float(cosine.mean()), 7), round(float(cosine.min()), 7)],
                "query_cosine_to_torch_min": round(float(query_cosine.min()), 7),
                "queries_with_torchs_top5": f"{sum(same)}/{len(same)}",
                "top5_overlap_with_torch": round(float(np.mean(overlap)), 4),
            }
        )
    results = {
        "command": command_line("benchmarks.embedding", sys.argv[1:]),
        "cpu": cpu(),
        "onnxruntime_threads": args.threads or "one per physical core",
        "texts": len(texts),
        "mean_chars": round(float(np.mean([len(t) for t in texts])), 1),
        "queries": len(queries),
        "store_items": store_items,
        "runtimes": rows,
        "load_average_1_5_15min": load | {"after": os.getloadavg()},
    }
    results["fusions_session_only"] = [
        session_cpu(texts[:160], threads, args.rounds) for threads in dict.fromkeys((1, args.threads))
    ]
    results["load_average_1_5_15min"]["after_fusions"] = os.getloadavg()
    if args.shorter:
        results["shorter_sequences"] = shorter_sequences(args.store, args.items, args.shorter, args.threads)
        results["load_average_1_5_15min"]["after_shorter"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


def session_cpu(texts: list[str], threads: int | None, rounds: int) -> dict:
    """CPU seconds per 1,000 texts of the plain and the fused export's session runs alone, on
    the same token batches, alternated batch by batch (the order flipped every round)."""
    model = resolve_model("all-MiniLM-L6-v2")
    plain = OnnxEmbedder(model, quantize=False, threads=threads)
    fused = OnnxEmbedder(model, quantize=False, optimize=True, threads=threads)
    tokens = plain._tokenize([text.strip() for text in texts])
    order = sorted(range(len(texts)), key=lambda i: -len(tokens["input_ids"][i]))
    batches = [
        {name: [ids[i] for i in order[s : s + 32]] for name, ids in tokens.items()} for s in range(0, len(order), 32)
    ]
    sessions = {"plain": plain.session, "fused": fused.session}
    clock = time.thread_time if threads == 1 else time.process_time
    busy = dict.fromkeys(sessions, 0.0)
    for round_ in range(rounds):
        for batch in batches:
            for name in list(sessions)[:: 1 if round_ % 2 == 0 else -1]:
                started = clock()
                plain._run(sessions[name], batch)
                busy[name] += clock() - started
    per_1000 = {name: round(b / (len(texts) * rounds) * 1000, 1) for name, b in busy.items()}
    return {
        "threads": threads or "one per physical core",
        "texts": len(texts),
        "rounds": rounds,
        "cpu_s_per_1000_texts": per_1000,
        "fused_cpu_saving": round(busy["plain"] / busy["fused"], 3),
    }


def knn_prices(products: np.ndarray, prices: np.ndarray, queries: np.ndarray, k: int = 7, power: float = 4.0):
    """The knn strategy's default estimate (similarity ** power weighted mean of the k nearest),
    by exact search (the same for every set of vectors compared)."""
    similarity = queries @ products.T
    nearest = np.argsort(-similarity, axis=1)[:, :k]
    weights = np.clip(np.take_along_axis(similarity, nearest, axis=1), 1e-6, None) ** power
    return np.sum(weights * prices[nearest], axis=1) / np.sum(weights, axis=1)


def shorter_sequences(store_path: Path, items: Path, lengths: list[int], threads: int | None) -> list[dict]:
    """dev MAE of knn with the store's vectors vs vectors of texts cut at each of ``lengths`` tokens."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "store"
        shutil.copytree(store_path, copy, ignore=shutil.ignore_patterns("*.lock"))
        store = ProductStore(copy)
        stored = store.collection().get(include=["embeddings", "documents", "metadatas"])
        store.close()
    products = np.asarray(stored["embeddings"], dtype=np.float32)
    documents = list(stored["documents"])
    prices = np.array([float(meta["price"]) for meta in stored["metadatas"]])
    dev = read_items(items, split="dev")
    truth = np.array([item.price for item in dev])
    full = OnnxEmbedder(resolve_model("all-MiniLM-L6-v2"), quantize=False, threads=threads)
    reference = np.abs(knn_prices(products, prices, full.encode([item.description for item in dev])) - truth)
    rng = np.random.default_rng(0)
    resamples = rng.integers(0, len(dev), size=(2000, len(dev)))
    rows = [{"max_tokens": full.max_tokens, "dev_mae": round(float(reference.mean()), 2)}]
    for length in lengths:
        cut = OnnxEmbedder(resolve_model("all-MiniLM-L6-v2"), quantize=False, threads=threads)
        cut.max_tokens = length  # type: ignore[misc]
        order = sorted(range(len(documents)), key=lambda i: len(documents[i]))
        vectors = np.empty_like(products)
        busy = time.process_time()
        for start in range(0, len(order), 512):
            rows_ = order[start : start + 512]
            vectors[rows_] = cut.encode([documents[i] for i in rows_])
        cpu_per_1000 = (time.process_time() - busy) / len(documents) * 1000
        errors = np.abs(knn_prices(vectors, prices, cut.encode([item.description for item in dev])) - truth)
        difference = errors - reference
        low, high = np.percentile(difference[resamples].mean(axis=1), [2.5, 97.5])
        rows.append(
            {
                "max_tokens": length,
                "dev_mae": round(float(errors.mean()), 2),
                "mae_difference": round(float(difference.mean()), 2),
                "mae_difference_95ci": [round(float(low), 2), round(float(high), 2)],
                "cpu_s_per_1000_store_texts": round(cpu_per_1000, 1),
                "costs_nothing": bool(high <= 0),
            }
        )
        print(rows[-1])
    return rows


if __name__ == "__main__":
    main()
