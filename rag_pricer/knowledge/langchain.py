"""The knowledge base as a LangChain vector store: similarity (with scores), MMR, metadata filters
and ``as_retriever()`` for LCEL chains, over the project's own store and embedder.

``langchain-chroma``'s ``Chroma`` is used underneath because it fits the store's guarantees
once it is handed the right pieces (checked against langchain-chroma 1.1.0, chromadb 1.5.9):

- **Own embeddings, no downloads.** ``Chroma`` embeds queries with the ``Embeddings`` it is
  given (``EmbedderEmbeddings``: the project's ``Embedder``, packaged MiniLM, offline) and only
  ever sends vectors to the collection, which was created with no embedding function; Chroma's
  default model is never asked for.
- **A read-only open creates nothing.** ``ProductVectorStore.open`` opens the collection through
  ``ProductStore.collection()``, which refuses a missing folder, a missing collection and a
  collection built with another embedding model, and then hands ``Chroma`` that client with
  ``create_collection_if_not_exists=False`` (a plain ``get_collection``).
- **The collection's id and metadata scheme.** Documents come back with the item id as
  ``Document.id``, the description as ``page_content`` and the stored metadata (``price``,
  ``title``, ``category``, ``split``, ``hash``). Writes go through ``rag-pricer-ingest index``,
  which keeps that scheme (content hashes, price checks, disk-space checks); the LangChain
  write methods (``add_texts``, ``delete``, ...) are refused here so a chain cannot add
  documents without a price to the pricing strategies' evidence.
- **Scores.** The collection uses cosine space, so ``similarity_search_with_relevance_scores``
  gives ``1 - distance``: the ``similarity`` of ``Retriever``'s ``Neighbour``. MMR is Chroma's
  (the same rule as ``retrieval.mmr``: ``lambda * relevance - (1 - lambda) * redundancy``).

What it does not do that ``Retriever`` does: leave the query item itself out of its results
(a pricing concern: LangChain users search with new descriptions) and drop stored products with
an impossible price (the indexer never stores one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_chroma import Chroma
from langchain_core.embeddings import Embeddings

from rag_pricer.knowledge.embeddings import Embedder
from rag_pricer.knowledge.retrieval import SearchOptions
from rag_pricer.knowledge.store import ProductStore
from rag_pricer.settings import Settings

READ_ONLY = (
    "the knowledge base is read-only through LangChain: add products with `rag-pricer-ingest index ITEMS --store DIR`"
)


class EmbedderEmbeddings(Embeddings):
    """The project's ``Embedder`` as LangChain ``Embeddings`` (normalised float vectors)."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.encode(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.encode_one(text).tolist()


class ProductVectorStore(Chroma):
    """The store's products as a read-only LangChain ``VectorStore`` (see the module docstring).

    >>> store = ProductVectorStore.from_settings()
    >>> cheap = ProductVectorStore.where(max_price=300)
    >>> store.similarity_search_with_relevance_scores("fuel pump module", k=5, filter=cheap)
    >>> store.as_retriever(search_type="mmr", search_kwargs={"k": 5, "fetch_k": 20})
    """

    @classmethod
    def open(cls, store: ProductStore, embedder: Embedder) -> ProductVectorStore:
        """Wrap an existing store; ``StoreError`` when it is missing or built with another model."""
        if embedder.model_name != store.model:
            raise ValueError(f"the store expects {store.model!r} embeddings, not {embedder.model_name!r}")
        store.collection()  # refuses what is missing or mismatched, creating nothing
        return cls(
            collection_name=store.collection_name,
            embedding_function=EmbedderEmbeddings(embedder),
            client=store.client,
            create_collection_if_not_exists=False,
        )

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> ProductVectorStore:
        """The store and embedder named by settings (environment and ``.env``), as ``Resources`` builds them."""
        settings = settings or Settings()
        embedder = Embedder(
            settings.embedding_model, batch_size=settings.embedding_batch_size, backend=settings.embedding_backend
        )
        return cls.open(ProductStore.from_settings(settings), embedder)

    @staticmethod
    def where(
        category: str | None = None, min_price: float | None = None, max_price: float | None = None
    ) -> dict[str, Any] | None:
        """A metadata ``filter`` for the search methods: one category and/or a price range (inclusive)."""
        return SearchOptions(category=category, min_price=min_price, max_price=max_price).where()

    # Writes bypass the indexer's scheme (prices, content hashes, disk checks): refused.
    def add_texts(self, texts: Any, metadatas: Any = None, ids: Any = None, **kwargs: Any) -> list[str]:
        raise NotImplementedError(READ_ONLY)

    def add_images(self, uris: Any, metadatas: Any = None, ids: Any = None) -> list[str]:
        raise NotImplementedError(READ_ONLY)

    def update_documents(self, ids: Sequence[str], documents: Any) -> None:
        raise NotImplementedError(READ_ONLY)

    def delete(self, ids: Any = None, **kwargs: Any) -> None:
        raise NotImplementedError(READ_ONLY)

    def delete_collection(self) -> None:
        raise NotImplementedError(READ_ONLY)

    def reset_collection(self) -> None:
        raise NotImplementedError(READ_ONLY)

    def fork(self, new_name: str) -> Chroma:
        raise NotImplementedError(READ_ONLY)
