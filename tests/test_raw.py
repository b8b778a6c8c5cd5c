"""Readers of raw Amazon metadata: local JSONL(.gz) files and the Hugging Face dataset (faked here)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from ingest.raw import (
    HF_DATASET,
    HuggingFaceMetaReader,
    JsonlMetaReader,
    RawRecord,
    RawSourceUnavailable,
    category_from_name,
)


@pytest.fixture(scope="module")
def raw_sample(data_dir: Path) -> Path:
    return data_dir / "raw" / "meta_Health_and_Personal_Care.sample.jsonl.gz"


def _write(path: Path, lines: list[str]) -> Path:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def test_reads_every_line_of_the_real_sample(raw_sample: Path) -> None:
    with gzip.open(raw_sample, "rt", encoding="utf-8") as handle:
        expected = sum(1 for line in handle if line.strip())
    records = list(JsonlMetaReader(raw_sample))
    assert len(records) == expected == 1714
    assert all(isinstance(r, RawRecord) and r.error is None for r in records)
    assert {r.category for r in records} == {"Health_and_Personal_Care"}
    assert records[0].source == raw_sample.name and records[0].line == 1
    assert {"title", "price", "features", "description", "details", "parent_asin"} <= set(records[0].data)


def test_invalid_lines_become_records_with_an_error_and_blank_lines_are_ignored(tmp_path: Path) -> None:
    path = _write(tmp_path / "meta_Toys.jsonl", ['{"title": "a"}', "", "{not json", "[1, 2]", '{"title": "b"}'])
    records = list(JsonlMetaReader(path))
    assert [r.line for r in records] == [1, 3, 4, 5]
    assert records[1].data is None and records[1].error.startswith("invalid JSON")
    assert records[2].data == [1, 2] and records[2].error is None  # JSON, just not an object: the curator decides
    assert {r.category for r in records} == {"Toys"}


def test_limit_and_explicit_category(tmp_path: Path) -> None:
    path = _write(tmp_path / "products.jsonl.gz", [json.dumps({"title": str(i)}) for i in range(10)])
    records = list(JsonlMetaReader(path, category="Garden", limit=3))
    assert [r.data["title"] for r in records] == ["0", "1", "2"]
    assert {r.category for r in records} == {"Garden"}
    assert list(JsonlMetaReader(path))[0].category is None  # no meta_<Category> in the name


@pytest.mark.parametrize(
    ("name", "category"),
    [
        ("meta_Health_and_Personal_Care.sample.jsonl.gz", "Health_and_Personal_Care"),
        ("/data/meta_Electronics.jsonl", "Electronics"),
        ("items.jsonl.gz", None),
        ("Electronics.jsonl", None),
    ],
)
def test_category_from_name(name: str, category: str | None) -> None:
    assert category_from_name(name) == category


def test_missing_file_raises_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RawSourceUnavailable, match="not found"):
        list(JsonlMetaReader(tmp_path / "meta_None.jsonl"))


def test_hugging_face_reader_downloads_the_category_file_and_reads_it(raw_sample: Path) -> None:
    calls: list[dict] = []

    def fake_download(**kwargs) -> str:
        calls.append(kwargs)
        return str(raw_sample)

    reader = HuggingFaceMetaReader("Health_and_Personal_Care", limit=5, download=fake_download)
    records = list(reader)
    assert calls == [
        {
            "repo_id": HF_DATASET,
            "repo_type": "dataset",
            "filename": "raw/meta_categories/meta_Health_and_Personal_Care.jsonl",
            "local_files_only": False,
        }
    ]
    assert len(records) == 5
    assert {r.category for r in records} == {"Health_and_Personal_Care"}
    assert records[0].source == f"{HF_DATASET}:raw_meta_Health_and_Personal_Care"
    list(reader)
    assert len(calls) == 1  # fetched once per reader


def test_hugging_face_reader_uses_huggingface_hub_by_default(monkeypatch: pytest.MonkeyPatch, raw_sample: Path) -> None:
    import huggingface_hub

    seen: list[str] = []
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda **kw: seen.append(kw["filename"]) or str(raw_sample))
    assert len(list(HuggingFaceMetaReader("Software", limit=2))) == 2
    assert seen == ["raw/meta_categories/meta_Software.jsonl"]


def test_offline_failure_is_a_clear_error() -> None:
    # The real huggingface_hub download, restricted to the cache: fails at once without a network.
    reader = HuggingFaceMetaReader("No_Such_Category_Cached", local_files_only=True)
    with pytest.raises(
        RawSourceUnavailable, match="cannot fetch raw/meta_categories/meta_No_Such_Category_Cached.jsonl"
    ):
        reader.fetch()


def test_network_errors_are_wrapped() -> None:
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline(**kwargs) -> str:
        raise LocalEntryNotFoundError("Name or service not known")

    with pytest.raises(RawSourceUnavailable, match="no network") as caught:
        list(HuggingFaceMetaReader("Electronics", download=offline))
    assert isinstance(caught.value.__cause__, LocalEntryNotFoundError)


@pytest.mark.parametrize("bad", ["../etc", "All Beauty", "", "meta/x"])
def test_category_names_are_validated(bad: str) -> None:
    with pytest.raises(ValueError, match="category"):
        HuggingFaceMetaReader(bad)
