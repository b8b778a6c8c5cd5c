"""Readers of raw Amazon Reviews 2023 product metadata, as generators of ``RawRecord``.

Every non-blank line becomes exactly one ``RawRecord`` (a line that is not JSON carries an
``error`` instead of data), so the curator can account for every line it was given.

Two sources:
- ``JsonlMetaReader``: a local ``meta_<Category>.jsonl`` file, optionally gzipped;
- ``HuggingFaceMetaReader``: the same file of the Hugging Face dataset
  ``McAuley-Lab/Amazon-Reviews-2023`` (config ``raw_meta_<Category>``), fetched into the
  Hugging Face cache with ``huggingface_hub.hf_hub_download`` and read with the local reader.

Why not ``datasets.load_dataset("McAuley-Lab/Amazon-Reviews-2023", "raw_meta_X", trust_remote_code=True)``
as in the course: that config is defined by a loading script, and ``datasets`` >= 4 no longer
runs loading scripts (5.2 logs "`trust_remote_code` is not supported anymore" and fails). The
repository serves the raw JSONL files themselves, so downloading the file gives exactly the
raw format of the local files, and one reader handles both.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag_pricer.items import open_text

HF_DATASET = "McAuley-Lab/Amazon-Reviews-2023"
_CATEGORY = re.compile(r"^[A-Za-z0-9_]+$")
_META_NAME = re.compile(r"^meta_([A-Za-z0-9_]+)")


class RawSourceUnavailable(RuntimeError):
    """A raw source could not be opened or fetched (missing file, no network, unknown category)."""


@dataclass(frozen=True)
class RawRecord:
    """One line of a raw metadata file: its parsed JSON (``data``) or why it could not be parsed."""

    data: Any
    source: str
    line: int
    category: str | None = None
    error: str | None = None


def category_from_name(path: str | Path) -> str | None:
    """``meta_Health_and_Personal_Care.sample.jsonl.gz`` -> ``Health_and_Personal_Care``; else None."""
    match = _META_NAME.match(Path(path).name)
    return match.group(1) if match else None


@dataclass
class JsonlMetaReader:
    """Yields the records of a raw JSONL(.gz) file; ``limit`` caps the records read.

    ``category`` defaults to the one in a ``meta_<Category>`` file name.
    """

    path: str | Path
    category: str | None = None
    limit: int | None = None
    source: str | None = None

    def __iter__(self) -> Iterator[RawRecord]:
        path = Path(self.path)
        if not path.is_file():
            raise RawSourceUnavailable(f"raw metadata file not found: {path}")
        category = self.category or category_from_name(path)
        source = self.source or path.name
        count = 0
        with open_text(path) as handle:
            for number, line in enumerate(handle, start=1):
                if self.limit is not None and count >= self.limit:
                    return
                if line.strip():
                    count += 1
                    yield _record(line, source, number, category)


def _record(line: str, source: str, number: int, category: str | None) -> RawRecord:
    try:
        return RawRecord(json.loads(line), source, number, category)
    except json.JSONDecodeError as error:
        return RawRecord(None, source, number, category, error=f"invalid JSON: {error.msg}")
    except RecursionError:  # a line of deeply nested brackets: one bad line, not the end of the file
        return RawRecord(None, source, number, category, error="invalid JSON: nested too deeply")


Download = Callable[..., str]


def hf_hub_download(**kwargs: Any) -> str:
    """``huggingface_hub.hf_hub_download``, imported when first needed."""
    from huggingface_hub import hf_hub_download as download

    return download(**kwargs)


@dataclass
class HuggingFaceMetaReader:
    """Yields the records of ``raw_meta_<category>`` of the Hugging Face dataset.

    The file is downloaded once into the Hugging Face cache (``HF_HOME``); ``local_files_only``
    reads only what is cached. Any failure to fetch raises ``RawSourceUnavailable`` saying why.
    """

    category: str
    limit: int | None = None
    local_files_only: bool = False
    download: Download = hf_hub_download
    _path: Path | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not _CATEGORY.match(self.category):
            raise ValueError(f"not a dataset category name (e.g. Health_and_Personal_Care): {self.category!r}")

    @property
    def filename(self) -> str:
        return f"raw/meta_categories/meta_{self.category}.jsonl"

    def __iter__(self) -> Iterator[RawRecord]:
        source = f"{HF_DATASET}:raw_meta_{self.category}"
        yield from JsonlMetaReader(self.fetch(), category=self.category, limit=self.limit, source=source)

    def fetch(self) -> Path:
        """The local copy of the file, downloaded on first use; call it early to fail before any work."""
        if self._path is None:
            self._path = Path(self._download())
        return self._path

    def _download(self) -> str:
        try:
            return self.download(
                repo_id=HF_DATASET, repo_type="dataset", filename=self.filename, local_files_only=self.local_files_only
            )
        except OSError as error:  # huggingface_hub's HTTP, not-found and offline errors are all OSErrors
            raise RawSourceUnavailable(
                f"cannot fetch {self.filename} of the Hugging Face dataset {HF_DATASET} "
                f"(no network, not cached, or no such category {self.category!r}): {error}"
            ) from error
