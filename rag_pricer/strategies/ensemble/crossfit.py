"""K-fold cross-fitting: every scored item is priced by a model that was not fitted on it.

Rows with ``scored=True`` are cut into ``folds``; the model of a fold is fitted on every other
row (the other folds and all unscored rows, e.g. extra training items) and prices that fold.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rag_pricer.strategies.ensemble.model import EnsembleModel


@dataclass(frozen=True)
class CrossFit:
    """Out-of-fold prices of the scored rows (``nan`` for unscored ones) and each row's fold
    (``-1`` when unscored); ``fitted_ids[f]`` are the ids the model of fold ``f`` was fitted on."""

    predictions: np.ndarray
    fold: np.ndarray
    fitted_ids: list[set[str]]


def cross_fit(
    make: Callable[[], EnsembleModel],
    features: np.ndarray,
    prices: np.ndarray,
    ids: Sequence[str],
    scored: Sequence[bool] | npt.NDArray[np.bool_],
    folds: int = 5,
    seed: int = 0,
) -> CrossFit:
    features, prices, scored = (
        np.asarray(features, dtype=float),
        np.asarray(prices, dtype=float),
        np.asarray(scored, dtype=bool),
    )
    ids = list(ids)
    if not (len(features) == len(prices) == len(ids) == len(scored)):
        raise ValueError("features, prices, ids and scored must have one length")
    scored_rows = np.flatnonzero(scored)
    if len(scored_rows) < folds:
        raise ValueError(f"{len(scored_rows)} scored items cannot be cut into {folds} folds")
    predictions, fold = np.full(len(prices), np.nan), np.full(len(prices), -1)
    fitted: list[set[str]] = []
    from sklearn.model_selection import KFold  # here: scikit-learn takes a second to import, and only fitting needs it

    for number, (_, held) in enumerate(KFold(n_splits=folds, shuffle=True, random_state=seed).split(scored_rows)):
        held_rows = scored_rows[held]
        train = np.ones(len(prices), dtype=bool)
        train[held_rows] = False
        rows = np.flatnonzero(train)
        model = make().fit(features[rows], prices[rows], [ids[i] for i in rows])
        fitted.append(set(model.fitted_ids_))
        predictions[held_rows] = model.predict(features[held_rows])
        fold[held_rows] = number
    return CrossFit(predictions, fold, fitted)
