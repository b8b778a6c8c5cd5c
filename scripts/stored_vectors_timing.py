"""Issue 19 item 2: train texts embedded again vs their vectors read from the store, back to back
in one process on the same evenly spaced sample of N train items (wall and CPU seconds, and the
cosine between the two vectors of each text).

    RAG_PRICER_STORE_PATH=/work/main/var/store nice -n 10 python scripts/stored_vectors_timing.py 2000
"""

import os
import sys
import time

import numpy as np

from rag_pricer.items import read_items
from rag_pricer.knowledge.embeddings import Embedder
from rag_pricer.knowledge.store import ProductStore
from rag_pricer.knowledge.vectors import VectorSource
from rag_pricer.pricing.pricer import Pricer
from rag_pricer.query import Query
from rag_pricer.settings import Settings

n = int(sys.argv[1])
settings = Settings()
items = read_items(settings.items_path, split="train")
step = len(items) // n
sample = items[::step][:n]
queries = [Query.of(i, Pricer.max_chars) for i in sample]
texts, ids = [q.text for q in queries], [q.id for q in queries]
embedder = Embedder(
    settings.embedding_model,
    batch_size=settings.embedding_batch_size,
    backend=settings.embedding_backend,
    threads=settings.embedding_threads,
)
embedder.encode(["warm up"])
source = VectorSource(embedder, ProductStore.from_settings(settings))


def timed(f):
    w, c = time.perf_counter(), os.times()
    out = f()
    c2 = os.times()
    return out, time.perf_counter() - w, (c2.user - c.user) + (c2.system - c.system)


stored, sw, sc = timed(lambda: source.encode(texts, ids))
embedded, ew, ec = timed(lambda: embedder.encode(texts))
cos = np.sum(stored * embedded, axis=1)
counts = source.counts
print(f"n={n} stored: {sw:.1f} s wall {sc:.1f} s CPU ({counts.stored} from the store, {counts.embedded} embedded)")
print(f"n={n} embedded: {ew:.1f} s wall {ec:.1f} s CPU")
print(f"cosine stored vs embedded: min {cos.min():.6f} mean {cos.mean():.6f}")
print(f"scale by {len(items) / n:.2f} for all {len(items)} train texts")
