"""Hostile input found by issue 24, below the HTTP layer: a nested-JSON line in a file
(``RecursionError``), ids and prices ingestion must refuse, and descriptions with no visible text."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from ingest.raw import JsonlMetaReader
from rag_pricer.items import ITEM_ID_PATTERN, InvalidRecord, Item, ItemReader, valid_item_id
from rag_pricer.query import InvalidQuery, Query, has_visible_text

#: one line of 100,000 nested brackets: ``json.loads`` raises RecursionError on it
NESTED = "[" * 100_000 + "]" * 100_000


def _good(item_id: str, price: object = 10.0) -> dict[str, object]:
    return {"id": item_id, "title": f"Brass hinge {item_id}", "text": "Solid brass", "price": price}


# 1. one deeply nested line never aborts a file -------------------------------------------------


def test_a_nested_json_line_is_one_bad_line_and_the_rest_is_read(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    lines = [json.dumps(_good("a-1")), NESTED, '{"id": "x", "details": ' + NESTED + "}", json.dumps(_good("a-2"))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    reader = ItemReader(path)
    assert [item.id for item in reader] == ["a-1", "a-2"]
    assert reader.skipped == Counter(too_deeply_nested=2)
    assert reader.problems[0].startswith("line 2: too_deeply_nested")


def test_a_nested_raw_line_is_counted_as_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "meta_Home.jsonl"
    path.write_text(json.dumps({"title": "ok"}) + "\n" + NESTED + "\n", encoding="utf-8")
    records = list(JsonlMetaReader(path))
    assert records[0].error is None
    assert records[1].data is None and records[1].error is not None and "nested" in records[1].error


# 8. descriptions with no visible text ------------------------------------------------------------


@pytest.mark.parametrize("text", ["\u0000\u0000", "\u200b", " \u200b\u200d\ufeff ", "\u2060\u00ad", "\t\u202e\n"])
def test_invisible_descriptions_are_empty(text: str) -> None:
    assert not has_visible_text(text)
    with pytest.raises(InvalidQuery, match="no visible text"):
        Query.of(text)


@pytest.mark.parametrize("text", ["a", "\u200bDrill", "$5", "日本", "🙂"])
def test_visible_descriptions_pass(text: str) -> None:
    assert has_visible_text(text)
    assert Query.of(text).text


# 9. ids and prices ingestion refuses --------------------------------------------------------------


@pytest.mark.parametrize(
    "item_id",
    ["x" * 10_000, "../../etc/passwd", "..", "a/b", "a..b", ".hidden", "-dash", "with space", "tab\tx", "a\u200b", ""],
)
def test_ids_outside_the_format_are_refused(item_id: str) -> None:
    assert not valid_item_id(item_id)
    with pytest.raises(InvalidRecord) as caught:
        Item.from_record(_good(item_id))
    assert caught.value.reason in {"bad_id", "missing_id"}
    assert Item(id=item_id, title="t", text="", price=3.0).problem() == "bad_id"


@pytest.mark.parametrize("item_id", ["a", "3f1c9a7e5b2d4c60", "B00X-12_3:v2", "live.1.2", "x" * 128])
def test_ids_of_the_format_are_kept(item_id: str) -> None:
    assert valid_item_id(item_id) and Item.from_record(_good(item_id)).id == item_id
    assert ITEM_ID_PATTERN


@pytest.mark.parametrize("price", ["12.50", "12", " 3 ", "1e2"])
def test_a_price_given_as_text_is_refused(price: str) -> None:
    with pytest.raises(InvalidRecord) as caught:
        Item.from_record(_good("a", price))
    assert caught.value.reason == "bad_price" and "number" in caught.value.detail
