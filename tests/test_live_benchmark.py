"""The live-update benchmark's own helpers (not timed: the figures are the benchmark's business;
this keeps the script from rotting)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.live_updates import ProductFeed, Tally, fresh_copy, probe, product_body, retrieved, seconds_summary
from rag_pricer.items import Item

ITEMS = [Item(id=f"src-{i}", title=f"Lamp {i}", text=f"A brass lamp, model {i}", price=10.0 + i) for i in range(3)]


def test_the_feed_hands_out_fresh_ids_and_counts_items_it_reuses() -> None:
    feed = ProductFeed(ITEMS, tag="t")
    first = feed.take(2)
    assert [item.id for item in first] == ["live-t-00000", "live-t-00001"]
    assert [item.title for item in first] == ["Lamp 0", "Lamp 1"] and first[0].split == "live"
    assert feed.reused == 0
    more = feed.take(2)  # one past the three items: the first again, under a new id
    assert [item.id for item in more] == ["live-t-00002", "live-t-00003"] and more[1].title == "Lamp 0"
    assert feed.reused == 1 and set(feed.handed) == {item.id for item in first + more}


def test_a_product_body_is_what_put_accepts_and_the_probe_is_no_verbatim_copy() -> None:
    (item,) = ProductFeed(ITEMS, tag="t").take()
    assert product_body(item) == {
        "title": "Lamp 0",
        "text": "A brass lamp, model 0",
        "price": 10.0,
        "category": None,
        "split": "live",
    }
    assert probe(item).startswith(item.description) and probe(item) != item.description


def test_retrieved_looks_for_the_id_among_the_comparables() -> None:
    estimate = {"price": 12.0, "comparables": [{"id": "a", "title": "x"}, {"id": "b", "title": "y"}]}
    assert retrieved(estimate, "b") and not retrieved(estimate, "c")
    assert not retrieved({"price": 12.0, "comparables": None}, "a")


def test_summaries_of_seconds_and_of_answers() -> None:
    assert seconds_summary([0.5, 0.1, 0.3]) == {"n": 3, "median_s": 0.3, "max_s": 0.5}
    assert seconds_summary([]) == {"n": 0, "median_s": None, "max_s": None}
    tally = Tally()
    tally.answered(200, 0.010)
    tally.answered(503, 0.020, '{"error": "unavailable"}')
    tally.answered(422, 0.030)
    tally.unanswered()
    figures = tally.as_dict()
    assert {k: figures[k] for k in ("answered", "ok", "4xx", "5xx", "connection_errors")} == {
        "answered": 3,
        "ok": 1,
        "4xx": 1,
        "5xx": 1,
        "connection_errors": 1,
    }
    assert figures["first_5xx"] == ['503 {"error": "unavailable"}'] and figures["p50_ms"] == 20.0


def test_the_store_is_copied_and_the_original_never_becomes_the_work_folder(tmp_path: Path) -> None:
    source = tmp_path / "store"
    source.mkdir()
    (source / "chroma.sqlite3").write_bytes(b"db")
    work = fresh_copy(source, tmp_path / "work")
    assert (work / "chroma.sqlite3").read_bytes() == b"db"
    (work / "chroma.sqlite3").write_bytes(b"written")
    assert (fresh_copy(source, work) / "chroma.sqlite3").read_bytes() == b"db"  # a run starts afresh
    with pytest.raises(SystemExit, match="must not be the store it copies"):
        fresh_copy(source, source)
    with pytest.raises(SystemExit, match="must not be the store it copies"):
        fresh_copy(source, source / "inside")
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("keep me")
    with pytest.raises(SystemExit, match="is not a store"):
        fresh_copy(source, other)
    assert (other / "todo.txt").read_text() == "keep me"
    with pytest.raises(SystemExit, match="no store at"):
        fresh_copy(tmp_path / "missing", tmp_path / "w2")
