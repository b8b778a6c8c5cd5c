"""What the prices of an item's nearest stored products say: combined into one price (``knn``)
or summarised as features (``boosting-nn``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rag_pricer.knowledge.store import Neighbour

#: a neighbour whose price is more than this factor away from the neighbours' weighted median
#: is one the rest contradict (a 9V adapter at $9.99 among $60 pedals): ``trimmed`` drops it
TRIM_FACTOR = 3.0


def weighted_median(values: Sequence[float] | np.ndarray, weights: Sequence[float] | np.ndarray) -> float:
    """The value at which the cumulative weight (values sorted) first reaches half the total."""
    values, weights = np.asarray(values, dtype=float), np.asarray(weights, dtype=float)
    if values.size == 0 or values.shape != weights.shape:
        raise ValueError("weighted_median needs as many weights as values, and at least one")
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, cumulative[-1] / 2.0)])


def similarity_weights(neighbours: Sequence[Neighbour], power: float) -> np.ndarray:
    """``similarity ** power``: the closest products dominate (similarities clipped above 0)."""
    return np.clip(np.array([n.similarity for n in neighbours], dtype=float), 1e-6, None) ** power


def trimmed(neighbours: Sequence[Neighbour], power: float, factor: float = TRIM_FACTOR) -> list[Neighbour]:
    """``neighbours`` without those priced more than ``factor`` times above or below their
    similarity-weighted median price (never empty: the median's own neighbour stays)."""
    prices = np.array([n.price for n in neighbours], dtype=float)
    centre = weighted_median(np.log(prices), similarity_weights(neighbours, power))
    bound = np.log(factor)
    return [n for n, p in zip(neighbours, prices) if abs(np.log(p) - centre) <= bound]


#: the columns of ``neighbour_features``, in order
NEIGHBOUR_FEATURES = (
    "nn_knn_log",  # log1p of the similarity-weighted mean price (knn's estimate)
    "nn_wmean_log",  # similarity-weighted mean of log1p prices
    "nn_wmedian_log",  # similarity-weighted median of log1p prices
    "nn_median_log",  # plain median of log1p prices
    "nn_std_log",  # similarity-weighted standard deviation of log1p prices
    "nn_top_log",  # log1p price of the nearest product
    "nn_top3_log",  # mean log1p price of the three nearest
    "nn_min_log",
    "nn_max_log",
    "nn_top_similarity",
    "nn_mean_similarity",
    "nn_last_similarity",  # similarity of the k-th (farthest kept) neighbour
)


def neighbour_features(neighbours: Sequence[Neighbour], power: float) -> np.ndarray:
    """The ``NEIGHBOUR_FEATURES`` of one item's neighbours (most similar first); all NaN (which
    LightGBM treats as missing) when it has none."""
    if not neighbours:
        return np.full(len(NEIGHBOUR_FEATURES), np.nan)
    prices = np.array([n.price for n in neighbours], dtype=float)
    logs = np.log1p(prices)
    similarities = np.array([n.similarity for n in neighbours], dtype=float)
    weights = similarity_weights(neighbours, power)
    weights = weights / weights.sum()
    mean_log = float(weights @ logs)
    return np.array(
        [
            float(np.log1p(weights @ prices)),
            mean_log,
            weighted_median(logs, weights),
            float(np.median(logs)),
            float(np.sqrt(weights @ (logs - mean_log) ** 2)),
            float(logs[0]),
            float(logs[:3].mean()),
            float(logs.min()),
            float(logs.max()),
            float(similarities[0]),
            float(similarities.mean()),
            float(similarities[-1]),
        ]
    )
