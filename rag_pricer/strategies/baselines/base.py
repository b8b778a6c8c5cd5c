"""``Baseline``: the contract of every traditional machine-learning pricer.

scikit-learn discipline: parameters are explicit constructor arguments stored unchanged,
whatever ``fit`` learns ends with ``_``. Beyond scikit-learn, a baseline records the ids of its
training items (``trained_ids_``) so that scoring them can be refused, and saves itself to a
directory in formats that cannot run code when loaded (see ``storage``).
"""

from __future__ import annotations

import inspect
import shutil
from abc import ABC, abstractmethod
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from rag_pricer.items import Item
from rag_pricer.pricing.pricer import Pricer
from rag_pricer.query import Query
from rag_pricer.strategies.baselines.storage import MANIFEST, ModelFormatError, ModelNotTrained, read_json, write_json


class Baseline(ABC):
    """Fit on training items, predict prices of items, queries or texts, save, load."""

    #: stable name of the class in saved manifests
    kind: ClassVar[str]
    #: False for a baseline that learns nothing from its training items (no ids are kept)
    learns: ClassVar[bool] = True
    #: constructor arguments that are objects given at run time, not saved parameters
    runtime_params: ClassVar[tuple[str, ...]] = ()
    #: True when predictions use ``details`` (weight, rank, brand), imputed when absent
    uses_details: ClassVar[bool] = False
    #: version of the saved files; raised when they change, so an older model asks to be retrained
    file_format: ClassVar[int] = 1

    trained_ids_: list[str]

    def fit(self, items: Sequence[Item]) -> Self:
        if not items:
            raise ValueError("no training items")
        prices = np.array([item.price for item in items], dtype=float)
        # The queries a Pricer makes of them: training reads what predicting will read.
        self._fit([Query.of(item, Pricer.max_chars) for item in items], prices)
        self.trained_ids_ = sorted({item.id for item in items}) if self.learns else []
        return self

    def predict(self, inputs: Sequence[Item | Query | str]) -> np.ndarray:
        """Prices in USD, one per input, finite (a non-finite one is a bug and raises).
        ``InvalidQuery`` for an input that is not a description (empty, not text)."""
        if not self.is_fitted:
            raise RuntimeError(f"this {type(self).__name__} is not fitted: call fit() or load()")
        queries = [Query.of(value, Pricer.max_chars) for value in inputs]
        if not queries:
            return np.zeros(0)
        predictions = np.asarray(self._predict(queries), dtype=float).reshape(-1)
        if not np.all(np.isfinite(predictions)):
            raise RuntimeError(f"{type(self).__name__} predicted a non-finite price")
        return predictions

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "trained_ids_")

    def params(self) -> dict[str, Any]:
        """The saved constructor arguments (like scikit-learn's ``get_params``)."""
        names = list(inspect.signature(type(self).__init__).parameters)[1:]
        return {name: getattr(self, name) for name in names if name not in self.runtime_params}

    def save(self, directory: str | Path) -> Path:
        """Write the model to ``directory``, replacing a previous one only once complete."""
        if not self.is_fitted:
            raise RuntimeError(f"this {type(self).__name__} is not fitted: nothing to save")
        directory = Path(directory)
        partial = directory.with_name(directory.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        self._save_state(partial)
        manifest = {
            "kind": self.kind,
            "format": self.file_format,
            "params": self.params(),
            "n_train": len(self.trained_ids_),
            "trained_ids": self.trained_ids_,
            "versions": {p: version(p) for p in ("scikit-learn", "numpy", "gensim", "lightgbm", "skops")},
        }
        write_json(partial / MANIFEST, manifest)
        shutil.rmtree(directory, ignore_errors=True)
        partial.rename(directory)
        return directory

    @classmethod
    def load(cls, directory: str | Path, **runtime: Any) -> Self:
        """A saved model; ``runtime`` gives the objects named in ``runtime_params``."""
        directory = Path(directory)
        if not (directory / MANIFEST).is_file():
            raise ModelNotTrained(
                f"no trained {cls.kind!r} baseline in {directory}: run `rag-pricer train-baselines` "
                "(it saves every baseline under the models directory, settings models_dir)"
            )
        try:
            manifest = read_json(directory / MANIFEST)
        except (OSError, ValueError) as error:
            raise ModelFormatError(
                f"cannot read {directory / MANIFEST} ({error}): retrain it with `rag-pricer train-baselines`"
            ) from error
        expected = (cls.kind, cls.file_format)
        if not isinstance(manifest, dict) or (manifest.get("kind"), manifest.get("format")) != expected:
            raise ModelFormatError(
                f"{directory} does not hold a {cls.kind!r} baseline of format {cls.file_format}: retrain it with "
                "`rag-pricer train-baselines`"
            )
        try:
            model = cls(**manifest["params"], **runtime)
        except TypeError as error:
            raise ModelFormatError(f"{directory / MANIFEST} has unexpected parameters: {error}") from error
        try:
            model._load_state(directory)
        except ModelFormatError:
            raise
        except (OSError, KeyError, TypeError, ValueError) as error:  # a missing or damaged part
            raise ModelFormatError(
                f"{directory} is incomplete or damaged ({error}): retrain it with `rag-pricer train-baselines`"
            ) from error
        model.trained_ids_ = list(manifest["trained_ids"])
        return model

    @abstractmethod
    def _fit(self, queries: list[Query], prices: np.ndarray) -> None:
        """Learn from the training queries and their prices."""

    @abstractmethod
    def _predict(self, queries: list[Query]) -> np.ndarray:
        """One price per query."""

    def _save_state(self, directory: Path) -> None:
        """Write the learned state (beyond the manifest) into ``directory``; a baseline whose
        state fits in the manifest has nothing more to write."""
        return None

    def _load_state(self, directory: Path) -> None:
        """Read back what ``_save_state`` wrote (nothing, unless it is overridden)."""
        return None
