"""``EnsembleModel``: log-price regression over the base strategies' estimates.

``kind="blend"``: a weighted blend of the bases' log prices plus an intercept (the bias
correction), fitted by ridge regression. ``kind="stack"``: the same ridge with the
retrieval signals (top similarity, neighbours' log-price spread and median) as extra inputs.
``kind="median"``: the stack's inputs, linear median (quantile 0.5) regression of the log
price: the absolute error it minimises is less swayed by a few wild misses than ridge's squares.
``kind="boosted"``: gradient-boosted trees (LightGBM, Huber loss) over the stack's inputs, for
interactions a linear blend cannot express (e.g. trust knn more when its top similarity is high).
Saved as JSON (coefficients or the LightGBM text model, feature names, fitted ids): nothing
runs code on load.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np

from rag_pricer.atomic_files import write_text_atomic
from rag_pricer.items import MIN_PRICE

FORMAT = 1
KINDS = ("blend", "stack", "median", "boosted")
MAX_PRICE = 100_000.0


class EnsembleModel:
    """Fit ``log(price)`` on a feature matrix (columns ``feature_names``), predict prices.

    Features are standardised inside the ridge (the coefficients saved are for raw features).
    Predictions are clipped to the training log-price range widened by ``margin`` (in log
    units), so every price is finite and positive."""

    def __init__(
        self,
        bases: Sequence[str],
        kind: str = "stack",
        signal_base: str | None = "knn",
        alpha: float = 1.0,
        margin: float = 0.5,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        if not bases:
            raise ValueError("an ensemble needs at least one base strategy")
        self.bases = list(bases)
        self.kind = kind
        self.signal_base = signal_base if kind != "blend" else None
        self.alpha = alpha
        self.margin = margin

    @property
    def feature_names(self) -> list[str]:
        from rag_pricer.strategies.ensemble.signals import feature_names

        return feature_names(self.bases, self.signal_base)

    def fit(self, features: np.ndarray, prices: np.ndarray, ids: Sequence[str] = ()) -> Self:
        # The log target by hand, not TransformedTargetRegressor: the model is saved as its raw-feature
        # coefficients in JSON (and reports them as blend weights), which a wrapped estimator is not.
        features, target = np.asarray(features, dtype=float), np.log(np.asarray(prices, dtype=float))
        if features.ndim != 2 or features.shape != (len(target), len(self.feature_names)):
            raise ValueError(f"features must be {len(target)} x {len(self.feature_names)}, not {features.shape}")
        if not len(target) or not np.all(np.isfinite(features)) or not np.all(np.isfinite(target)):
            raise ValueError("ensemble fitting needs items with finite features and positive prices")
        if self.kind == "boosted":
            self.booster_ = _boosted(features, target)
            self.coef_, self.intercept_ = np.zeros(features.shape[1]), 0.0
        else:
            self.coef_, self.intercept_ = _linear(self.kind, self.alpha, features, target)
        self.log_range_ = (float(target.min()) - self.margin, float(target.max()) + self.margin)
        self.fitted_ids_ = sorted(set(ids))
        return self

    def predict_log(self, features: np.ndarray) -> np.ndarray:
        if not hasattr(self, "coef_"):
            raise RuntimeError("this EnsembleModel is not fitted: call fit() or load()")
        features = np.asarray(features, dtype=float)
        if self.kind == "boosted":
            raw = self.booster_.predict(features)
        else:
            raw = features @ self.coef_ + self.intercept_
        low, high = max(self.log_range_[0], np.log(MIN_PRICE)), min(self.log_range_[1], np.log(MAX_PRICE))
        return np.clip(np.nan_to_num(raw, nan=(low + high) / 2), low, high)

    def predict(self, features: np.ndarray) -> np.ndarray:
        return np.exp(self.predict_log(features))

    def weights(self) -> dict[str, float]:
        """Coefficient of each feature (for log-price features, its weight in the blend); for
        ``boosted``, each feature's share of the trees' total gain."""
        if self.kind == "boosted":
            gain = self.booster_.feature_importance("gain")
            return {name: float(g / max(gain.sum(), 1e-12)) for name, g in zip(self.feature_names, gain)}
        return {name: float(c) for name, c in zip(self.feature_names, self.coef_)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "bases": self.bases,
            "kind": self.kind,
            "signal_base": self.signal_base,
            "alpha": self.alpha,
            "margin": self.margin,
            "features": self.feature_names,
            "coef": [float(c) for c in self.coef_],
            "intercept": self.intercept_,
            "log_range": list(self.log_range_),
            "fitted_ids": self.fitted_ids_,
            "booster": self.booster_.model_to_string() if self.kind == "boosted" else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"not an ensemble model of format {FORMAT}: retrain it with `rag-pricer train-ensemble`")
        model = cls(data["bases"], data["kind"], data["signal_base"], float(data["alpha"]), float(data["margin"]))
        if list(data["features"]) != model.feature_names or len(data["coef"]) != len(model.feature_names):
            raise ValueError("the saved ensemble's features do not match its bases: retrain it")
        model.coef_ = np.array(data["coef"], dtype=float)
        model.intercept_ = float(data["intercept"])
        model.log_range_ = (float(data["log_range"][0]), float(data["log_range"][1]))
        model.fitted_ids_ = list(data["fitted_ids"])
        if model.kind == "boosted":
            import lightgbm

            model.booster_ = lightgbm.Booster(model_str=str(data["booster"]))
            if model.booster_.num_feature() != len(model.feature_names):
                raise ValueError("the saved booster does not match the ensemble's features")
        return model

    def save(self, directory: str | Path) -> Path:
        return write_text_atomic(Path(directory) / "ensemble.json", json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        path = Path(directory) / "ensemble.json"
        if not path.is_file():
            raise FileNotFoundError(
                f"no trained ensemble in {path.parent}: run `rag-pricer train-ensemble --items ITEMS --split dev`"
            )
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"cannot read {path} ({error}): retrain it with `rag-pricer train-ensemble`") from error


def _linear(kind: str, alpha: float, features: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, float]:
    """Coefficients and intercept on raw features (fitted on standardised ones)."""
    mean, scale = features.mean(axis=0), features.std(axis=0)
    scale[scale == 0] = 1.0
    if kind == "median":
        from sklearn.linear_model import QuantileRegressor

        regressor = QuantileRegressor(quantile=0.5, alpha=0.0, solver="highs")
    else:
        from sklearn.linear_model import Ridge  # here: scikit-learn takes a second to import, and only fitting needs it

        regressor = Ridge(alpha=alpha)
    regressor.fit((features - mean) / scale, target)
    coef = regressor.coef_ / scale
    return coef, float(regressor.intercept_ - np.sum(regressor.coef_ * mean / scale))


def _boosted(features: np.ndarray, target: np.ndarray) -> Any:
    """A small, regularised LightGBM (Huber loss on log prices; deterministic)."""
    import lightgbm

    model = lightgbm.LGBMRegressor(
        objective="huber",
        n_estimators=300,
        learning_rate=0.03,
        num_leaves=8,
        min_child_samples=30,
        subsample=0.8,
        subsample_freq=1,
        random_state=0,
        deterministic=True,
        force_row_wise=True,
        n_jobs=1,
        verbose=-1,
    )
    return model.fit(features, target).booster_
