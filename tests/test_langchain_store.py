"""The knowledge base as a LangChain vector store, on the small real store of conftest."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough

from rag_pricer.items import Item
from rag_pricer.knowledge.embeddings import Embedder
from rag_pricer.knowledge.langchain import EmbedderEmbeddings, ProductVectorStore
from rag_pricer.knowledge.retrieval import Retriever, SearchOptions
from rag_pricer.knowledge.store import ProductStore, StoreError
from rag_pricer.query import Query
from rag_pricer.strategies.prompting.answers import parse_price

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def vector_store(small_store: ProductStore, embedder: Embedder) -> ProductVectorStore:
    return ProductVectorStore.open(small_store, embedder)


@pytest.fixture(scope="module")
def retriever(small_store: ProductStore, embedder: Embedder) -> Retriever:
    return Retriever(embedder, small_store)


class PromptSpy(BaseCallbackHandler):
    """Keeps the messages each chat model call was given."""

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def on_chat_model_start(self, serialized: Any, messages: list[list[Any]], **kwargs: Any) -> None:
        self.prompts += ["\n".join(str(m.content) for m in batch) for batch in messages]


def test_embeddings_are_the_project_embedder(embedder: Embedder) -> None:
    wrapped = EmbedderEmbeddings(embedder)
    texts = ["cordless drill with two batteries", "stainless steel kitchen sink"]
    np.testing.assert_allclose(wrapped.embed_documents(texts), embedder.encode(texts), atol=1e-6)
    np.testing.assert_allclose(wrapped.embed_query(texts[0]), embedder.encode_one(texts[0]), atol=1e-6)


def test_similarity_gives_the_retrievers_ids_prices_and_scores(
    vector_store: ProductVectorStore, retriever: Retriever, dev_items: list[Item]
) -> None:
    for item in dev_items[:5]:  # dev items are not stored: the Retriever drops nothing
        expected = retriever.search(Query(item.description), SearchOptions(k=5))
        found = vector_store.similarity_search_with_relevance_scores(item.description, k=5)
        assert [doc.id for doc, _ in found] == [n.id for n in expected]
        assert [doc.metadata["price"] for doc, _ in found] == [n.price for n in expected]
        assert [score for _, score in found] == pytest.approx([n.similarity for n in expected], abs=1e-5)
        assert [doc.page_content for doc, _ in found] == [n.document for n in expected]


def test_mmr_returns_k_diverse_documents_as_the_retriever_does(
    vector_store: ProductVectorStore, retriever: Retriever, embedder: Embedder, dev_items: list[Item]
) -> None:
    changed = 0
    for item in dev_items[:5]:
        docs = vector_store.max_marginal_relevance_search(item.description, k=5, fetch_k=20, lambda_mult=0.5)
        assert len(docs) == 5 and len({d.id for d in docs}) == 5
        expected = retriever.search(Query(item.description), SearchOptions(k=5, mmr=True, fetch_k=20, mmr_lambda=0.5))
        assert {d.id for d in docs} == {n.id for n in expected}
        nearest = vector_store.similarity_search(item.description, k=5)
        if {d.id for d in docs} != {d.id for d in nearest}:
            changed += 1
            assert redundancy(embedder, docs) < redundancy(embedder, nearest)
    assert changed, "MMR picked the plain nearest neighbours for every query: nothing shows it diversifies"


def redundancy(embedder: Embedder, docs: list[Any]) -> float:
    """Mean cosine similarity between the documents, pair by pair."""
    vectors = embedder.encode([d.page_content for d in docs])
    similarity = vectors @ vectors.T
    return float(similarity[np.triu_indices(len(docs), 1)].mean())


def test_category_and_price_filters(
    vector_store: ProductVectorStore, retriever: Retriever, train_items: list[Item]
) -> None:
    query = "replacement part with mounting hardware"
    category = max(
        {i.category for i in train_items if i.category}, key=lambda c: sum(i.category == c for i in train_items)
    )
    in_category = vector_store.similarity_search(query, k=8, filter=ProductVectorStore.where(category=category))
    assert in_category and all(d.metadata["category"] == category for d in in_category)

    priced = vector_store.similarity_search(query, k=8, filter=ProductVectorStore.where(min_price=20, max_price=60))
    assert len(priced) == 8 and all(20 <= d.metadata["price"] <= 60 for d in priced)
    unfiltered = vector_store.similarity_search(query, k=8)
    assert any(not 20 <= d.metadata["price"] <= 60 for d in unfiltered), "the filter must have changed something"

    both = ProductVectorStore.where(category=category, max_price=50)
    docs = vector_store.as_retriever(search_kwargs={"k": 5, "filter": both}).invoke(query)
    expected = retriever.search(Query(query), SearchOptions(k=5, category=category, max_price=50))
    assert [d.id for d in docs] == [n.id for n in expected]
    assert all(d.metadata["category"] == category and d.metadata["price"] <= 50 for d in docs)


def test_queries_embed_with_our_embedder_never_chromas_default(
    vector_store: ProductVectorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("Chroma's default embedding function (a download) was called")

    monkeypatch.setattr(ONNXMiniLM_L6_V2, "__init__", refuse)
    monkeypatch.setattr(ONNXMiniLM_L6_V2, "__call__", refuse)
    assert vector_store.similarity_search("usb cable", k=3)
    assert vector_store.max_marginal_relevance_search("usb cable", k=3)
    assert vector_store.as_retriever(search_type="mmr").invoke("usb cable")


def test_opening_a_missing_store_creates_nothing(tmp_path: Path, small_store: ProductStore, embedder: Embedder) -> None:
    missing = tmp_path / "no-store"
    with pytest.raises(StoreError, match="no store"):
        ProductVectorStore.open(ProductStore(missing), embedder)
    assert not missing.exists()

    with pytest.raises(StoreError, match="no collection"):
        ProductVectorStore.open(ProductStore(small_store.path, collection="other"), embedder)
    names = [c.name for c in small_store.client.list_collections()]
    assert "other" not in names

    with pytest.raises(StoreError, match="built with"):
        ProductVectorStore.open(ProductStore(small_store.path, model="another-model"), Embedder("another-model"))
    with pytest.raises(ValueError, match="expects"):
        ProductVectorStore.open(small_store, Embedder("another-model"))


def test_writes_are_refused(vector_store: ProductVectorStore, small_store: ProductStore) -> None:
    before = small_store.count()
    with pytest.raises(NotImplementedError, match="read-only"):
        vector_store.add_texts(["a product without a price"])
    with pytest.raises(NotImplementedError, match="read-only"):
        vector_store.delete([small_store.collection().peek(1)["ids"][0]])
    with pytest.raises(NotImplementedError, match="read-only"):
        vector_store.delete_collection()
    assert small_store.count() == before


def test_lcel_chain_prices_an_item_from_the_retrieved_comparables(
    vector_store: ProductVectorStore, dev_items: list[Item]
) -> None:
    item = dev_items[0]
    retriever = vector_store.as_retriever(search_kwargs={"k": 4})
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Estimate the price in USD."), ("human", "Comparables:\n{comparables}\n\nItem:\n{description}")]
    )
    listing = RunnableLambda(
        lambda docs: "\n".join(f"- {d.metadata['title']}: ${d.metadata['price']:.2f}" for d in docs)
    )
    chain = (
        {"comparables": retriever | listing, "description": RunnablePassthrough()}
        | prompt
        | FakeListChatModel(responses=["Price is $123.45"])
        | StrOutputParser()
        | RunnableLambda(parse_price)
    )
    spy = PromptSpy()
    assert chain.invoke(item.description, config={"callbacks": [spy]}) == pytest.approx(123.45)
    nearest = vector_store.similarity_search(item.description, k=4)
    assert len(spy.prompts) == 1
    for doc in nearest:  # the model saw the store's comparables and their prices
        assert f"{doc.metadata['title']}: ${doc.metadata['price']:.2f}" in spy.prompts[0]


def test_readme_example_runs(small_store: ProductStore, dev_items: list[Item], monkeypatch: pytest.MonkeyPatch) -> None:
    text = README.read_text(encoding="utf-8")
    found = re.search(r"<!-- runs: tests/test_langchain_store.py -->\n```python\n(.*?)```", text, re.DOTALL)
    assert found, "the README's LangChain example is missing"
    monkeypatch.setenv("RAG_PRICER_STORE_PATH", str(small_store.path))
    monkeypatch.setenv("RAG_PRICER_COLLECTION", small_store.collection_name)
    monkeypatch.chdir(small_store.path)  # no developer's .env applies
    spy = PromptSpy()
    namespace: dict[str, Any] = {"chat_model": FakeListChatModel(responses=["Price is $226.95"], callbacks=[spy])}
    exec(compile(found.group(1), "README.md", "exec"), namespace)  # noqa: S102 - the README's own code, the point of the test
    assert namespace["price"] == pytest.approx(226.95)
    assert len(spy.prompts) == 1 and spy.prompts[0].count("\n- ") >= 4  # five comparables with prices
    assert all(re.search(r": \$\d", line) for line in spy.prompts[0].splitlines() if line.startswith("- "))
