"""Finished (and half-finished) runs on disk, so that a long comparison can be resumed.

A run is identified by ``run_key``: the strategy, the options and settings that change its
answers, and the items scored. A rerun with the same key reuses the saved result; an
interrupted run leaves a checkpoint of the rows it finished, and the rerun scores only the rest.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rag_pricer.evaluation.bootstrap import Bootstrap
from rag_pricer.evaluation.results import EvaluationResult
from rag_pricer.strategies.finetune.run import run_fingerprint
from rag_pricer.items import Item
from rag_pricer.pricing.registry import Strategy
from rag_pricer.settings import Settings


def items_fingerprint(items: Sequence[Item]) -> str:
    """Hash of the scored items (ids and true prices, in order)."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(f"{item.id}\x00{item.price!r}\n".encode())
    return digest.hexdigest()


def relevant_settings(strategy: Strategy, settings: Settings) -> dict[str, Any]:
    """The settings that can change this strategy's estimates, chosen by what it needs."""
    chosen: dict[str, Any] = {"max_description_chars": settings.max_description_chars}
    if "store" in strategy.needs:
        store = f"{settings.chroma_host}:{settings.chroma_port}" if settings.chroma_host else str(Path(settings.store_path).resolve())
        chosen |= {"store": store, "collection": settings.collection, "embedding_model": settings.embedding_model}
    if "llm" in strategy.needs:
        chosen |= {
            "llm": settings.llm,
            "llm_base_url": settings.llm_base_url,
            "local_model_path": str(settings.local_model_path) if settings.local_model_path else None,
        }
    if "trained" in strategy.needs or "adapter" in strategy.needs:
        chosen["models_dir"] = str(Path(settings.models_dir).resolve())

    return chosen


def run_key(strategy: Strategy, settings: Settings, options: Mapping[str, Any], items: Sequence[Item]) -> str:
    """A stable hex key of one strategy's run on ``items`` with these ``options``."""
    accepted = set(strategy.options())
    payload = {
        "strategy": strategy.name,
        "options": {k: options[k] for k in sorted(options) if k in accepted and options[k] is not None},
        "settings": relevant_settings(strategy, settings),
        "items": items_fingerprint(items),
    }
    if "adapter" in strategy.needs:  # a retrained adapter in the same folder must not hit the cache
        payload["adapter_run"] = run_fingerprint(Path(options.get("run") or Path(settings.models_dir) / "finetuned"))
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


class ResultCache:
    """Results as ``DIR/<strategy>-<key>.json``, checkpoints as ``DIR/<strategy>-<key>.partial.jsonl``."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def _stem(self, strategy: str, key: str) -> str:
        return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', strategy)}-{key}"

    def result_path(self, strategy: str, key: str) -> Path:
        return self.directory / f"{self._stem(strategy, key)}.json"

    def checkpoint_path(self, strategy: str, key: str) -> Path:
        return self.directory / f"{self._stem(strategy, key)}.partial.jsonl"

    def load(self, strategy: str, key: str, bootstrap: Bootstrap | None = None) -> EvaluationResult | None:
        """The saved result, or ``None`` when there is none or it cannot be read (it is then redone)."""
        path = self.result_path(strategy, key)
        if not path.exists():
            return None
        try:
            return EvaluationResult.load(path, bootstrap)
        except (ValueError, TypeError, KeyError, OSError):
            return None

    def save(self, result: EvaluationResult, key: str) -> Path:
        """Save a finished result and drop its checkpoint, which it supersedes."""
        path = result.save(self.result_path(result.strategy, key))
        self.checkpoint_path(result.strategy, key).unlink(missing_ok=True)
        return path
