"""``finetuned`` and ``rag-finetuned``: the LoRA fine-tuned model of ``rag-pricer finetune``
completes "Price is $", after the description alone (``finetuned``, the course's set-up) or
after its k comparables and their prices (``rag-finetuned``, a run trained with ``--k``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rag_pricer.pricing.values import Estimate

from rag_pricer.query import Query
from rag_pricer.strategies.finetune.decoding import DECODINGS, PriceDistribution
from rag_pricer.strategies.finetune.price_model import PriceModel
from rag_pricer.strategies.prompting.guard import PriceGuard
from rag_pricer.pricing.pricer import Pricer
from rag_pricer.pricing.registry import register
from rag_pricer.pricing.resources import Resources
from rag_pricer.knowledge.retrieval import SearchOptions
from rag_pricer.knowledge.store import Neighbour
from rag_pricer.strategies.knn import DEFAULT_K, KnnPricer


class FinetunedPricer(Pricer):
    """Prices with the fine-tuned model's distribution over whole-dollar prices.

    A run trained with comparables (``k`` > 0) reads the retrieved comparables in the prompt it
    was trained on (``finetune.rag_prompt``, the same encoder); a course run reads the
    description alone. Comparables are also evidence, bound the answer (``PriceGuard``) and are
    the fallback, as for the LLM strategies; ``llm_answer`` is the greedy completion and the
    notes give the most likely prices with their probabilities."""

    def __init__(self, model: PriceModel, knn: KnnPricer, decoding: str = "expectation", guard: PriceGuard = PriceGuard()) -> None:
        if decoding not in DECODINGS:
            raise ValueError(f"decoding must be one of {DECODINGS}, not {decoding!r}")
        self.model = model
        self.knn = knn
        self.decoding = decoding
        self.guard = guard

    def leaked_ids(self, ids: list[str]) -> list[str]:
        trained = self.model.trained_ids()
        return sorted(set(self.knn.leaked_ids(ids)) | {i for i in ids if i in trained})

    def model_metrics(self) -> dict[str, Any]:
        """The training run's model-centric figures, reported beside the business metrics."""
        record = self.model.record
        final = record.get("final") or {}
        return {"run": str(self.model.run_dir), "adapter": self.model.adapter, "decoding": self.decoding, "base": record["base"]["spec"],
                "train_items": record["data"]["n_train"], "steps": final.get("steps"), "train_loss": final.get("train_loss"),
                "eval_loss": final.get("eval_loss"), "eval_perplexity": final.get("eval_perplexity")}  # fmt: skip

    def _estimate_many(self, queries: list[Query]) -> list[Estimate]:
        found = self.knn.retriever.search_many(queries, self.knn.search)
        return [self._decide(query, neighbours) for query, neighbours in zip(queries, found)]

    def _decide(self, query: Query, neighbours: list[Neighbour]) -> Estimate:
        estimate = self.knn.from_neighbours(query, neighbours)
        estimate.strategy = self.name
        try:
            distribution = self.model.distribution(query.text, neighbours)
        except (RuntimeError, ValueError) as error:  # e.g. out of memory: the user still gets a price
            estimate.fallback = f"fine-tuned model failed ({type(error).__name__}): knn price used"
            return estimate
        estimate.llm_answer = f"{distribution.greedy_text}.00" if distribution.greedy_text else "(no digits)"
        estimate.notes.append(describe(distribution, self.decoding))
        return self.guard.settle(estimate, distribution.price(self.decoding), neighbours, source=f"the model's {self.decoding} price")


def describe(distribution: PriceDistribution, decoding: str) -> str:
    top = ", ".join(f"${price} {p:.0%}" for price, p in distribution.top(5))
    return f"{decoding} decoding; most likely prices: {top or 'none'} ({distribution.mass:.0%} of the probability found)"


def price_model(resources: Resources, run_dir: Path, adapter: bool = True) -> PriceModel:
    """The fine-tuned model of ``run_dir`` (or its base alone), loaded once per process:
    strategies that differ only in their decoding share it and its distributions."""
    key = ("price_model", str(Path(run_dir).resolve()), adapter)
    base_dir = Path(resources.settings.models_dir) / "base"
    return resources.shared(key, lambda: PriceModel(run_dir, base_dir, adapter=adapter))


@register(
    "finetuned",
    "LoRA fine-tuned LLM (`rag-pricer finetune`): expectation, median or greedy over its digit-by-digit price distribution.",
    needs=("adapter", "store"),
)
def build(resources: Resources, run: str | None = None, decoding: str = "expectation", adapter: bool = True, k: int = DEFAULT_K) -> FinetunedPricer:
    folder = Path(run) if run else Path(resources.settings.models_dir) / "finetuned"
    model = price_model(resources, folder, adapter=adapter)
    model.load()  # now rather than on the first estimate: the service builds its default strategy at start-up
    return FinetunedPricer(model, KnnPricer(resources.retriever, SearchOptions(k=k)), decoding)


@register(
    "rag-finetuned",
    "LoRA fine-tuned LLM trained on retrieval-augmented prompts (`rag-pricer finetune --k 5`): reads the k comparables and "
    "their prices, then expectation, median or greedy over its price distribution.",
    needs=("adapter", "store"),
)
def build_rag(resources: Resources, run: str | None = None, decoding: str = "expectation", k: int | None = None) -> FinetunedPricer:
    """``k`` comparables are retrieved (default: the number the run was trained with)."""
    folder = Path(run) if run else Path(resources.settings.models_dir) / "rag-finetuned"
    model = price_model(resources, folder)
    if not model.k:
        raise ValueError(f"the run in {folder} was trained without comparables: use the `finetuned` strategy, or train with --k")
    model.load()
    return FinetunedPricer(model, KnnPricer(resources.retriever, SearchOptions(k=k or model.k)), decoding)
