"""``FinetuneJob``: one ``rag-pricer finetune`` — the items read, their comparables retrieved, the
run trained (or resumed) in its folder."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag_pricer.items import Item, read_items
from rag_pricer.settings import Settings
from rag_pricer.strategies.finetune.run_folder import default_run_dir
from rag_pricer.training.finetune.config import RAG_MAX_LENGTH, FinetuneConfig


@dataclass
class FinetuneJob:
    """``changes`` are ``FinetuneConfig`` fields (None: the machine's default), plus ``rank``
    (r, with alpha = 2r); the run goes to ``out`` (default: where the strategy looks)."""

    settings: Settings
    changes: Mapping[str, Any] = field(default_factory=dict)
    split: str = "train"
    limit: int | None = None
    eval_split: str | None = None
    eval_limit: int = 100
    extra_items: Path | None = None
    extra_limit: int | None = None
    out: Path | None = None
    overwrite: bool = False

    @property
    def k(self) -> int:
        return int(self.changes.get("k") or 0)

    @property
    def folder(self) -> Path:
        return self.out or default_run_dir(self.settings.models_dir, bool(self.k))

    def config(self, cuda: bool) -> FinetuneConfig:
        changes = {name: value for name, value in self.changes.items() if value is not None and name != "rank"}
        if self.k and changes.get("max_length") is None:
            changes["max_length"] = RAG_MAX_LENGTH
        rank = self.changes.get("rank")
        if rank:
            changes |= {"r": rank, "alpha": 2 * rank}
        return FinetuneConfig.for_machine(cuda, **changes)

    def run(self, notify: Callable[[str], None] = print) -> dict[str, Any]:
        """Train (or resume) and return the run record; ``notify`` hears what takes a while.
        Raises ``ValueError`` / ``OSError`` (bad options, no items, missing files) and the store's
        errors: the caller's user errors."""
        import torch

        from rag_pricer.training.finetune.run import FinetuneRun

        settings = self.settings
        config = self.config(torch.cuda.is_available())
        train = read_items(settings.items_path, split=self.split, limit=self.limit)
        train += read_items(self.extra_items, limit=self.extra_limit) if self.extra_items else []
        evaluation = (
            read_items(settings.items_path, split=self.eval_split, limit=self.eval_limit) if self.eval_split else []
        )
        if not train:
            raise ValueError(f"no items of split {self.split!r} in {settings.items_path}")
        data: dict[str, Any] = {
            "items": str(settings.items_path),
            "split": self.split,
            "limit": self.limit,
            "eval_split": self.eval_split,
            "eval_limit": self.eval_limit if self.eval_split else None,
            "extra_items": str(self.extra_items) if self.extra_items else None,
            "extra_limit": self.extra_limit,
        }
        comparables = None
        if self.k:
            comparables = self.retrieve([*train, *evaluation], notify)
            data["store"] = settings.chroma_host or str(settings.store_path)
        run = FinetuneRun(config, self.folder, Path(settings.models_dir) / "base", overwrite=self.overwrite)
        return run.train(train, evaluation, data, comparables)

    def retrieve(self, items: list[Item], notify: Callable[[str], None]) -> dict[str, Any]:
        """The k comparables of each item from the store, as the strategy will retrieve them."""
        from rag_pricer.pricing.resources import Resources
        from rag_pricer.training.finetune.comparables import ComparablesCache

        if len({i.id for i in items}) != len(items):
            raise ValueError("the training and evaluation items hold duplicate ids")
        cache = self.folder / "comparables.jsonl"
        notify(f"retrieving {self.k} comparables for {len(items):,} items (cached in {cache})")
        return ComparablesCache(Resources(self.settings).retriever, self.k, cache).retrieve(items)
