"""Saving and loading the parts of a baseline in formats that cannot run code when read.

- scikit-learn estimators: ``skops.io``, loaded with an explicit list of trusted types (a file
  naming any other type is refused before it is read);
- vectorizer vocabularies: JSON (terms in column order) + ``.npy`` IDF weights, restored into a
  vectorizer built from the baseline's own parameters (skops stores big dicts very slowly);
- arrays: ``.npy`` with ``allow_pickle=False``; parameters and metadata: JSON.

Nothing here uses pickle or joblib. skops and scikit-learn are imported on use: importing them
takes seconds, and the strategy registry imports the baselines to list them.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sklearn.feature_extraction.text import CountVectorizer

MANIFEST = "baseline.json"


class ModelNotTrained(FileNotFoundError):
    """No saved baseline where one was expected."""


class ModelFormatError(ValueError):
    """A saved baseline that cannot be read: wrong kind, unknown format, untrusted types."""


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def save_array(path: Path, array: np.ndarray) -> None:
    np.save(path, np.asarray(array), allow_pickle=False)


def load_array(path: Path) -> np.ndarray:
    return np.load(path, allow_pickle=False)


def save_estimator(estimator: Any, path: Path) -> None:
    """A fitted scikit-learn estimator as a skops file (compressed: forests are big)."""
    import skops.io as sio

    sio.dump(estimator, path, compression=zipfile.ZIP_DEFLATED)


def load_estimator(path: Path, trusted: Iterable[str] = ()) -> Any:
    """Load a skops file, refusing it when it names a type outside skops' defaults + ``trusted``."""
    import skops.io as sio

    trusted = set(trusted)
    try:
        untrusted = set(sio.get_untrusted_types(file=path))
    except Exception as error:  # a corrupt zip or schema: say which file, never half-load it
        raise ModelFormatError(f"cannot read {path}: {error}") from error
    refused = untrusted - trusted
    if refused:
        raise ModelFormatError(f"{path} holds types that are not trusted: {sorted(refused)}")
    return sio.load(path, trusted=sorted(untrusted))


def save_vocabulary(vectorizer: CountVectorizer, directory: Path, name: str) -> None:
    """The fitted vocabulary (and IDF weights of a TF-IDF vectorizer) as ``name.vocab.json``
    (+ ``name.idf.npy``)."""
    write_json(directory / f"{name}.vocab.json", [str(t) for t in vectorizer.get_feature_names_out()])
    if _is_tfidf(vectorizer):
        save_array(directory / f"{name}.idf.npy", vectorizer.idf_)


def load_vocabulary(vectorizer: CountVectorizer, directory: Path, name: str) -> CountVectorizer:
    """Make the unfitted ``vectorizer`` (built with the saved parameters) transform exactly as
    the saved one: a fixed vocabulary needs no fitting; the IDF weights are set back."""
    terms = read_json(directory / f"{name}.vocab.json")
    if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
        raise ModelFormatError(f"{directory / name}.vocab.json is not a list of terms")
    vectorizer.set_params(vocabulary=terms)
    if _is_tfidf(vectorizer):
        vectorizer.idf_ = load_array(directory / f"{name}.idf.npy")
    return vectorizer


def _is_tfidf(vectorizer: CountVectorizer) -> bool:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return isinstance(vectorizer, TfidfVectorizer)
