"""Products added, replaced or removed while the knowledge base serves estimates."""

from __future__ import annotations

from collections.abc import Sequence

from rag_pricer.items import Item
from rag_pricer.knowledge.embeddings import Embedder
from rag_pricer.knowledge.store import ProductStore


class KnowledgeWriter:
    """Writes single products or small batches to a store that may be serving (the CLI's
    ``add`` and ``remove``, the service's ``PUT``/``DELETE /v1/products``).

    Items come validated by ingestion's own checks (``Item.from_record``); ``upsert`` refuses
    any that ``Item.problem`` rejects, as indexing does. The texts are embedded with the
    store's model and written with the store's write protocol (``ProductStore.upsert`` /
    ``delete``): a serving process, in this process or another, sees the change within its
    next request (``ProductStore`` notices the store's new version and reopens it).
    """

    #: (``embedder`` may be ``None`` for a writer that only deletes)
    def __init__(self, store: ProductStore, embedder: Embedder | None) -> None:
        self.store = store
        self.embedder = embedder

    def upsert(self, items: Sequence[Item]) -> list[str]:
        """Store or replace ``items``; their ids."""
        if not items:
            return []
        if self.embedder is None:
            raise ValueError("storing products needs an embedder")
        vectors = self.embedder.encode([item.description for item in items])
        self.store.upsert(items, vectors)
        return [item.id for item in items]

    def delete(self, ids: Sequence[str]) -> list[str]:
        """Delete the products ``ids``; those that were stored (the others are ignored)."""
        return self.store.delete(ids) if ids else []
