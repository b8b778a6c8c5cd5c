"""Finished (and half-finished) runs on disk, so that a long comparison can be resumed.

A run is identified by ``run_key``: the strategy, its validated options (defaults filled in),
what its answers depend on as the pricer itself states it (``Pricer.fingerprint``: store,
embedding model and runtime, LLM and generation settings, model files), and the items scored.
The harness knows no strategy's internals. A rerun with the same key reuses the saved result;
an interrupted run leaves a checkpoint of the rows it finished, and the rerun scores only the rest.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path

from rag_pricer.evaluation.bootstrap import Bootstrap
from rag_pricer.evaluation.results import EvaluationResult
from rag_pricer.items import Item
from rag_pricer.pricing.pricer import Pricer


def items_fingerprint(items: Sequence[Item]) -> str:
    """Hash of the scored items (ids and true prices, in order)."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(f"{item.id}\x00{item.price!r}\n".encode())
    return digest.hexdigest()


def run_key(pricer: Pricer, items: Sequence[Item]) -> str:
    """A stable hex key of ``pricer``'s run on ``items``: its strategy name, the options it was
    built with (validated by the registry), its fingerprint and description limit, the items."""
    payload = {
        "strategy": pricer.name,
        "options": dict(pricer.options),
        "fingerprint": pricer.fingerprint(),
        "max_description_chars": pricer.max_chars,
        "items": items_fingerprint(items),
    }
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
