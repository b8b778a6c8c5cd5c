"""The knowledge base: a Chroma collection of product embeddings with price, category and title.

Embeddings are always computed by us and passed in; the collection is created with no
embedding function so Chroma never tries to download its default model.

The store may change while a process serves from it: products added, replaced or deleted by
this process or another (``rag-pricer-ingest add``, ``PUT /v1/products``). A Chroma client of
an embedded (folder) store keeps its index in memory and never sees what another process wrote
to the folder: it would go on answering from a stale index, and a write through such a client
loses the other process's writes from the index (measured with chromadb 1.5.9). So every
operation first compares Chroma's write counter on disk (``StoreVersion``) with the one its
client was opened at, and reopens the client when another process wrote; writers take the
folder's ``WriteLock`` and write from a client that is current. A Chroma server
(``chroma_host``) serves every client from one index and needs neither.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import math
import re
import shutil
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag_pricer.items import Item, price_in_range
from rag_pricer.knowledge.embeddings import vector_kind
from rag_pricer.knowledge.locks import SharedLock, WriteLock
from rag_pricer.knowledge.versions import StoreVersion

log = logging.getLogger(__name__)


BUILD_HINT = "build it with `rag-pricer-ingest index ITEMS --store DIR`"


class StoreError(RuntimeError):
    """The store cannot serve the request (missing, empty, or built with another model)."""


class DiskFull(StoreError):
    """The disk under the store is (nearly) full: nothing more was written."""


#: the collection metadata key of the generation our writers count on a Chroma server
GENERATION = "rag_pricer_generation"
#: the collection metadata key that says the store keeps a partition per category (see
#: ``ProductStore.partition_by_category``); every writer keeps them current once it is set
PARTITIONED = "rag_pricer_category_partitions"
#: the HNSW settings of the collections we create (Chroma's defaults otherwise: M 16,
#: ef_construction 100). ef_search 200, not Chroma's 100: at 400k products recall@7 0.966 ->
#: 0.977 for +0.4 ms a query (benchmarks/filters.py, docs/scaling.md); a store built before
#: keeps its own value, which ``collection.modify`` changes without a rebuild
HNSW: dict[str, Any] = {"space": "cosine", "ef_search": 200}
#: disk a stored product needs: 6.4 KB each in the 16,442-item store (vectors, HNSW graph,
#: documents, metadata, SQLite), with room for Chroma's write-ahead log and compaction
BYTES_PER_ITEM = 16 * 1024
#: space always left free: when Chroma runs out of disk in a compaction, the store cannot be
#: read again until it is rerun with space, so writes stop well before that happens
RESERVE_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Neighbour:
    """A stored product returned by a similarity search."""

    id: str
    title: str
    price: float
    similarity: float
    category: str | None = None
    document: str = ""
    embedding: np.ndarray | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class StoredProduct:
    """A stored product as the store holds it: its metadata and the text that was embedded."""

    id: str
    title: str
    price: float
    category: str | None = None
    split: str | None = None
    document: str = ""


def content_hash(item: Item) -> str:
    """Fingerprint of what is embedded and stored, so a changed item is re-indexed."""
    key = f"{item.description}\x00{item.price}\x00{item.category}"
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


def partition_name(collection: str, category: str) -> str:
    """The name of the collection that holds the vectors of ``category``'s products (Chroma's
    names allow ``[A-Za-z0-9._-]``, so the category is slugged and made unique by its hash)."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", category).strip("_-")[:48] or "category"
    return f"{collection}.category.{slug}.{hashlib.sha1(category.encode('utf-8')).hexdigest()[:8]}"


def _metadata(item: Item) -> dict[str, Any]:
    # Chroma metadata values must be str/int/float/bool: absent fields are left out, not None.
    meta: dict[str, Any] = {"price": float(item.price), "title": item.title[:500], "hash": content_hash(item)}
    if item.category:
        meta["category"] = item.category
    if item.split:
        meta["split"] = item.split
    return meta


class ProductStore:
    """A persistent (or client/server) Chroma collection of products.

    ``model`` names the embedding model and ``vectors`` the kind of its vectors (``fp32`` from
    torch or ONNX fp32, ``int8`` from ONNX int8); both are recorded on the collection when
    created and checked when reopened, because vectors of two models are not comparable and int8
    queries on fp32 vectors (or the reverse) move the neighbours. A store that recorded no kind
    was built before the kind was recorded, when torch fp32 was the only default: it is fp32.
    """

    def __init__(
        self,
        path: str | Path | None = "var/store",
        collection: str = "products",
        model: str = "all-MiniLM-L6-v2",
        host: str | None = None,
        port: int = 8000,
        vectors: str = "fp32",
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.collection_name = collection
        self.model = model
        self.vectors = vectors
        self.host = host
        self.port = port
        self._client: Any = None
        self._collection: Any = None
        self._partitions: dict[str, Any] = {}
        #: one thread opens the client and collection: after a reopen, the requests sharing the
        #: store all find them closed, and Chroma's shared ``System`` of a folder breaks when two
        #: clients of it are created at once (``KeyError`` on the path, ``RustBindingsAPI``
        #: without ``bindings``), or keeps a stale one alive through the client we forget
        self._opening = threading.RLock()
        embedded = self.path is not None and not host
        #: Chroma's write counter of the folder (embedded stores only), and its value when the
        #: client was opened or this process last wrote
        self._versions = StoreVersion(self.path) if embedded and self.path is not None else None
        self._seen: str | None = None
        self._use = SharedLock()  # operations share the client; a reopen waits for them
        self._write_lock = WriteLock(self.path) if embedded and self.path is not None else None
        self._writes = threading.Lock()  # a server store: one writer thread of this process at a time

    @classmethod
    def from_settings(cls, settings: Any) -> ProductStore:
        return cls(
            path=settings.store_path,
            collection=settings.collection,
            model=settings.embedding_model,
            host=settings.chroma_host,
            port=settings.chroma_port,
            vectors=vector_kind(settings.embedding_backend),
        )

    @property
    def location(self) -> str:
        return f"http://{self.host}:{self.port}" if self.host else str(self.path)

    def fingerprint(self) -> dict[str, Any]:
        """Which store this is, how many products it holds and its version: a cached result
        (an evaluation run) computed before any write to the store does not match afterwards."""
        location = self.location if self.host else str(Path(self.path).resolve()) if self.path else None
        return {
            "store": location,
            "collection": self.collection_name,
            "model": self.model,
            "products": self.count(),
            "version": self.version(),
        }

    def version(self) -> str | None:
        """The store's version on disk, changed by every write of any process (embedded
        stores); for a Chroma server, the generation our writers record on the collection
        (``None`` before the first such write)."""
        if self._versions is not None:
            return self._versions.read()
        with self._use.shared():
            generation = (self.collection().metadata or {}).get(GENERATION)
        return None if generation is None else str(generation)

    @property
    def client(self) -> Any:
        """The Chroma client; opening it creates a missing store folder (writers only)."""
        return self._connect(create=True)

    def _connect(self, create: bool) -> Any:
        if self._client is not None:
            return self._client
        with self._opening:
            return self._open(create)

    def _open(self, create: bool) -> Any:
        if self._client is None:
            import chromadb
            from chromadb.config import Settings as ChromaSettings

            chroma_settings = ChromaSettings(anonymized_telemetry=False)
            if self.host:
                self._client = chromadb.HttpClient(host=self.host, port=self.port, settings=chroma_settings)
            else:
                assert self.path is not None
                if not create and not self.path.is_dir():
                    # A mistyped path must not become a new, empty store that answers nothing.
                    raise StoreError(f"no store at {self.path}: {BUILD_HINT}")
                self.path.mkdir(parents=True, exist_ok=True)
                # Read before opening: a write in between makes the next check reopen, never the
                # reverse (a client older than the version it is taken for).
                self._seen = self._versions.read() if self._versions is not None else None
                self._client = chromadb.PersistentClient(path=str(self.path), settings=chroma_settings)
        return self._client

    def _refresh(self) -> None:
        """Reopen the client when another process wrote to the folder since it was opened."""
        if self._versions is None or self._client is None or self._use.holding():
            return
        current = self._versions.read()
        if current == self._seen:
            return
        with self._use.exclusive():
            if self._client is None or self._versions.read() == self._seen:
                return  # another thread reopened it meanwhile
            log.info("the store at %s was written by another process: reopening it", self.location)
            self._close()

    @contextmanager
    def _reading(self) -> Iterator[None]:
        self._refresh()
        with self._use.shared():
            yield

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """One writer at a time, from a current client (see the module's docstring); the
        version this write leaves is this client's own, so it is not reopened for it."""
        with self._writes, self._write_lock.held() if self._write_lock is not None else _nothing():
            self._refresh()
            with self._use.shared():
                try:
                    yield
                finally:  # under the shared lock: no other thread reopens for this write
                    if self._versions is not None:
                        self._seen = self._versions.read()

    def check(self) -> int:
        """The number of stored products, read afresh; ``StoreError`` when the store is gone
        (its folder deleted: Chroma would go on answering from the files it holds open)."""
        if self.path is not None and not self.host and not (self.path / "chroma.sqlite3").is_file():
            raise StoreError(f"no store at {self.path} any more: {BUILD_HINT}")
        return self.count()

    def close(self) -> None:
        """Forget the client and collection; the next use opens the store again."""
        with self._use.exclusive():
            self._close()
        if self._versions is not None:
            self._versions.close()

    def _close(self) -> None:
        client, self._client, self._collection = self._client, None, None
        self._partitions = {}
        if client is not None and hasattr(client, "close"):
            try:
                client.close()
            except Exception as error:  # closing a broken client must not hide why it broke
                log.debug("closing the Chroma client failed: %s", error)

    @property
    def max_batch_size(self) -> int:
        return int(self.client.get_max_batch_size())

    def collection(self, create: bool = False) -> Any:
        """The Chroma collection; ``create`` makes it when missing, otherwise a missing one is an error."""
        if self._collection is not None:
            return self._collection
        with self._opening:
            return self._open_collection(create)

    def _open_collection(self, create: bool) -> Any:
        if self._collection is None:
            if create:
                self._collection = self.client.get_or_create_collection(
                    self.collection_name,
                    embedding_function=None,
                    configuration={"hnsw": dict(HNSW)},
                    metadata={"embedding_model": self.model, "embedding_vectors": self.vectors},
                )
            else:
                client = self._connect(create=False)
                try:
                    self._collection = client.get_collection(self.collection_name, embedding_function=None)
                except Exception as error:  # chromadb raises NotFoundError / ValueError by version
                    raise StoreError(
                        f"no collection {self.collection_name!r} at {self.location}: {BUILD_HINT}"
                    ) from error
            self._check_embeddings(self._collection.metadata or {})
        return self._collection

    def _check_embeddings(self, recorded: dict[str, Any]) -> None:
        stored_model = recorded.get("embedding_model")
        if stored_model and stored_model != self.model:
            self._collection = None  # refused: the next call checks again instead of using it
            raise StoreError(
                f"collection {self.collection_name!r} was built with {stored_model!r}, "
                f"not {self.model!r}: vectors of different models are not comparable"
            )
        stored_vectors = recorded.get("embedding_vectors", "fp32")
        if stored_vectors != self.vectors:
            backend = "onnx-int8" if stored_vectors == "int8" else "onnx or torch"
            self._collection = None
            raise StoreError(
                f"collection {self.collection_name!r} holds {stored_vectors} vectors, this embedder makes "
                f"{self.vectors} ones: set RAG_PRICER_EMBEDDING_BACKEND to {backend} or rebuild the store"
            )

    def count(self) -> int:
        with self._reading():
            return int(self.collection().count())

    def stored_hashes(self, ids: Sequence[str]) -> dict[str, str]:
        """Content hashes of those ``ids`` that are already stored."""
        if not ids:
            return {}
        with self._reading():
            found = self.collection(create=True).get(ids=list(ids), include=["metadatas"])
        return {i: (m or {}).get("hash", "") for i, m in zip(found["ids"], found["metadatas"])}

    def product(self, product_id: str) -> StoredProduct | None:
        """The stored product ``product_id``, or ``None`` when the store has none of that id."""
        with self._reading():
            found = self.collection().get(ids=[product_id], include=["metadatas", "documents"])
        if not found["ids"]:
            return None
        meta, document = found["metadatas"][0] or {}, found["documents"][0]
        return StoredProduct(
            id=found["ids"][0],
            title=str(meta.get("title", "")),
            price=_price_of(meta),
            category=meta.get("category"),
            split=meta.get("split"),
            document=document or "",
        )

    def contains_any(self, ids: Sequence[str]) -> list[str]:
        """The subset of ``ids`` present in the store (used to refuse leaky evaluations)."""
        found: list[str] = []
        with self._reading():
            collection = self.collection()
            step = self.max_batch_size
            for start in range(0, len(ids), step):
                found += collection.get(ids=list(ids[start : start + step]), include=[])["ids"]
        return found

    def vectors_of(self, ids: Sequence[str]) -> dict[str, tuple[str, np.ndarray]]:
        """The stored document and vector of those ``ids`` that are stored, by id (what
        ``VectorSource`` reads instead of embedding the knowledge base again)."""
        stored: dict[str, tuple[str, np.ndarray]] = {}
        if not ids:
            return stored
        with self._reading():
            collection = self.collection()
            step = self.max_batch_size
            for start in range(0, len(ids), step):
                found = collection.get(ids=list(ids[start : start + step]), include=["documents", "embeddings"])
                for key, document, vector in zip(found["ids"], found["documents"], found["embeddings"]):
                    stored[key] = (document or "", np.asarray(vector, dtype=np.float32))
        return stored

    def upsert(self, items: Sequence[Item], embeddings: np.ndarray) -> int:
        """Insert or replace ``items``; split into Chroma-sized batches. Returns the count written."""
        refused = [(item.id, problem) for item in items if (problem := item.problem()) is not None]
        if refused:
            raise ValueError(f"{len(refused)} item(s) cannot be stored, e.g. {refused[0][0]!r}: {refused[0][1]}")
        with self._writing():
            collection = self.collection(create=True)
            partitioned = self._partitioned_now()
            step = self.max_batch_size
            for start in range(0, len(items), step):
                chunk = items[start : start + step]
                ids = [item.id for item in chunk]
                self._ensure_space(len(chunk))
                try:
                    before = self._categories(collection, ids) if partitioned else {}
                    collection.upsert(
                        ids=ids,
                        embeddings=embeddings[start : start + step],
                        documents=[item.description for item in chunk],
                        metadatas=[_metadata(item) for item in chunk],
                    )
                    if partitioned:
                        categories = [item.category for item in chunk]
                        self._repartition(ids, categories, np.asarray(embeddings[start : start + step]), before)
                except Exception as error:
                    if self._disk_full(error):
                        raise DiskFull(f"disk full while writing to {self.location}: {_one_line(error)}") from None
                    raise
            self._next_generation(collection)
        return len(items)

    def delete(self, ids: Sequence[str]) -> list[str]:
        """Delete the products ``ids``; returns those that were stored (others are ignored)."""
        if not ids:
            return []
        with self._writing():
            collection = self.collection()
            stored = self._categories(collection, list(ids))
            if stored:
                collection.delete(ids=sorted(stored))
                if self._partitioned_now():
                    for category, gone in _group_by(stored).items():
                        if (partition := self._partition(category)) is not None:
                            partition.delete(ids=gone)
                self._next_generation(collection)
        return [i for i in dict.fromkeys(ids) if i in stored]

    # ------------------------------------------------------------------ partitions by category
    #
    # A category filter asked of the whole store makes HNSW walk past every other category (or
    # Chroma's ``where`` resolve the filter over all the metadata, linear in the store:
    # benchmarks/filters.py). A partitioned store also keeps, per category, a collection of the
    # ids and vectors of that category's products (no documents or metadata: those stay in the
    # main collection, which every result is checked against), so a category filter is a
    # plain HNSW search of the category's own collection.

    def partitioned(self) -> bool:
        """Whether the store keeps a partition per category (as this client last opened it)."""
        with self._reading():
            return bool((self.collection().metadata or {}).get(PARTITIONED))

    def _partitioned_now(self) -> bool:
        """``partitioned`` read afresh (writers: another process may have partitioned the store)."""
        try:
            fresh = self._connect(create=False).get_collection(self.collection_name, embedding_function=None)
        except Exception:  # a new store: its collection is created by this very write
            return False
        return bool((fresh.metadata or {}).get(PARTITIONED))

    def _partition(self, category: str, create: bool = False) -> Any:
        """The collection of ``category``'s vectors; ``None`` when it has none."""
        name = partition_name(self.collection_name, category)
        found = self._partitions.get(name)
        if found is None:
            client = self._connect(create=False)
            if create:
                found = client.get_or_create_collection(
                    name,
                    embedding_function=None,
                    configuration={"hnsw": dict(HNSW)},
                    metadata={"partition_of": self.collection_name, "category": category},
                )
            else:
                try:
                    found = client.get_collection(name, embedding_function=None)
                except Exception:  # chromadb raises NotFoundError / ValueError by version
                    return None
            self._partitions[name] = found
        return found

    def _categories(self, collection: Any, ids: Sequence[str]) -> dict[str, str | None]:
        """The stored category of those ``ids`` that are stored (``None``: stored without one)."""
        found: dict[str, str | None] = {}
        step = self.max_batch_size
        for start in range(0, len(ids), step):
            page = collection.get(ids=list(ids[start : start + step]), include=["metadatas"])
            found.update({i: (m or {}).get("category") for i, m in zip(page["ids"], page["metadatas"])})
        return found

    def _repartition(
        self, ids: Sequence[str], categories: Sequence[str | None], vectors: np.ndarray, before: dict[str, str | None]
    ) -> None:
        """Write ``ids`` into the partitions of their ``categories``, out of those they left."""
        rows: dict[str, list[int]] = {}
        for row, category in enumerate(categories):
            if category:
                rows.setdefault(category, []).append(row)
        for category, taken in rows.items():
            self._partition(category, create=True).upsert(ids=[ids[r] for r in taken], embeddings=vectors[taken])
        left = {i: old for i, old in before.items() if old is not None}
        new = dict(zip(ids, categories))
        for category, gone in _group_by({i: old for i, old in left.items() if new.get(i) != old}).items():
            if (partition := self._partition(category)) is not None:
                partition.delete(ids=gone)

    def partition_by_category(self) -> dict[str, int]:
        """Partition the store by category (see above): write a partition per category from the
        stored vectors, then mark the store partitioned so that every writer keeps them current.
        Any partitions left by an earlier run are replaced. Returns the products per category."""
        counts: dict[str, int] = {}
        with self._writing():
            collection = self.collection()
            client = self._connect(create=False)
            prefix = f"{self.collection_name}.category."
            for existing in client.list_collections():
                name = existing if isinstance(existing, str) else existing.name
                if name.startswith(prefix):
                    client.delete_collection(name)
            self._partitions = {}
            step = self.max_batch_size
            for offset in range(0, collection.count(), step):
                page = collection.get(limit=step, offset=offset, include=["embeddings", "metadatas"])
                categories = [(m or {}).get("category") for m in page["metadatas"]]
                self._repartition(page["ids"], categories, np.asarray(page["embeddings"], dtype=np.float32), {})
                for category in filter(None, categories):
                    counts[category] = counts.get(category, 0) + 1
            metadata = dict(collection.metadata or {})
            metadata[PARTITIONED] = True
            collection.modify(metadata=metadata)
            self._next_generation(collection)
        return counts

    # ------------------------------------------------------------------ reading by steps

    def nearest_ids(
        self, embeddings: np.ndarray, n: int, category: str | None = None
    ) -> list[list[tuple[str, float]]] | None:
        """The ids and similarities of the ``n`` nearest products of each query vector, most
        similar first: of the whole store, or of ``category``'s partition (``None`` when the
        store has no partition for it). Ids only: what they are is ``neighbours_of``'s business."""
        if embeddings.ndim == 1:
            embeddings = embeddings[None, :]
        with self._reading():
            if category is None:
                source = self.collection()
            elif (source := self._partition(category)) is None:
                return None
            found: list[list[tuple[str, float]]] = []
            step = max(1, self.max_batch_size // max(n, 1))
            for start in range(0, len(embeddings), step):
                part = source.query(
                    query_embeddings=embeddings[start : start + step], n_results=n, include=["distances"]
                )
                for ids, distances in zip(part["ids"], part["distances"] or []):
                    found.append([(i, 1.0 - float(d)) for i, d in zip(ids, distances)])
            if category is None and not any(found):
                self._refuse_empty(source)
        return found

    def _refuse_empty(self, collection: Any) -> None:
        """``StoreError`` when a search found nothing because the store is empty (counted only
        then: a count costs as much as the search at 100k products)."""
        if collection.count() == 0:
            raise StoreError(f"the store at {self.location} is empty: index some items first")

    def neighbours_of(self, similarities: dict[str, float], with_embeddings: bool = False) -> dict[str, Neighbour]:
        """The stored products of the ids in ``similarities`` (id -> similarity to the query),
        by id; ids no longer stored, and products with an impossible price, are left out."""
        found: dict[str, Neighbour] = {}
        ids = list(similarities)
        include = ["metadatas", "documents"] + (["embeddings"] if with_embeddings else [])
        with self._reading():
            collection = self.collection()
            step = self.max_batch_size
            for start in range(0, len(ids), step):
                page = collection.get(ids=ids[start : start + step], include=include)
                vectors = page.get("embeddings") if with_embeddings else None
                for row, (item_id, meta, document) in enumerate(zip(page["ids"], page["metadatas"], page["documents"])):
                    vector = None if vectors is None else vectors[row]
                    found[item_id] = _neighbour(item_id, meta or {}, similarities[item_id], document, vector)
        kept = _sane(list(found.values()))
        return {n.id: n for n in kept}

    def _next_generation(self, collection: Any) -> None:
        """On a Chroma server, a new generation on the collection: what ``version`` reports
        there (an embedded store's version is Chroma's own write counter)."""
        if self._versions is not None:
            return
        metadata = dict(collection.metadata or {})
        metadata[GENERATION] = int(metadata.get(GENERATION, 0)) + 1
        collection.modify(metadata=metadata)

    def _free_bytes(self) -> int | None:
        if self.host or self.path is None:
            return None  # a server's disk is its own business
        return shutil.disk_usage(self.path).free

    def _ensure_space(self, count: int) -> None:
        free = self._free_bytes()
        needed = count * BYTES_PER_ITEM + RESERVE_BYTES
        if free is not None and free < needed:
            raise DiskFull(
                f"disk full: {free / 2**20:,.0f} MiB free at {self.location}, {needed / 2**20:,.0f} MiB needed to "
                "store "
                f"{count} more products safely; nothing more was written and the store stays readable"
            )

    def _disk_full(self, error: BaseException) -> bool:
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            return True
        text = str(error).lower()
        if "no space left" in text or "disk is full" in text or "disk full" in text:
            return True
        free = self._free_bytes()  # Chroma's own errors ("Error in compaction") do not say why
        return free is not None and free < RESERVE_BYTES

    def query(
        self,
        embeddings: np.ndarray,
        k: int = 5,
        where: dict[str, Any] | None = None,
        with_embeddings: bool = False,
    ) -> list[list[Neighbour]]:
        """The ``k`` nearest stored products of each query vector, most similar first."""
        if embeddings.ndim == 1:
            embeddings = embeddings[None, :]
        with self._reading():
            collection = self.collection()
            include = ["metadatas", "distances", "documents"] + (["embeddings"] if with_embeddings else [])
            # Chroma reads all the hits of one call in one SQL statement: 16,442 queries of 11 hits
            # exceed SQLite's variable limit ("too many SQL variables"), so the queries go in
            # chunks of at most max_batch_size hits.
            step = max(1, self.max_batch_size // max(k, 1))
            result: dict[str, list[Any]] = {key: [] for key in ("ids", "metadatas", "distances", "documents")}
            result["embeddings"] = []
            for start in range(0, len(embeddings), step):
                part = collection.query(
                    query_embeddings=embeddings[start : start + step], n_results=k, where=where or None, include=include
                )
                for key in result:
                    found = part.get(key)
                    result[key] += list(found) if found is not None else []
            if not any(result["ids"]):
                self._refuse_empty(collection)
        vectors = result["embeddings"] if with_embeddings else None
        if vectors is None:
            vectors = [[None] * len(ids) for ids in result["ids"]]
        return [
            _sane(
                [
                    _neighbour(item_id, meta, float(1.0 - distance), document, vector)
                    for item_id, meta, distance, document, vector in zip(ids, metas, distances, documents, vecs)
                ]
            )
            for ids, metas, distances, documents, vecs in zip(
                result["ids"], result["metadatas"], result["distances"], result["documents"], vectors
            )
        ]


def _neighbour(item_id: str, meta: dict[str, Any], similarity: float, document: str | None, vector: Any) -> Neighbour:
    return Neighbour(
        id=item_id,
        title=str(meta.get("title", "")),
        price=_price_of(meta),
        similarity=similarity,
        category=meta.get("category"),
        document=document or "",
        embedding=None if vector is None else np.asarray(vector, dtype=np.float32),
    )


def _group_by(categories: dict[str, str | None]) -> dict[str, list[str]]:
    """``{id: category}`` as ``{category: [ids]}``, products without a category left out."""
    groups: dict[str, list[str]] = {}
    for item_id, category in categories.items():
        if category:
            groups.setdefault(category, []).append(item_id)
    return groups


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _one_line(error: BaseException) -> str:
    return " ".join(f"{type(error).__name__}: {error}".split())


def _price_of(meta: dict[str, Any]) -> float:
    value = meta.get("price")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def _sane(neighbours: list[Neighbour]) -> list[Neighbour]:
    """``neighbours`` without those whose price no item may have: a store written before
    ingestion refused them (or by another tool) must not make one absurd price the evidence."""
    kept = [n for n in neighbours if price_in_range(n.price)]
    if len(kept) < len(neighbours):
        log.warning("ignored %d stored product(s) with an impossible price", len(neighbours) - len(kept))
    return kept
