"""Ingestion benchmark: raw embedding throughput (the limit) vs end-to-end indexing, in one run.

    python benchmarks/ingest.py [--items ../shared/data/items.jsonl.gz] [--n 2000] [--variants]

Prints the figures and writes them to benchmarks/out/ingest.json. ``--variants`` also measures
the embedding backends (batch sizes, torch dynamic int8 quantisation) with their cosine
agreement and top-5 neighbour overlap against the fp32 reference embeddings.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ingest.index import Indexer  # noqa: E402
from rag_pricer.embeddings import Embedder  # noqa: E402
from rag_pricer.items import read_items  # noqa: E402
from rag_pricer.store import ProductStore  # noqa: E402


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


def top5_overlap(reference: np.ndarray, other: np.ndarray, queries: int = 200) -> float:
    """Mean share of the reference top-5 neighbours that the other embeddings also return."""
    overlap = []
    for q in range(min(queries, len(reference))):
        ref = set(np.argsort(-(reference @ reference[q]))[1:6])
        got = set(np.argsort(-(other @ other[q]))[1:6])
        overlap.append(len(ref & got) / 5)
    return float(np.mean(overlap))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=Path, default=ROOT.parent / "shared" / "data" / "items.jsonl.gz")
    parser.add_argument("--n", type=int, default=2000, help="items to embed (at least 2,000 for the issue's figures)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--variants", action="store_true", help="also measure other batch sizes and int8 quantisation")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "ingest.json")
    args = parser.parse_args()

    import torch

    items = read_items(args.items, split="train", limit=args.n)
    texts = [item.description for item in items]
    embedder = Embedder(batch_size=args.batch_size)
    load_started = time.perf_counter()
    embedder.encode(texts[:8])  # load and warm up
    load_s = time.perf_counter() - load_started

    reference, raw_s = timed_encode(embedder, texts)
    raw_rate = len(texts) / raw_s
    with tempfile.TemporaryDirectory() as tmp:
        report = Indexer(ProductStore(Path(tmp) / "store"), embedder, progress=False).run(items)
    e2e_rate = report.embedded / report.seconds
    results: dict = {
        "command": "python " + " ".join(sys.argv),
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
        results["variants"] = measure_variants(texts, reference)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


def measure_variants(texts: list[str], reference: np.ndarray) -> list[dict]:
    rows = []
    for batch_size in (16, 64):
        embedder = Embedder(batch_size=batch_size)
        embedder.encode(texts[:8])
        vectors, seconds = timed_encode(embedder, texts)
        rows.append(_row(f"torch fp32, batch {batch_size}", len(texts) / seconds, reference, vectors))
    unsorted = Embedder(batch_size=32)
    unsorted.encode(texts[:8])
    started = time.perf_counter()
    # one text per call defeats length sorting and batching: the naive baseline
    vectors = np.stack([unsorted.encode_one(t) for t in texts[:300]])
    rows.append(_row("torch fp32, one text per call (300 texts)", 300 / (time.perf_counter() - started), reference[:300], vectors))
    quantised = Embedder(batch_size=32, quantize=True)
    quantised.encode(texts[:8])
    vectors, seconds = timed_encode(quantised, texts)
    rows.append(_row("torch dynamic int8 (Linear layers), batch 32", len(texts) / seconds, reference, vectors))
    return rows


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
