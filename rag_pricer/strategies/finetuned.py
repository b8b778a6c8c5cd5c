"""``finetuned`` and ``rag-finetuned``: the LoRA fine-tuned model of ``rag-pricer finetune``
completes "Price is $", after the description alone (``finetuned``, the course's set-up) or
after its k comparables and their prices (``rag-finetuned``, a run trained with ``--k``)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from rag_pricer.knowledge.retrieval import SearchOptions
from rag_pricer.knowledge.store import Neighbour
from rag_pricer.pricing.pricer import Pricer
from rag_pricer.pricing.registry import Missing, ModelsCheck, StrategyOptions, register
from rag_pricer.pricing.resources import Resources
from rag_pricer.pricing.values import Estimate
from rag_pricer.query import Query
from rag_pricer.settings import Settings
from rag_pricer.strategies.finetune.decoding import DECODINGS, PriceDistribution
from rag_pricer.strategies.finetune.price_model import PriceModel
from rag_pricer.strategies.finetune.run_folder import ADAPTER_DIR, RUN_DIRS, RUN_FILE, default_run_dir, run_fingerprint
from rag_pricer.strategies.knn import DEFAULT_K, KnnPricer
from rag_pricer.strategies.prompting.guard import PriceGuard


class FinetunedPricer(Pricer):
    """Prices with the fine-tuned model's distribution over whole-dollar prices.

    A run trained with comparables (``k`` > 0) reads the retrieved comparables in the prompt it
    was trained on (``finetune.prompt``, the same encoder); a course run reads the
    description alone. Comparables are also evidence, bound the answer (``PriceGuard``) and are
    the fallback, as for the LLM strategies; ``llm_answer`` is the greedy completion and the
    notes give the most likely prices with their probabilities."""

    def __init__(
        self, model: PriceModel, knn: KnnPricer, decoding: str = "expectation", guard: PriceGuard = PriceGuard()
    ) -> None:
        if decoding not in DECODINGS:
            raise ValueError(f"decoding must be one of {DECODINGS}, not {decoding!r}")
        self.model = model
        self.knn = knn
        self.decoding = decoding
        self.guard = guard

    def leaked_ids(self, ids: Sequence[str]) -> list[str]:
        trained = self.model.trained_ids()
        return sorted(set(self.knn.leaked_ids(ids)) | {i for i in ids if i in trained})

    def fingerprint(self) -> dict[str, Any]:
        """The comparables' retrieval, the run (retrained: another record), adapter or base, decoding."""
        model = {"run": run_fingerprint(self.model.run_dir), "adapter": self.model.adapter}
        return {"knn": self.knn.fingerprint(), "model": model, "decoding": self.decoding}

    def model_metrics(self) -> dict[str, Any]:
        """The training run's model-centric figures, reported beside the business metrics."""
        record = self.model.record
        final = record.get("final") or {}
        return {
            "run": str(self.model.run_dir),
            "adapter": self.model.adapter,
            "decoding": self.decoding,
            "base": record["base"]["spec"],
            "train_items": record["data"]["n_train"],
            "steps": final.get("steps"),
            "train_loss": final.get("train_loss"),
            "eval_loss": final.get("eval_loss"),
            "eval_perplexity": final.get("eval_perplexity"),
        }

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
        return self.guard.settle(
            estimate, distribution.price(self.decoding), neighbours, source=f"the model's {self.decoding} price"
        )


def describe(distribution: PriceDistribution, decoding: str) -> str:
    top = ", ".join(f"${price} {p:.0%}" for price, p in distribution.top(5))
    return (
        f"{decoding} decoding; most likely prices: {top or 'none'} ({distribution.mass:.0%} of the probability found)"
    )


def price_model(resources: Resources, run_dir: Path, adapter: bool = True) -> PriceModel:
    """The fine-tuned model of ``run_dir`` (or its base alone), loaded once per process:
    strategies that differ only in their decoding share it and its distributions."""
    key = ("price_model", str(Path(run_dir).resolve()), adapter)
    base_dir = Path(resources.settings.models_dir) / "base"
    return resources.shared(key, lambda: PriceModel(run_dir, base_dir, adapter=adapter))


Decoding = Literal["expectation", "median", "greedy"]


class FinetunedOptions(StrategyOptions):
    run: str | None = Field(None, description="The run folder of `rag-pricer finetune`; default: models_dir/finetuned.")
    decoding: Decoding = Field("expectation", description="How a price is read from the model's distribution.")
    adapter: bool = Field(True, description="Apply the LoRA adapter (false: the base model alone, for comparison).")
    k: int = Field(DEFAULT_K, ge=1, le=100, description="Comparables retrieved to bound the answer and fall back on.")


class RagFinetunedOptions(StrategyOptions):
    run: str | None = Field(None, description="The run folder of `finetune --k`; default: models_dir/rag-finetuned.")
    decoding: Decoding = Field("expectation", description="How a price is read from the model's distribution.")
    k: int | None = Field(None, ge=1, le=100, description="Comparables in the prompt; default: as many as in training.")


def finished_run(folder: str, options: str = "") -> ModelsCheck:
    """The check of a strategy that loads the run in ``models_dir/folder`` (or its option
    ``run``), made by ``rag-pricer finetune`` with ``options``: missing until the run has finished."""

    def missing(settings: Settings, strategy_options: Mapping[str, Any]) -> Missing | None:
        run = Path(strategy_options.get("run") or Path(settings.models_dir) / folder)
        command = f"rag-pricer finetune --items {settings.items_path} --split train{options}"
        try:
            record = json.loads((run / RUN_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return Missing("needs-training", f"no fine-tuned model in {run}", command)
        except (OSError, ValueError) as error:
            return Missing("needs-training", f"cannot read {run / RUN_FILE} ({error})", command + " --overwrite")
        if not isinstance(record, dict) or record.get("status") != "finished" or not (run / ADAPTER_DIR).is_dir():
            unfinished = f"the fine-tuning run in {run} has not finished"
            return Missing("needs-training", unfinished, f"{command} (resumes it)")
        return None

    return missing


@register(
    "finetuned",
    "LoRA fine-tuned LLM (`rag-pricer finetune`): expectation, median or greedy over its digit-by-digit price "
    "distribution.",
    needs=("adapter", "store"),
    options=FinetunedOptions,
    extra="finetune",
    models=finished_run(RUN_DIRS[False]),
)
def build(resources: Resources, options: FinetunedOptions) -> FinetunedPricer:
    folder = Path(options.run) if options.run else default_run_dir(resources.settings.models_dir, False)
    model = price_model(resources, folder, adapter=options.adapter)
    model.load()  # now rather than on the first estimate: the service builds its default strategy at start-up
    return FinetunedPricer(model, KnnPricer(resources.retriever, SearchOptions(k=options.k)), options.decoding)


@register(
    "rag-finetuned",
    "LoRA fine-tuned LLM trained on retrieval-augmented prompts (`rag-pricer finetune --k 5`): reads the k "
    "comparables and "
    "their prices, then expectation, median or greedy over its price distribution.",
    needs=("adapter", "store"),
    options=RagFinetunedOptions,
    extra="finetune",
    models=finished_run(RUN_DIRS[True], " --k 5"),
)
def build_rag(resources: Resources, options: RagFinetunedOptions) -> FinetunedPricer:
    """``k`` comparables are retrieved (default: the number the run was trained with)."""
    folder = Path(options.run) if options.run else default_run_dir(resources.settings.models_dir, True)
    model = price_model(resources, folder)
    if not model.k:
        raise ValueError(
            f"the run in {folder} was trained without comparables: use the `finetuned` strategy, or train with --k"
        )
    model.load()
    knn = KnnPricer(resources.retriever, SearchOptions(k=options.k or model.k))
    return FinetunedPricer(model, knn, options.decoding)
