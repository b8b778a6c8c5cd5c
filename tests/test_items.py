"""The Item type, its prompts and the curated-items reader."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from rag_pricer.items import InvalidRecord, Item, ItemReader, read_items, write_items
from rag_pricer.query import InvalidQuery, Query


def make_item(**overrides) -> Item:
    fields = dict(
        id="abc", title="Brass Hinge", text="Solid brass, 3 inch", price=12.49, category="Tools", split="train"
    )
    return Item(**(fields | overrides))


def test_prompts_follow_the_course_format() -> None:
    item = make_item()
    assert (
        item.test_prompt()
        == "How much does this cost to the nearest dollar?\n\nBrass Hinge\nSolid brass, 3 inch\n\nPrice is $"
    )
    assert item.prompt() == item.test_prompt() + "12.00"
    assert make_item(price=12.5).prompt().endswith("Price is $12.00")  # round half to even, as Python's round
    assert make_item(price=999.0).prompt().endswith("Price is $999.00")


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ([1, 2], "not_an_object"),
        ({"title": "x", "price": 3}, "missing_id"),
        ({"id": "a", "title": "  ", "price": 3}, "missing_title"),
        ({"id": "a", "title": "t", "price": "abc"}, "bad_price"),
        ({"id": "a", "title": "t", "price": -4}, "bad_price"),
        ({"id": "a", "title": "t", "price": True}, "bad_price"),
        ({"id": "a", "title": "t", "price": float("nan")}, "bad_price"),
        ({"id": "a", "title": "t", "text": 5, "price": 3}, "bad_text"),
    ],
)
def test_bad_records_are_rejected_with_a_reason(record, reason) -> None:
    with pytest.raises(InvalidRecord) as caught:
        Item.from_record(record)
    assert caught.value.reason == reason


def test_reader_counts_bad_lines_and_keeps_good_ones(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl.gz"
    lines = [
        json.dumps({"id": "1", "title": "A", "text": "t", "price": 10, "split": "train"}),
        "{not json",
        json.dumps({"id": "2", "title": "B", "price": 12.5, "split": "dev", "details": {"Brand": "X"}}),
        json.dumps({"id": "3", "title": "", "price": 3}),
        "",
    ]
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(lines))
    reader = ItemReader(path)
    items = list(reader)
    assert [i.id for i in items] == ["1", "2"]
    assert items[1].price == 12.5 and items[1].details_dict() == {"Brand": "X"}
    assert reader.read == 4 and dict(reader.skipped) == {"invalid_json": 1, "missing_title": 1}
    assert [i.id for i in read_items(path, split="dev")] == ["2"]


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    items = [make_item(id=str(n), price=n + 0.99) for n in range(5)]
    path = tmp_path / "out.jsonl"
    assert write_items(items, path) == 5
    assert read_items(path) == items
    assert read_items(path, limit=2) == items[:2]


def test_the_shared_items_file_reads_whole(items_path: Path) -> None:
    reader = ItemReader(items_path)
    items = list(reader)
    assert len(items) == 16_942 and not reader.skipped
    assert sum(i.split == "dev" for i in items) == 500
    assert all(0.5 <= i.price <= 999.49 for i in items)


def test_query_validation() -> None:
    with pytest.raises(InvalidQuery):
        Query.of("   \n\t")
    with pytest.raises(InvalidQuery):
        Query.of(42)  # type: ignore[arg-type]
    long = Query.of("word " * 5000, max_chars=1000)
    assert long.truncated and len(long.text) <= 1000 and not long.text.endswith(" ")
    from_item = Query.of(make_item())
    assert from_item.id == "abc" and from_item.text == "Brass Hinge\nSolid brass, 3 inch"
