"""Catalogue pricing (``price-file``): id columns kept, text from named columns, a bad row is an
error in its own output row, re-running resumes; ``estimate -`` never merges several lines
silently; ``evaluate`` on a file without prices says why."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag_pricer.cli.app import app
from rag_pricer.feedback.journal import FeedbackJournal
from rag_pricer.settings import Settings

runner = CliRunner()


@pytest.fixture()
def env(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RAG_PRICER_STORE_PATH", str(settings.store_path))
    monkeypatch.setenv("RAG_PRICER_LLM_CACHE_DIR", "")
    monkeypatch.setenv("RAG_PRICER_MODELS_DIR", str(settings.models_dir))
    monkeypatch.setenv("RAG_PRICER_STRATEGY", "knn")
    monkeypatch.setenv("RAG_PRICER_FEEDBACK_PATH", str(tmp_path / "feedback.sqlite3"))
    return tmp_path / "feedback.sqlite3"


ROWS = [
    {"sku": "A-1", "title": "Cordless drill 18V", "description": "two batteries, charger", "brand": "X"},
    {"sku": "A-2", "title": "", "description": "", "brand": "Y"},  # nothing to price
    {"sku": "A-3", "title": "Yoga mat 6 mm", "description": "", "brand": "Z"},
    {"sku": "A-4", "title": "USB-C charger 65 W", "description": "GaN, two ports", "brand": "X"},
]


def write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_csv(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def price(source: Path, out: Path, *extra: str):
    result = runner.invoke(
        app, ["price-file", str(source), "--out", str(out), "--id-columns", "sku", "--batch-size", "2", *extra]
    )
    assert result.exit_code == 0, result.output
    return result


def test_a_csv_catalogue_is_priced_row_by_row_with_ids_kept_and_bad_rows_marked(env: Path, tmp_path: Path) -> None:
    out = tmp_path / "priced.csv"
    price(write_csv(tmp_path / "in.csv", ROWS), out)
    rows = read_csv(out)
    assert [r["sku"] for r in rows] == ["A-1", "A-2", "A-3", "A-4"] and [r["row"] for r in rows] == ["1", "2", "3", "4"]
    assert list(rows[0]) == [
        "row",
        "sku",
        "price",
        "low",
        "high",
        "confidence",
        "strategy",
        "fallback",
        "estimate_id",
        "error",
    ]
    for row in (rows[0], rows[2], rows[3]):
        assert (
            float(row["price"]) > 0 and row["strategy"] == "knn" and len(row["estimate_id"]) == 32 and not row["error"]
        )
    assert rows[1]["price"] == "" and "no text" in rows[1]["error"]
    # the ids are recorded: feedback can name them
    recorded = FeedbackJournal(env).add(99.0, estimate_id=rows[0]["estimate_id"])
    assert recorded.matched and recorded.strategy == "knn"


def test_rerunning_resumes_keeping_what_was_priced_and_cutting_a_half_written_line(env: Path, tmp_path: Path) -> None:
    source, out = write_csv(tmp_path / "in.csv", ROWS), tmp_path / "priced.csv"
    price(source, out)
    first = read_csv(out)
    again = price(source, out)
    assert "4 kept" in again.output and read_csv(out) == first  # nothing priced twice
    # a run killed while writing its second batch: rows 1-2 whole, row 3 half written
    lines = out.read_text(encoding="utf-8").splitlines(keepends=True)
    out.write_text("".join(lines[:3]) + lines[3][:10], encoding="utf-8")
    price(source, out)
    rows = read_csv(out)
    assert [r["row"] for r in rows] == ["1", "2", "3", "4"]
    assert rows[:2] == first[:2] and rows[2]["estimate_id"] != first[2]["estimate_id"]  # re-priced, once


def test_without_a_terminal_progress_goes_to_the_log_as_lines(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag_pricer.cli import price_file

    monkeypatch.setattr(price_file, "LOG_EVERY_S", 0.0)  # a line after every batch
    result = price(write_csv(tmp_path / "in.csv", ROWS), tmp_path / "priced.csv")
    lines = [line for line in result.output.splitlines() if line.startswith("price-file: ")]
    assert lines[-1].startswith("price-file: 4/4 rows (") and "1 errors" in lines[-1]
    assert "priced 4 rows in" in result.output


def test_a_jsonl_catalogue_with_a_broken_line_keeps_going(env: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        json.dumps({"id": "p1", "title": "Cordless drill 18V"})
        + "\n{not json\n[1, 2]\n"
        + json.dumps({"id": "p4", "title": "Yoga mat 6 mm", "text": "non-slip"})
        + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "priced.jsonl"
    price(source, out, "--id-columns", "id", "--text-columns", "title,text")
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["row"] for r in rows] == [1, 2, 3, 4] and rows[0]["id"] == "p1" and rows[3]["id"] == "p4"
    assert rows[0]["price"] > 0 and rows[3]["price"] > 0 and "confidence" in rows[0]
    assert "not JSON" in rows[1]["error"] and "not a JSON object" in rows[2]["error"]


def test_price_file_refuses_unknown_formats_and_missing_text_columns_in_one_line(env: Path, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", ROWS)
    wrong = runner.invoke(app, ["price-file", str(source), "--out", str(tmp_path / "out.xlsx")])
    assert wrong.exit_code == 2 and ".csv or .jsonl" in wrong.output
    none = runner.invoke(app, ["price-file", str(source), "--out", str(tmp_path / "o.csv"), "--text-columns", "name"])
    assert none.exit_code == 2 and "none of the text columns" in none.output and "title" in none.output


def test_estimate_from_stdin_refuses_several_lines_unless_told_they_are_one(env: Path) -> None:
    lines = "Cordless drill 18V\nYoga mat 6 mm\nUSB-C charger 65 W\n"
    refused = runner.invoke(app, ["estimate", "-", "--json"], input=lines)
    assert refused.exit_code == 2 and "price-file" in refused.output and "--one" in refused.output
    one = runner.invoke(app, ["estimate", "-", "--one", "--json"], input=lines)
    assert one.exit_code == 0, one.output
    assert json.loads(one.stdout)["price"] > 0 and len(json.loads(one.stdout)["id"]) == 32
    single = runner.invoke(app, ["estimate", "-", "--json"], input="Cordless drill 18V\n")
    assert single.exit_code == 0, single.output


def test_evaluate_on_a_catalogue_without_prices_says_why(env: Path, tmp_path: Path) -> None:
    source = tmp_path / "catalogue.jsonl"
    source.write_text("".join(json.dumps({"id": f"c{i}", "title": "Yoga mat"}) + "\n" for i in range(3)))
    result = runner.invoke(app, ["evaluate", "--items", str(source), "--split", "all", "--no-progress"])
    assert result.exit_code == 2
    assert "none of its 3 records has a price" in result.output and "price-file" in result.output
    assert len(result.output.strip().splitlines()) == 1
    csv_file = write_csv(tmp_path / "catalogue.csv", ROWS)
    said = runner.invoke(app, ["evaluate", "--items", str(csv_file), "--no-progress"]).output
    assert "curated JSONL" in said and "price-file" in said
