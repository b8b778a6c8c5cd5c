"""``rag-pricer price-file IN --out OUT``: price every row of a catalogue (CSV or JSONL).

Each output row holds the input row's number (``row``), its id columns as they were, then
``price``, ``low``, ``high``, ``confidence`` (strategies that give one), ``strategy``,
``fallback``, ``estimate_id`` and ``error``. A row that cannot be priced (no text, not JSON, a
strategy failure on it alone) gets ``error`` and no price; the run goes on.

Resuming: rows already in OUT (by ``row``) are kept and skipped, so a re-run after a crash or
Ctrl-C prices only the rest. Each batch's rows are appended in one write and fsynced; a run
killed in the middle of a write leaves at most one partial last line, which the next run cuts
off and prices again.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from rag_pricer.cli.common import (
    USER_ERRORS,
    KOpt,
    LlmOpt,
    StoreOpt,
    StrategyOpt,
    StrategyOptionsOpt,
    errors,
    estimator_with,
    fail,
    parse_options,
)
from rag_pricer.evaluation.progress import progress_bar
from rag_pricer.feedback.journal import FeedbackJournal, Given
from rag_pricer.pricing.pricer import Pricer
from rag_pricer.pricing.readiness import Readiness
from rag_pricer.pricing.values import Estimate

RESULT_COLUMNS = ("price", "low", "high", "confidence", "strategy", "fallback", "estimate_id", "error")
CSV_SUFFIXES = {".csv"}
JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}
#: progress lines (no terminal) at most this often
LOG_EVERY_S = 10.0


class Row:
    """One input row: its number, its fields, its text (``None``: see ``problem``)."""

    def __init__(self, number: int, fields: dict[str, Any] | None, problem: str | None = None) -> None:
        self.number = number
        self.fields = fields or {}
        self.problem = problem
        self.text: str | None = None


def file_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    fail(f"{path}: price-file reads and writes .csv or .jsonl files, not {suffix or 'a name without a suffix'!r}")
    return ""


def read_rows(path: Path) -> Iterator[Row]:
    """The rows of ``path``, numbered from 1; a JSONL line that is not a JSON object is a row
    with a ``problem``."""
    if file_kind(path) == "csv":
        with path.open(encoding="utf-8-sig", newline="") as handle:
            for number, record in enumerate(csv.DictReader(handle), 1):
                yield Row(number, record)
        return
    with path.open(encoding="utf-8", errors="replace") as handle:
        number = 0
        for line in handle:
            if not line.strip():
                continue
            number += 1
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                yield Row(number, None, f"not JSON ({error.msg})")
                continue
            if not isinstance(record, dict):
                yield Row(number, None, f"not a JSON object ({type(record).__name__})")
                continue
            yield Row(number, record)


def text_of(row: Row, columns: Sequence[str]) -> str | None:
    """The row's named columns, non-empty ones joined by new lines (``None``: none has text)."""
    parts = [str(row.fields.get(column) or "").strip() for column in columns]
    text = "\n".join(part for part in parts if part)
    return text or None


def done_rows(out: Path, kind: str, header: Sequence[str]) -> set[int]:
    """The rows already in ``out`` (a previous run's), after cutting off a partial last line;
    ``out``'s header must be ``header`` (else its columns are not this run's: one line, exit 2)."""
    if not out.exists() or out.stat().st_size == 0:
        return set()
    with out.open("rb+") as handle:
        data = handle.read()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            handle.truncate(end)  # a line a killed run left half written
            data = data[:end]
    text = data.decode("utf-8")
    if kind == "csv":
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames is not None and list(reader.fieldnames) != list(header):
            fail(f"{out} has the columns {reader.fieldnames}, not this run's {list(header)}: choose another --out")
        return {int(r["row"]) for r in reader if (r.get("row") or "").isdigit()}
    done = set()
    for line in text.splitlines():
        try:
            done.add(int(json.loads(line)["row"]))
        except (ValueError, KeyError, TypeError):
            continue
    return done


def result(row: Row, id_columns: Sequence[str], estimate: Estimate | None, error: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"row": row.number, **{c: row.fields.get(c) for c in id_columns}}
    if estimate is None:
        return out | dict.fromkeys(RESULT_COLUMNS) | {"error": error}
    rounded = {b: None if getattr(estimate, b) is None else round(getattr(estimate, b), 2) for b in ("low", "high")}
    return out | {
        "price": round(estimate.price, 2),
        **rounded,
        "confidence": getattr(estimate, "confidence", None),  # strategies that give one
        "strategy": estimate.strategy,
        "fallback": estimate.fallback,
        "estimate_id": estimate.id,
        "error": None,
    }


def append(out: Path, kind: str, header: Sequence[str], rows: list[dict[str, Any]]) -> None:
    """Append ``rows`` to ``out`` in one write, fsynced (the header first on a new file)."""
    buffer = io.StringIO()
    if kind == "csv":
        writer = csv.DictWriter(buffer, fieldnames=list(header), lineterminator="\n")
        if not out.exists() or out.stat().st_size == 0:
            writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in rows)
    else:
        for r in rows:
            buffer.write(json.dumps(r, ensure_ascii=False) + "\n")
    descriptor = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, buffer.getvalue().encode("utf-8"))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def price_rows(pricer: Pricer, rows: list[Row]) -> list[tuple[Estimate | None, str | None]]:
    """Each row's estimate or error: the valid rows in one ``estimate_many`` call, and when that
    fails, each row alone, so one bad row never costs the others."""
    answers: list[tuple[Estimate | None, str | None]] = [
        (None, row.problem or "no text in the text columns") for row in rows
    ]
    texts = {i: row.text for i, row in enumerate(rows) if row.text is not None}
    valid = list(texts)
    try:
        estimates = pricer.estimate_many(list(texts.values()))
        for i, estimate in zip(valid, estimates):
            answers[i] = (estimate, None)
        return answers
    except Exception:  # noqa: BLE001 - find the row(s) at fault, one at a time
        pass
    for i in valid:
        try:
            answers[i] = (pricer.estimate(texts[i]), None)
        except Exception as error:  # noqa: BLE001 - the row's error, in its output row
            answers[i] = (None, f"{type(error).__name__}: {' '.join(str(error).split())[:300]}")
    return answers


def batches(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def price_file(
    source: Annotated[Path, typer.Argument(help="The catalogue: a .csv (with a header) or .jsonl file.")],
    out: Annotated[Path, typer.Option("--out", help="Where the priced rows go (.csv or .jsonl); resumed if present.")],
    text_columns: Annotated[
        str, typer.Option("--text-columns", help="Columns whose text, joined, is each row's description.")
    ] = "title,description",
    id_columns: Annotated[str, typer.Option("--id-columns", help="Columns copied to the output as they are.")] = "id",
    strategy: StrategyOpt = None,
    llm: LlmOpt = None,
    store: StoreOpt = None,
    k: KOpt = None,
    option: StrategyOptionsOpt = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, max=4096, help="Rows priced per call.")] = 64,
    record: Annotated[
        bool, typer.Option("--record/--no-record", help="Record the estimates in the feedback journal.")
    ] = True,
    progress: Annotated[
        bool | None,
        typer.Option("--progress/--no-progress", help="Progress bar (default: when stderr is a terminal)."),
    ] = None,
) -> None:
    """Price every row of a CSV or JSONL catalogue into OUT: id columns kept, then price, low,
    high, confidence, strategy, fallback, estimate_id and error. Re-running resumes."""
    texts = [c.strip() for c in text_columns.split(",") if c.strip()]
    ids = [c.strip() for c in id_columns.split(",") if c.strip()]
    if not texts:
        fail("--text-columns names no column")
    if not source.is_file():
        fail(f"no file {source}")
    kind, source_kind = file_kind(out), file_kind(source)
    header = ["row", *ids, *RESULT_COLUMNS]
    if kind == "csv" and set(ids) & set(RESULT_COLUMNS):
        fail(f"--id-columns may not be named {sorted(set(ids) & set(RESULT_COLUMNS))}: they are output columns")
    first = next(read_rows(source), None)
    if first is None:
        fail(f"{source} holds no rows")
        return
    if source_kind == "csv" and not set(texts) & set(first.fields):
        fail(f"{source} has none of the text columns {texts}; its columns: {', '.join(first.fields)}")
    done = done_rows(out, kind, header)
    total = sum(1 for _ in read_rows(source))
    estimator = estimator_with(store_path=store, llm=llm)
    try:
        options = estimator.options(strategy, {"k": k, "llm": llm, **parse_options(option)})
        Readiness(estimator.settings, llm_factory=estimator.resources.llm).require(
            strategy or estimator.settings.strategy, llm, options
        )
        estimator.load(strategy, options)
        pricer = estimator.pricer(strategy, options)
    except USER_ERRORS as error:
        fail(str(error))
        return
    settings = estimator.settings
    journal = FeedbackJournal(settings.feedback_path) if record and settings.feedback_path is not None else None
    show_bar = sys.stderr.isatty() if progress is None else progress
    todo = (row for row in read_rows(source) if row.number not in done)
    priced = errors_seen = 0
    started = last_line = time.monotonic()
    if done:
        errors.print(f"resuming: {len(done)} of {total} rows already in {out}", soft_wrap=True)
    with progress_bar(show_bar) as bar:
        task = bar.add_task("pricing", total=total, completed=len(done))
        for batch in batches(todo, batch_size):
            for row in batch:
                row.text = None if row.problem else text_of(row, texts)
            answers = price_rows(pricer, batch)
            append(out, kind, header, [result(row, ids, e, err) for row, (e, err) in zip(batch, answers)])
            if journal is not None:
                journal.record(Given.of(e, row.text or "") for row, (e, _) in zip(batch, answers) if e is not None)
            priced += len(batch)
            errors_seen += sum(1 for e, _ in answers if e is None)
            bar.update(task, advance=len(batch))
            now = time.monotonic()
            if not show_bar and now - last_line >= LOG_EVERY_S:
                last_line = now
                errors.print(
                    f"price-file: {len(done) + priced}/{total} rows ({priced / (now - started):.1f} rows/s, "
                    f"{errors_seen} errors)",
                    soft_wrap=True,
                )
    elapsed = time.monotonic() - started
    rate = priced / elapsed if elapsed > 0 else 0.0
    errors.print(
        f"priced {priced} rows in {elapsed:.1f} s ({rate:.1f} rows/s), {errors_seen} with an error; "
        f"{len(done)} kept from before; output: {out}",
        soft_wrap=True,
    )
