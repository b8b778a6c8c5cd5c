"""The dataset report: PNG charts and a summary of a curated items file."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ingest.cli import app
from ingest.report import CHARTS, DatasetReport, DatasetSummary
from ingest.tokens import TokenBudget
from rag_pricer.items import Item, write_items

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def items(train_items: list[Item], dev_items: list[Item]) -> list[Item]:
    return train_items[:300] + dev_items


@pytest.fixture(scope="module")
def items_file(tmp_path_factory: pytest.TempPathFactory, items: list[Item]) -> Path:
    path = tmp_path_factory.mktemp("report") / "items.jsonl.gz"
    write_items(items, path)
    return path


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 5_000, path


def test_report_writes_charts_and_summary(items: list[Item], tmp_path: Path) -> None:
    budget = TokenBudget(max_tokens=160)
    result = DatasetReport(budget).write(items, tmp_path / "out")
    assert [path.name for path in result.charts] == list(CHARTS)
    for path in result.charts:
        _assert_png(path)
    summary = result.summary
    prices = [item.price for item in items]
    assert summary.count == len(items)
    assert summary.price["mean"] == pytest.approx(statistics.fmean(prices), abs=0.01)
    assert summary.price["median"] == pytest.approx(statistics.median(prices), abs=0.01)
    assert (summary.price["min"], summary.price["max"]) == (round(min(prices), 2), round(max(prices), 2))
    assert summary.splits == {"train": 300, "dev": len(items) - 300}
    assert sum(summary.categories.values()) == len(items)
    assert summary.tokens["max"] == max(budget.counts([item.description for item in items]))
    text = result.summary_path.read_text(encoding="utf-8")
    assert f"items: {len(items):,}" in text and "train 300" in text and "description tokens (all-MiniLM-L6-v2)" in text
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["count"] == len(items)


def test_summary_counts_missing_categories_and_splits() -> None:
    items = [Item("a" * 16, "t1", "x", 10.0), Item("b" * 16, "t2", "yy", 30.0, category="Toys", split="train")]
    summary = DatasetSummary.of(items, [3, 5], "tok", skipped={"bad_price": 2})
    assert summary.categories == {"(none)": 1, "Toys": 1} and summary.splits == {"(none)": 1, "train": 1}
    assert summary.price["mean"] == 20.0 and summary.tokens["max"] == 5
    assert "skipped records: bad_price 2" in summary.to_text()


def test_no_items_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no items"):
        DatasetReport().write([], tmp_path)


def test_report_command(items_file: Path, items: list[Item], tmp_path: Path) -> None:
    out = tmp_path / "charts"
    result = CliRunner().invoke(app, ["report", str(items_file), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"items: {len(items):,}" in result.stdout and "price ($): mean" in result.stdout
    for name in CHARTS:
        _assert_png(out / name)
    assert (out / "summary.txt").read_text(encoding="utf-8").strip() in result.stdout

    as_json = CliRunner().invoke(
        app, ["report", str(items_file), "--out", str(tmp_path / "dev"), "--split", "dev", "--json"]
    )
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.stdout)
    assert data["count"] == len(items) - 300 and data["splits"] == {"dev": len(items) - 300}
    assert len(data["charts"]) == len(CHARTS)


def test_report_command_on_a_file_without_items(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"id": "x"}\nnot json\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["report", str(empty), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and "no usable items" in result.output
