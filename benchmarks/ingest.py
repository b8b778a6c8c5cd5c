"""Ingestion benchmark: raw embedding throughput (the limit) vs end-to-end indexing, in one run.

    python -m benchmarks.ingest [--items ../shared/data/items.jsonl.gz] [--n 2000] [--variants [--rounds 2]]
                                [--indexers [--indexer-rounds 2]] [--export]

Prints the figures and writes them to benchmarks/out/ingest.json. ``--variants`` also measures
the embedding backends -- torch fp32 (1 and 2 threads), ONNX fp32 and ONNX dynamic int8 (1 and 2
onnxruntime threads) -- interleaved round by round so that they share the machine's noise, with
their cosine agreement and top-5 neighbour overlap against the torch fp32 reference embeddings;
then other batch sizes and the one-text-per-call baseline. On a shared machine, compare the
rates of one round with each other (``speedup_vs_torch_per_round``) rather than across runs.
``--indexers`` times the whole ``Indexer`` (dedup check, embedding, Chroma writes) with the
torch reference and with the default embedder of the settings, in turns, each round into fresh
stores: the main job's speed-up. ``--export`` times the first ONNX export into an empty cache
(what a fresh machine pays once, offline: the packaged model is the only input).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.support import ROOT, command_line
from ingest.index import Indexer
from rag_pricer.items import read_items
from rag_pricer.knowledge.embeddings import Embedder, resolve_model
from rag_pricer.knowledge.onnx_embedder import OnnxEmbedder
from rag_pricer.knowledge.store import ProductStore


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed_encode(embedder: Embedder, texts: list[str], chunk: int = 512) -> tuple[np.ndarray, float]:
    """Encode like the indexer does (length-sorted, in chunks), timing the model alone."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    started = time.perf_counter()
    parts = [embedder.encode([texts[i] for i in order[s : s + chunk]]) for s in range(0, len(order), chunk)]
    seconds = time.perf_counter() - started
    vectors = np.empty((len(texts), parts[0].shape[1]), dtype=np.float32)
    vectors[order] = np.concatenate(parts)
    return vectors, seconds


def top5_overlap(reference: np.ndarray, other: np.ndarray, queries: int = 200, cross: bool = False) -> float:
    """Mean share of the reference top-5 neighbours that the other embeddings also return
    (``cross``: the other embeddings' queries searched among the reference vectors)."""
    overlap = []
    for q in range(min(queries, len(reference))):
        ref = _top5(reference, reference[q], q)
        got = _top5(reference if cross else other, other[q], q)
        overlap.append(len(ref & got) / 5)
    return float(np.mean(overlap))


def _top5(vectors: np.ndarray, query: np.ndarray, itself: int) -> set[int]:
    ranked = np.argsort(-(vectors @ query))[:6]
    return set([int(i) for i in ranked if i != itself][:5])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=Path, default=ROOT.parent / "shared" / "data" / "items.jsonl.gz")
    parser.add_argument("--n", type=int, default=2000, help="items to embed (at least 2,000 for the issue's figures)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--variants", action="store_true", help="also measure the ONNX backends and other batch sizes")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of the backend comparison")
    parser.add_argument("--indexers", action="store_true", help="time the Indexer: torch vs the settings' default")
    parser.add_argument("--indexer-rounds", type=int, default=2)
    parser.add_argument("--export", action="store_true", help="time the ONNX export into an empty cache")
    parser.add_argument("--skip-base", action="store_true", help="skip the torch raw vs end-to-end figures")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "ingest.json")
    args = parser.parse_args()
    if args.skip_base:
        results = {
            "command": command_line("benchmarks.ingest", sys.argv[1:]),
            "load_average_1_5_15min": {"before": os.getloadavg()},
        }
        if args.export:
            results["onnx_export"] = measure_export()
        if args.indexers:
            results["indexers"] = compare_indexers(
                read_items(args.items, split="train", limit=args.n), args.indexer_rounds
            )
        results["load_average_1_5_15min"]["after"] = os.getloadavg()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
        print(json.dumps(results, indent=2))
        return

    import torch

    load_before = os.getloadavg()
    items = read_items(args.items, split="train", limit=args.n)
    texts = [item.description for item in items]
    embedder = Embedder(batch_size=args.batch_size, backend="torch")
    load_started = time.perf_counter()
    embedder.encode(texts[:8])  # load and warm up
    load_s = time.perf_counter() - load_started

    reference, raw_s = timed_encode(embedder, texts)
    raw_rate = len(texts) / raw_s
    with tempfile.TemporaryDirectory() as tmp:
        report = Indexer(ProductStore(Path(tmp) / "store"), embedder, progress=False).run(items)
    e2e_rate = report.embedded / report.seconds
    results: dict = {
        "command": command_line("benchmarks.ingest", sys.argv[1:]),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, Python {platform.python_version()}",
        "items": len(items),
        "mean_chars": round(float(np.mean([len(t) for t in texts])), 1),
        "model_load_s": round(load_s, 2),
        "raw_embedding_items_per_s": round(raw_rate, 1),
        "end_to_end_index_items_per_s": round(e2e_rate, 1),
        "end_to_end_over_raw": round(e2e_rate / raw_rate, 3),
        "stored": report.stored,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "variants": [],
    }
    if args.variants:
        results["variants"] = measure_variants(texts, reference, rounds=args.rounds)
    if args.export:
        results["onnx_export"] = measure_export()
    if args.indexers:
        results["indexers"] = compare_indexers(items, args.indexer_rounds)
    # the machine may be shared: the load average says how busy it was while measuring
    results["load_average_1_5_15min"] = {"before": load_before, "after": os.getloadavg()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


class TorchThreads:
    """An ``Embedder`` run with a given number of torch threads (a process-wide setting, so it
    is set for the duration of each call only)."""

    def __init__(self, embedder: Embedder, threads: int) -> None:
        self.embedder, self.threads = embedder, threads

    def encode(self, texts: list[str]) -> np.ndarray:
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            return self.embedder.encode(texts)
        finally:
            torch.set_num_threads(before)


def measure_variants(texts: list[str], reference: np.ndarray, rounds: int = 2) -> list[dict]:
    """The embedding backends interleaved round by round, then batch sizes and one text per call."""
    rows = compare_backends(texts, reference, rounds)
    for batch_size in (16, 64):
        embedder = Embedder(batch_size=batch_size, backend="torch")
        embedder.encode(texts[:8])
        found, seconds = timed_encode(embedder, texts)
        rows.append(_row(f"torch fp32, batch {batch_size}", len(texts) / seconds, reference, found))
    unsorted = Embedder(batch_size=32, backend="torch")
    unsorted.encode(texts[:8])
    started = time.perf_counter()
    # one text per call defeats length sorting and batching: the naive baseline
    found = np.stack([unsorted.encode_one(t) for t in texts[:300]])
    rate = 300 / (time.perf_counter() - started)
    rows.append(_row("torch fp32, one text per call (300 texts)", rate, reference[:300], found))
    return rows


def compare_backends(texts: list[str], reference: np.ndarray, rounds: int = 2) -> list[dict]:
    """torch fp32 vs ONNX fp32 vs ONNX int8, each pass over ``texts`` in turn, ``rounds`` times."""
    import torch

    torch_threads = torch.get_num_threads()
    backends: dict[str, object] = {
        f"torch fp32, batch 32, {torch_threads} threads": Embedder(batch_size=32, backend="torch")
    }
    if torch_threads != 1:
        backends["torch fp32, batch 32, 1 thread"] = TorchThreads(Embedder(batch_size=32, backend="torch"), 1)
    builds: dict[str, float] = {}
    for quantize, label in ((False, "onnx fp32"), (True, "onnx int8 (dynamic, per-channel)")):
        for threads in (1, 2):
            onnx = OnnxEmbedder(resolve_model("all-MiniLM-L6-v2"), quantize=quantize, batch_size=32, threads=threads)
            started = time.perf_counter()
            onnx.encode(texts[:8])  # builds the cached ONNX file on the first use, then warms up
            if onnx.built_:
                builds[label] = round(time.perf_counter() - started, 1)
            backends[f"{label}, batch 32, {threads} thread{'s' if threads > 1 else ''}"] = onnx
    for backend in backends.values():
        backend.encode(texts[:8])
    rates: dict[str, list[float]] = {name: [] for name in backends}
    vectors: dict[str, np.ndarray] = {}
    for _ in range(rounds):
        for name, backend in backends.items():
            vectors[name], seconds = timed_encode(backend, texts)
            rates[name].append(len(texts) / seconds)
    torch_rates = np.array(next(iter(rates.values())))
    rows = []
    for name in backends:
        row = _row(name, float(np.median(rates[name])), reference, vectors[name])
        row["items_per_s_per_round"] = [round(rate, 1) for rate in rates[name]]
        row["speedup_vs_torch_per_round"] = [round(float(r), 2) for r in np.array(rates[name]) / torch_rates]
        # the mixed case: an index built with torch fp32, queried with this backend's vectors
        row["top5_overlap_queries_on_torch_index"] = round(top5_overlap(reference, vectors[name], cross=True), 3)
        label = name.split(", batch")[0]
        if label in builds:
            row["first_build_s"] = builds.pop(label)
        rows.append(row)
    return rows


def measure_export() -> dict:
    """The fp32 ONNX export of the packaged model into an empty cache, as on a fresh machine."""
    with tempfile.TemporaryDirectory() as cache:
        onnx = OnnxEmbedder(resolve_model("all-MiniLM-L6-v2"), quantize=False, cache_dir=cache)
        started = time.perf_counter()
        path = onnx.build()
        seconds = time.perf_counter() - started
        return {
            "export_s": round(seconds, 1),
            "onnx_mb": round(path.stat().st_size / 2**20, 1),
            "offline_env": {name: os.environ.get(name) for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")},
        }


def compare_indexers(items: list, rounds: int = 2) -> dict:
    """End-to-end ``Indexer`` runs, torch fp32 (the old default) and the settings' default
    embedder in turns, each into a fresh store; models loaded and warmed up beforehand."""
    from rag_pricer.settings import Settings

    settings = Settings(_env_file=None)
    default = Embedder(
        settings.embedding_model,
        batch_size=settings.embedding_batch_size,
        backend=settings.embedding_backend,
        threads=settings.embedding_threads,
    )
    embedders = {
        "torch fp32 (old default)": Embedder(batch_size=32, backend="torch"),
        f"{settings.embedding_backend}, {settings.embedding_threads or 'one per core'} thread(s) (default)": default,
    }
    for embedder in embedders.values():
        embedder.encode([item.description for item in items[:8]])
    rates: dict[str, list[float]] = {name: [] for name in embedders}
    for _ in range(rounds):
        for name, embedder in embedders.items():
            with tempfile.TemporaryDirectory() as tmp:
                report = Indexer(
                    ProductStore(Path(tmp) / "store", vectors=embedder.vectors), embedder, progress=False
                ).run(items)
            rates[name].append(report.embedded / report.seconds)
    old, new = (np.array(r) for r in rates.values())
    return {
        "items": len(items),
        "items_per_s_per_round": {name: [round(r, 1) for r in values] for name, values in rates.items()},
        "speedup_per_round": [round(float(x), 2) for x in new / old],
        "speedup_median": round(float(np.median(new / old)), 2),
    }


def _row(name: str, rate: float, reference: np.ndarray, vectors: np.ndarray) -> dict:
    cosine = np.sum(reference * vectors, axis=1)
    return {
        "variant": name,
        "items_per_s": round(rate, 1),
        "cosine_mean": round(float(cosine.mean()), 4),
        "cosine_min": round(float(cosine.min()), 4),
        "top5_overlap": round(top5_overlap(reference, vectors), 3),
    }


if __name__ == "__main__":
    main()
