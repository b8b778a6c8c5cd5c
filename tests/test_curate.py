"""Curation of raw Amazon metadata: prices, scrubbing, text, token budget, duplicates, balance, split."""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import re
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ingest.cli import app
from ingest.curate import CurationParams, Curator, assign_splits, balance_items, item_id
from ingest.price import PriceParser, parse_price
from ingest.raw import JsonlMetaReader, RawRecord
from ingest.scrub import Scrubber
from ingest.text import TextBuilder
from ingest.tokens import TokenBudget
from rag_pricer.items import MAX_PRICE, MIN_PRICE, InvalidRecord, Item, read_items

LONG = (
    "This sturdy stainless steel kettle boils water quickly and keeps it hot for hours, with a comfortable "
    "handle, a wide opening that is easy to clean and an automatic shut-off for safety. "
)


@pytest.fixture(scope="module")
def budget() -> TokenBudget:
    return TokenBudget(max_tokens=160)


@pytest.fixture(scope="module")
def raw_sample(data_dir: Path) -> Path:
    return data_dir / "raw" / "meta_Health_and_Personal_Care.sample.jsonl.gz"


def curator(budget: TokenBudget, **params) -> Curator:
    params.setdefault("max_tokens", budget.max_tokens)
    chosen = CurationParams(**params)
    return Curator(chosen, budget=budget if chosen.max_tokens == budget.max_tokens else None)


def record(title: str = "Electric Kettle 1.7L", price=29.99, description=None, **extra) -> dict:
    return {
        "title": title,
        "price": price,
        "description": description if description is not None else [LONG * 3],
        "features": [],
        "details": {},
        "main_category": "Home",
        **extra,
    }


# --- prices ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (12.99, 12.99),
        (5, 5.0),
        ("12.99", 12.99),
        ("$1,299.99", 1299.99),
        (" $7 ", 7.0),
        ("US $7.50", 7.5),
        ("$10.99 - $15.99", 10.99),
        ("$15.99 - $10.99", 10.99),
        ("10 to 20", 10.0),
        ("$5.49–$9.99", 5.49),
    ],
)
def test_parse_price(raw, expected: float) -> None:
    assert parse_price(raw) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "missing_price"),
        ("None", "missing_price"),
        ("", "missing_price"),
        ("  ", "missing_price"),
        ("null", "missing_price"),
        ("abc", "bad_price"),
        ("$12.99/oz", "bad_price"),
        ("1,29", "bad_price"),
        ("12.99 USD per month", "bad_price"),
        (True, "bad_price"),
        ([12.99], "bad_price"),
        (0, "bad_price"),
        (-3.5, "bad_price"),
        (math.nan, "bad_price"),
        (math.inf, "bad_price"),
        ("-5", "bad_price"),
    ],
)
def test_unusable_prices_have_a_reason(raw, reason: str) -> None:
    with pytest.raises(InvalidRecord) as caught:
        parse_price(raw)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("raw", "ok"),
    [
        (0.1, False),
        (0.49, False),
        (MIN_PRICE, True),
        (MAX_PRICE, True),
        (999.5, False),
        (5000, False),
        ("$1,299.99", False),
    ],
)
def test_price_range(raw, ok: bool) -> None:
    parser = PriceParser()
    if ok:
        assert parser(raw) == raw
    else:
        with pytest.raises(InvalidRecord) as caught:
            parser(raw)
        assert caught.value.reason == "price_out_of_range"


# --- scrubbing and text ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Replacement for WR57X10032 fridge", "Replacement for fridge"),
        ("Model B075ZXP9XL and LP-1234-XY parts", "Model and parts"),
        ("4000mAh battery, 1234567 units, ABCDEFGH, N95 mask", "4000mAh battery, 1234567 units, ABCDEFGH, N95 mask"),
        ("Great!!! value,,, really.... ok ,  fine", "Great! value, really. ok, fine"),
        ('【FAST】 "quoted" {x} [y]', "FAST quoted x y"),
        ("<b>Bold</b> &amp; more<br/>", "Bold & more"),
        ("a \n\t  b", "a b"),
        ("  ,; leading junk", "leading junk"),
    ],
)
def test_scrubber_clean(raw: str, clean: str) -> None:
    assert Scrubber().clean(raw) == clean


def test_scrubber_drops_boilerplate_detail_keys() -> None:
    details = {
        "Brand": "Moen",
        "Batteries Included?": "No",
        "date first available": "June 1, 2017",
        "Best Sellers Rank": {"Tools": 95657},
        "Item model number": "YB6462BN",
        "Colour": "",
        "Sizes": ["S", "M"],
        "Dimensions": {"width": "7 in"},
    }
    assert Scrubber().details(details) == "Brand: Moen; Sizes: S, M; Dimensions: width 7 in"


def test_text_joins_description_features_and_details_in_that_order() -> None:
    data = {
        "description": ["First paragraph.", 42, "Second!!"],
        "features": "Only feature",
        "details": json.dumps({"Brand": "Acme", "UPC": "0123"}),
    }
    assert TextBuilder()(data) == "First paragraph.\nSecond!\nOnly feature\nBrand: Acme"
    assert TextBuilder()({"description": None, "features": [], "details": "not json"}) == ""


# --- the curator, one rule at a time ------------------------------------------------------------


def test_item_fields(budget: TokenBudget) -> None:
    raw = RawRecord(record(parent_asin="B000TEST01"), source="meta_Home.jsonl", line=3, category="Home_and_Kitchen")
    (item,) = curator(budget, test_fraction=0).run([raw]).items
    assert item.id == hashlib.sha1(b"B000TEST01").hexdigest()[:16] and re.fullmatch(r"[0-9a-f]{16}", item.id)
    assert (item.title, item.price, item.category, item.split) == (
        "Electric Kettle 1.7L",
        29.99,
        "Home_and_Kitchen",
        "train",
    )
    assert item.source == "meta_Home.jsonl" and item.text.startswith("This sturdy stainless steel kettle")
    assert item_id({}, "T") == hashlib.sha1(b"T").hexdigest()[:16]  # no parent_asin: the title
    (plain,) = curator(budget).run([record()]).items  # a plain dict: main_category is the fallback
    assert plain.category == "Home" and plain.details is None


def test_min_chars(budget: TokenBudget) -> None:
    short = record(description=["Small but useful kettle."])
    assert curator(budget).run([short]).skipped == Counter(too_short=1)
    assert curator(budget, min_chars=10).run([short]).kept == 1


@pytest.mark.parametrize("max_tokens", [40, 160])
def test_truncation_bounds_the_description_tokens(budget: TokenBudget, max_tokens: int) -> None:
    long = record(description=[LONG * 40], features=["Feature " + LONG] * 5)
    run = curator(budget, max_tokens=max_tokens)
    (item,) = run.run([long]).items
    full = TextBuilder()(long)
    assert run.budget.count(item.description) <= max_tokens
    assert run.budget.count(item.description) >= max_tokens - 10  # cut near the budget, not far below
    assert full.startswith(item.text) and len(item.text) < len(full)


def test_title_filling_the_budget_is_skipped(budget: TokenBudget) -> None:
    wordy = record(title=" ".join(["kettle"] * 50))
    assert curator(budget, max_tokens=20).run([wordy]).skipped == Counter(title_over_budget=1)


def test_duplicate_titles_and_texts_are_dropped(budget: TokenBudget) -> None:
    records = [
        record("Electric Kettle 1.7L", description=[LONG * 2]),
        record("electric kettle, 1.7L!", description=[LONG * 3]),  # same title once normalised
        record("Travel Kettle", description=[LONG * 2]),  # same text as the first
        record("Glass Kettle", price="None", description=[LONG * 4]),  # unpriced: must not claim its title
        record("Glass Kettle", description=[LONG * 4]),
    ]
    report = curator(budget).run(records)
    assert sorted(item.title for item in report.items) == ["Electric Kettle 1.7L", "Glass Kettle"]
    assert report.skipped == Counter(duplicate_title=1, duplicate_text=1, missing_price=1)


def test_bad_records_are_counted_by_reason(tmp_path: Path, budget: TokenBudget) -> None:
    lines = [
        json.dumps(record("Good kettle")),
        "{oops not json",
        json.dumps([record()]),
        json.dumps({"price": 10}),
        json.dumps(record("Kettle A", price="abc")),
        json.dumps(record("Kettle B", price=0.1)),
        json.dumps(record("Kettle C", price=5000)),
        json.dumps(record("Kettle D", price=None)),
        json.dumps(record("Kettle E", description=["tiny"])),
        json.dumps(record("   ")),
        "42",
    ]
    path = tmp_path / "meta_Home.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = curator(budget).run(JsonlMetaReader(path))
    assert report.skipped == Counter(
        invalid_json=1,
        not_an_object=2,
        missing_title=2,
        bad_price=1,
        price_out_of_range=2,
        missing_price=1,
        too_short=1,
    )
    assert report.kept == 1 and report.items[0].title == "Good kettle"
    assert report.read == len(lines) == report.kept + sum(report.skipped.values())


# --- balance and split ---------------------------------------------------------------------------


def _items(prices: list[float], category: str = "Tools") -> list[Item]:
    return [Item(id=f"{i:016x}", title=f"t{i}", text="x", price=p, category=category) for i, p in enumerate(prices)]


def test_balance_caps_each_category_price_bucket() -> None:
    items = _items([5.0] * 30 + [15.0] * 5) + _items([5.0] * 4, category="Toys")
    kept = balance_items(items, max_per_bucket=10, bucket_width=10.0, seed=1)
    buckets = Counter((item.category, item.price) for item in kept)
    assert buckets == Counter({("Tools", 5.0): 10, ("Tools", 15.0): 5, ("Toys", 5.0): 4})
    assert kept == [item for item in items if item in kept]  # input order kept
    assert balance_items(items, 10, 10.0, seed=1) == kept
    assert balance_items(items, 10, 10.0, seed=2) != kept


def test_balance_in_the_curator_counts_what_it_drops(budget: TokenBudget) -> None:
    records = [
        record(f"Kettle model {i}", price=20 + i / 100, description=[f"Variant {i}. " + LONG * 3]) for i in range(12)
    ]
    report = curator(budget, balance=True, max_per_bucket=5).run(records)
    assert report.kept == 5 and report.skipped == Counter(balanced_out=7)


def test_split_is_seeded_and_complete() -> None:
    items = _items([float(p) for p in range(1, 51)])
    params = CurationParams(test_fraction=0.2, seed=7)
    first, again = assign_splits(items, params), assign_splits(items, params)
    assert first == again
    assert Counter(item.split for item in first) == Counter(train=40, test=10)
    assert sorted(item.id for item in first) == sorted(item.id for item in items)
    other = assign_splits(items, CurationParams(test_fraction=0.2, seed=8))
    assert {i.id for i in other if i.split == "test"} != {i.id for i in first if i.split == "test"}
    named = assign_splits(items, CurationParams(test_size=3, train_split="kb", test_split="holdout"))
    assert Counter(item.split for item in named) == Counter(kb=47, holdout=3)


@pytest.mark.parametrize(
    "bad", [{"test_fraction": 1.0}, {"test_size": -1}, {"max_per_bucket": 0}, {"min_price": 10, "max_price": 5}]
)
def test_params_are_validated(bad: dict) -> None:
    with pytest.raises(ValueError):
        CurationParams(**bad)


# --- the real raw sample -------------------------------------------------------------------------


def test_curates_the_real_raw_sample(raw_sample: Path, budget: TokenBudget) -> None:
    with gzip.open(raw_sample, "rt", encoding="utf-8") as handle:
        raw = [json.loads(line) for line in handle if line.strip()]
    priced = sum(isinstance(r["price"], (int, float)) and MIN_PRICE <= r["price"] <= MAX_PRICE for r in raw)

    report = curator(budget, test_fraction=0.1, seed=3).run(JsonlMetaReader(raw_sample))
    skipped = report.skipped
    assert report.read == len(raw) == report.kept + sum(skipped.values())
    assert report.read - skipped["missing_price"] - skipped["bad_price"] - skipped["price_out_of_range"] == priced
    assert 200 <= priced <= 280  # the data README: "about 240 records have a price"
    assert 100 <= report.kept < priced  # min_chars and duplicates remove some, not most
    assert all(MIN_PRICE <= item.price <= MAX_PRICE for item in report.items)
    assert all(item.text and len(item.text) <= 2000 for item in report.items)
    assert max(budget.counts([item.description for item in report.items])) <= budget.max_tokens
    assert len({item.id for item in report.items}) == report.kept
    assert report.splits == Counter(test=round(report.kept * 0.1), train=report.kept - round(report.kept * 0.1))
    assert report.categories == Counter(Health_and_Personal_Care=report.kept)
    assert not any(re.search(r"Date First Available|Best Sellers Rank", item.text) for item in report.items)


# --- the command ---------------------------------------------------------------------------------


def test_curate_command_writes_items_and_prints_counts(raw_sample: Path, tmp_path: Path) -> None:
    out = tmp_path / "curated.jsonl.gz"
    args = [
        "curate",
        str(raw_sample),
        "--out",
        str(out),
        "--json",
        "--test-size",
        "10",
        "--seed",
        "5",
        "--max-tokens",
        "120",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)
    items = read_items(out)
    assert len(items) == counts["kept"] and counts["read"] == 1714
    assert counts["read"] == counts["kept"] + sum(counts["skipped"].values())
    assert Counter(item.split for item in items) == Counter(counts["splits"]) and counts["splits"]["test"] == 10
    args = ["curate", str(raw_sample), "--out", str(tmp_path / "b.jsonl"), "--no-progress", "--limit", "300"]
    table = CliRunner().invoke(app, args)
    assert table.exit_code == 0 and "skipped: missing_price" in table.stdout
    assert re.search(r"read\s*│\s*300\s*│", table.stdout), table.stdout


def test_curate_command_errors(tmp_path: Path) -> None:
    none = CliRunner().invoke(app, ["curate", "--out", str(tmp_path / "x.jsonl")])
    assert none.exit_code == 2 and "RAW files" in none.output
    args = ["curate", "--out", str(tmp_path / "x.jsonl"), "--hf-category", "Not_Cached_Here", "--hf-cache-only"]
    offline = CliRunner().invoke(app, args)
    assert offline.exit_code == 1 and "cannot fetch" in offline.output
    assert not (tmp_path / "x.jsonl").exists()
