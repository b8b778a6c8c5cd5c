"""Fine-tuning on retrieval-augmented prompts (``rag-finetuned``): the token-budgeted prompt shared
by training and inference, training comparables retrieved as at inference (never the item
itself), a tiny CPU run through the CLI, the strategy end to end and its refusal of trained items."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag_pricer.api import Estimator
from rag_pricer.cli.app import app
from rag_pricer.items import Item
from rag_pricer.knowledge.retrieval import Retriever, SearchOptions
from rag_pricer.knowledge.store import Neighbour
from rag_pricer.query import Query
from rag_pricer.settings import Settings
from rag_pricer.strategies.finetune.base_model import load_tokenizer
from rag_pricer.strategies.finetune.price_model import PriceModel
from rag_pricer.strategies.finetune.prompt import COMPLETION_BUDGET, IGNORE, PromptEncoder, prompt_encoder
from rag_pricer.strategies.finetuned import price_model
from rag_pricer.training.finetune.comparables import ComparablesCache
from rag_pricer.training.finetune.config import FinetuneConfig

pytestmark = pytest.mark.slow  # loads and trains the real 135M model


@pytest.fixture(scope="session")
def tokenizer(checkpoint: str) -> object:
    return load_tokenizer(checkpoint)


def neighbour(text: str, price: float, similarity: float = 0.9) -> Neighbour:
    return Neighbour(id=f"n{price}", title=text[:40], price=price, similarity=similarity, document=text)


# the prompt --------------------------------------------------------------------------------


def test_every_part_of_the_prompt_is_cut_to_its_token_budget(tokenizer: object) -> None:
    encoder = PromptEncoder(tokenizer, k=3, comparable_tokens=10, query_tokens=20, max_length=200)
    huge = " ".join(["stainless steel replacement part"] * 2000)
    small = encoder.prompt_ids("Cordless drill", [neighbour("Drill bit set", 12.0)])
    big = encoder.prompt_ids(huge, [neighbour(huge, 12.0), neighbour(huge, 30.0), neighbour(huge, 45.0)])
    text = tokenizer.decode(big)
    assert len(big) <= 200 - COMPLETION_BUDGET
    # three comparables of 10 text tokens + bullet + price each, a 20-token description
    assert len(big) - len(small) <= 2 * (10 + 12) + 20
    assert text.count("\n- ") == 3 and "— $12\n" in text and "— $30\n" in text and "— $45\n" in text
    assert text.startswith("How much does this cost to the nearest dollar?\n\nSimilar products:\n- ")
    assert text.endswith("\n\nPrice is $") and "\nProduct:\nstainless steel" in text


def test_the_total_cap_drops_the_least_similar_comparables_first(tokenizer: object) -> None:
    loose = PromptEncoder(tokenizer, k=5, comparable_tokens=30, query_tokens=40, max_length=400)
    tight = replace(loose, max_length=110)
    comparables = [neighbour(f"product number {i} " * 20, 10.0 + i) for i in range(5)]
    description = "Garden hose 50 ft " * 30
    prompt = tight.prompt_ids(description, comparables)
    text = tokenizer.decode(prompt)
    assert len(prompt) <= 110 - COMPLETION_BUDGET
    kept = text.count("\n- ")
    assert 0 < kept < 5 and "— $10\n" in text and "— $14\n" not in text  # the most similar stays
    assert (
        loose.prompt_ids(description, comparables) != prompt
        and tokenizer.decode(loose.prompt_ids(description, comparables)).count("\n- ") == 5
    )
    with pytest.raises(ValueError, match="no room"):
        PromptEncoder(tokenizer, max_length=20, k=5)


def test_training_and_inference_read_the_same_ids(tokenizer: object, train_items: list[Item]) -> None:
    item = train_items[3]
    comparables = [neighbour(train_items[i].description, train_items[i].price) for i in (5, 6, 7)]
    config = FinetuneConfig.cpu(k=3, comparable_tokens=16, query_tokens=48, max_length=160).record()
    example = prompt_encoder(tokenizer, config).example(item, comparables)
    prompt = [t for t, label in zip(example["input_ids"], example["labels"]) if label == IGNORE]
    answer = [t for t, label in zip(example["input_ids"], example["labels"]) if label != IGNORE]
    assert prompt == prompt_encoder(tokenizer, json.loads(json.dumps(config))).prompt_ids(item.description, comparables)
    assert tokenizer.decode(answer) == f"{round(item.price)}.00"
    # a run recorded before comparables existed keeps the course prompt
    old = {k: v for k, v in config.items() if k not in ("k", "comparable_tokens", "query_tokens")}
    assert prompt_encoder(tokenizer, old).k == 0


# training comparables ----------------------------------------------------------------------


class CountingRetriever(Retriever):
    def __init__(self, inner: Retriever) -> None:
        super().__init__(inner.embedder, inner.store)
        self.searched = 0

    def search_vectors(self, queries, vectors, options):  # type: ignore[no-untyped-def]
        self.searched += len(queries)
        return super().search_vectors(queries, vectors, options)


def test_training_comparables_never_hold_the_item_itself_and_are_cached(
    settings: Settings, train_items: list[Item], tmp_path: Path
) -> None:
    retriever = CountingRetriever(Estimator.from_settings(settings).resources.retriever)
    items = train_items[:30]  # all of them are in the store
    twin = Item(id="not-stored", title=items[0].title, text=items[0].text, price=1.0, split="train")
    found = ComparablesCache(retriever, 4, tmp_path / "c.jsonl").retrieve([*items, twin])
    assert all(len(found[i.id]) == 4 and i.id not in {n.id for n in found[i.id]} for i in items)
    assert items[0].id not in {n.id for n in found["not-stored"]}  # a verbatim copy is the item itself too
    # the same neighbours as the strategy's search (which embeds the query itself)
    # (ids: a batch of one embeds to the last float bits differently)
    assert [n.id for n in found[items[5].id]] == [
        n.id for n in retriever.search_many([Query.of(items[5])], SearchOptions(k=4))[0]
    ]
    assert retriever.searched == 31 + 1
    retriever.searched = 31
    again = ComparablesCache(retriever, 4, tmp_path / "c.jsonl").retrieve(items[:10])
    assert retriever.searched == 31 and again == {i.id: found[i.id] for i in items[:10]}
    ComparablesCache(retriever, 3, tmp_path / "c.jsonl").retrieve(items[:2])  # another k is searched again
    assert retriever.searched == 33


# the run and the strategy ------------------------------------------------------------------


@pytest.fixture(scope="module")
def rag_run(tmp_path_factory: pytest.TempPathFactory, items_path: Path, base_cache: Path, small_store: object) -> Path:
    """A tiny run through the CLI: 4 train items with 3 comparables each, 4 steps."""
    models = tmp_path_factory.mktemp("rag-models")
    shutil.copytree(base_cache, models / "base", copy_function=os.link)  # the base is only read: linked
    args = [
        "finetune",
        "--items",
        str(items_path),
        "--limit",
        "4",
        "--max-steps",
        "4",
        "--batch-size",
        "2",
        "--lr",
        "2e-3",
        "--k",
        "3",
        "--comparable-tokens",
        "12",
        "--query-tokens",
        "24",
        "--max-length",
        "112",
        "--store",
        str(small_store.path),
        "--json",
    ]  # type: ignore[attr-defined]
    result = CliRunner().invoke(app, args, env={"RAG_PRICER_MODELS_DIR": str(models)})
    assert result.exit_code == 0, result.output
    return models


def copy_models(run: Path, target: Path) -> None:
    """``run`` into ``target``: the fp32 base (only read, half a gigabyte) hard-linked, the rest copied."""
    target.mkdir(parents=True, exist_ok=True)
    for child in run.iterdir():
        if child.is_dir():
            link = os.link if child.name == "base" else shutil.copy2
            shutil.copytree(child, target / child.name, copy_function=link, dirs_exist_ok=True)
        else:
            shutil.copy2(child, target / child.name)


def test_the_cli_trains_on_comparables_and_records_them(rag_run: Path, train_items: list[Item]) -> None:
    folder = rag_run / "rag-finetuned"
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "finished" and record["config"]["k"] == 3 and record["config"]["max_length"] == 112
    assert record["data"]["comparables_sha256"] and record["data"]["n_train"] == 4
    rows = [json.loads(line) for line in (folder / "comparables.jsonl").read_text().splitlines()]
    assert {r["id"] for r in rows} == {i.id for i in train_items[:4]}
    assert all(len(r["comparables"]) == 3 and r["id"] not in {c["id"] for c in r["comparables"]} for r in rows)


def test_the_strategy_prices_with_the_prompt_it_was_trained_on(
    rag_run: Path, settings: Settings, dev_items: list[Item]
) -> None:
    copy_models(rag_run, settings.models_dir)
    estimator = Estimator.from_settings(settings)
    estimate = estimator.estimate(dev_items[2], strategy="rag-finetuned", decoding="median")
    assert estimate.strategy == "rag-finetuned" and estimate.price > 0 and len(estimate.comparables) == 3
    assert any(note.startswith("median decoding; most likely prices: $") for note in estimate.notes)
    model = price_model(estimator.resources, settings.models_dir / "rag-finetuned")  # the one the strategy loaded
    neighbours = estimator.resources.retriever.search(Query.of(dev_items[2]), SearchOptions(k=3))
    _, encoder, _ = model.load()
    assert encoder.k == 3 and encoder.max_length == 112
    # the distribution depends on the comparables: it is not the description alone
    assert [n.id for n in neighbours] == [c.id for c in estimate.comparables]
    with_comparables = model.distribution(dev_items[2].description, neighbours)
    assert with_comparables.median() == estimate.price or estimate.fallback
    assert with_comparables.expectation() != model.distribution(dev_items[2].description, []).expectation()


def test_trained_items_are_refused_and_a_course_run_is_not_a_rag_run(
    rag_run: Path, settings: Settings, train_items: list[Item], dev_items: list[Item]
) -> None:
    copy_models(rag_run, settings.models_dir)
    pricer = Estimator.from_settings(settings).pricer("rag-finetuned")
    trained = [i.id for i in train_items[:4]]
    assert set(trained) <= set(pricer.leaked_ids(trained + [dev_items[0].id]))
    assert dev_items[0].id not in pricer.leaked_ids([dev_items[0].id])
    assert isinstance(PriceModel(settings.models_dir / "rag-finetuned", settings.models_dir / "base").k, int)
    result = CliRunner().invoke(
        app,
        [
            "estimate",
            "Cordless drill",
            "-s",
            "rag-finetuned",
            "-o",
            f"run={settings.models_dir / 'none'}",
            "--store",
            str(settings.store_path),
        ],
        env={"RAG_PRICER_MODELS_DIR": str(settings.models_dir)},
    )
    assert result.exit_code == 2 and "rag-pricer finetune" in result.output
