"""The evaluation harness: scoring order, failures, leakage, concurrency, resumable comparisons, CLI."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag_pricer.api import Estimator
from rag_pricer.cli.app import app
from rag_pricer.evaluation import (
    Bootstrap,
    Comparison,
    Evaluation,
    LeakageError,
    resolve_strategies,
    run_key,
    schedule,
)
from rag_pricer.evaluation.runner import read_checkpoint
from rag_pricer.items import Item
from rag_pricer.pricing.pricer import Pricer
from rag_pricer.pricing.registry import Registry, UnknownStrategy
from rag_pricer.pricing.resources import Resources
from rag_pricer.pricing.values import Estimate
from rag_pricer.query import Query
from rag_pricer.settings import Settings

FAST = Bootstrap(resamples=100)


class TablePricer(Pricer):
    """Prices items from a table by id. Records every id it prices in ``log``, fails on the ids
    in ``fail`` (the whole call raises, as a real batch would), sleeps ``delay`` seconds per
    call, and tracks how many calls run at once."""

    def __init__(
        self,
        prices: dict[str, float],
        fail: Iterable[str] = (),
        delay: float | dict[str, float] = 0.0,
        log: list[str] | None = None,
        interrupt_after: int | None = None,
        leaked: Iterable[str] = (),
    ) -> None:
        self.prices = prices
        self.fail = set(fail)
        self.delay = delay
        self.log = [] if log is None else log
        self.interrupt_after = interrupt_after
        self.leaked = list(leaked)
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    def leaked_ids(self, ids: list[str]) -> list[str]:
        return [i for i in ids if i in self.leaked]

    def _estimate_many(self, queries: list[Query]) -> list[Estimate]:
        with self._lock:
            self.calls += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.interrupt_after is not None and len(self.log) >= self.interrupt_after:
                raise KeyboardInterrupt
            delay = self.delay if isinstance(self.delay, float) else max(self.delay[q.id] for q in queries)
            time.sleep(delay)
            for query in queries:
                if query.id in self.fail:
                    raise RuntimeError(f"cannot price {query.id}")
            with self._lock:
                self.log.extend(q.id for q in queries if q.id)
            return [Estimate(self.prices[q.id], self.name) for q in queries if q.id]
        finally:
            with self._lock:
                self.in_flight -= 1


@pytest.fixture(scope="module")
def items(dev_items: list[Item]) -> list[Item]:
    return dev_items[:12]


def scaled(items: list[Item], factor: float) -> dict[str, float]:
    return {item.id: round(item.price * factor, 2) for item in items}


def test_rows_follow_item_order_even_when_items_finish_out_of_order(items: list[Item]) -> None:
    prices = scaled(items, 1.1)
    # the first items are the slowest, so with 4 workers they finish last
    delays = {item.id: 0.01 * (len(items) - i) for i, item in enumerate(items)}
    pricer = TablePricer(prices, delay=delays)
    result = Evaluation(pricer, items, workers=4, batch_size=1, bootstrap=FAST).run()
    assert [row.id for row in result.rows] == [item.id for item in items]
    assert [row.estimate for row in result.rows] == [prices[item.id] for item in items]
    assert [row.truth for row in result.rows] == [item.price for item in items]
    assert pricer.log != [item.id for item in items]  # they really did finish out of order
    assert result.n == len(items) and result.failed == 0
    assert all(row.latency_s > 0 for row in result.rows)


def test_batches_go_through_estimate_many_in_chunks(items: list[Item]) -> None:
    pricer = TablePricer(scaled(items, 1.0))
    result = Evaluation(pricer, items, batch_size=5, bootstrap=FAST).run()
    assert pricer.calls == 3  # 12 items in chunks of 5, 5 and 2
    assert result.value("mae") == pytest.approx(0.0, abs=0.01)


def test_a_failing_item_is_recorded_and_the_run_goes_on(items: list[Item]) -> None:
    bad = {items[2].id, items[7].id}
    pricer = TablePricer(scaled(items, 1.5), fail=bad)
    result = Evaluation(pricer, items, batch_size=4, bootstrap=FAST).run()
    assert result.failed == 2 and result.n == len(items) - 2
    failed = {row.id: row.error for row in result.failures}
    assert failed == {i: f"RuntimeError: cannot price {i}" for i in bad}
    # the chunks that held a bad item were re-scored one by one, so their other items count
    assert sorted(pricer.log) == sorted(item.id for item in items if item.id not in bad)
    good = [item for item in items if item.id not in bad]
    assert result.value("mae") == pytest.approx(sum(0.5 * item.price for item in good) / len(good), rel=1e-3)
    data = json.loads(result.to_json())
    assert data["failed"] == 2 and {e["id"] for e in data["errors"]} == bad


def test_an_invalid_price_counts_as_a_failure(items: list[Item]) -> None:
    prices = scaled(items, 1.0) | {items[0].id: float("nan"), items[1].id: -3.0}
    result = Evaluation(TablePricer(prices), items, bootstrap=FAST).run()
    assert result.failed == 2
    # The Pricer contract refuses what is not a positive finite price (UnusablePrice).
    assert "nan, not a finite positive price" in result.rows[0].error and result.rows[0].estimate is None
    assert "NaN" not in result.to_json()


def test_leakage_is_refused_before_any_item_is_priced(items: list[Item]) -> None:
    pricer = TablePricer(scaled(items, 1.0), leaked=[items[3].id, items[5].id])
    with pytest.raises(LeakageError) as caught:
        Evaluation(pricer, items).run()
    assert pricer.calls == 0
    message = str(caught.value)
    assert f"2 of the {len(items)} items" in message and items[3].id in message and "--split train" in message


def test_workers_bound_the_calls_in_flight(items: list[Item]) -> None:
    pricer = TablePricer(scaled(items, 1.0), delay=0.05)
    Evaluation(pricer, items, workers=3, batch_size=1, bootstrap=FAST).run()
    assert pricer.calls == len(items)
    assert 2 <= pricer.max_in_flight <= 3
    sequential = TablePricer(scaled(items, 1.0), delay=0.01)
    Evaluation(sequential, items, workers=1, batch_size=1, bootstrap=FAST).run()
    assert sequential.max_in_flight == 1


def test_schedule_uses_a_pool_for_llm_strategies_and_batches_otherwise() -> None:
    assert schedule(("llm", "store"), llm_concurrency=4) == (4, 1)
    assert schedule(("llm",), llm_concurrency=4, workers=2) == (2, 1)
    assert schedule(("store",), llm_concurrency=4) == (1, 64)
    assert schedule((), llm_concurrency=4)[1] > 1


def test_an_interrupted_run_resumes_from_its_checkpoint(items: list[Item], tmp_path: Path) -> None:
    checkpoint = tmp_path / "run.partial.jsonl"
    first = TablePricer(scaled(items, 1.2), interrupt_after=5)
    with pytest.raises(KeyboardInterrupt):
        Evaluation(first, items, batch_size=1, checkpoint=checkpoint).run()
    assert [row.id for row in read_checkpoint(checkpoint)] == [item.id for item in items[:5]]
    second = TablePricer(scaled(items, 1.2))
    result = Evaluation(second, items, batch_size=1, checkpoint=checkpoint, bootstrap=FAST).run()
    assert second.log == [item.id for item in items[5:]]  # only what was left
    assert result.resumed == 5 and result.n == len(items)
    assert [row.id for row in result.rows] == [item.id for item in items]
    # a torn last line (crash while writing) is ignored, not fatal
    with open(checkpoint, "a", encoding="utf-8") as handle:
        handle.write('{"id": "tor')
    assert len(read_checkpoint(checkpoint)) == len(items)


def test_model_metrics_hook_is_reported(items: list[Item]) -> None:
    class Tuned(TablePricer):
        def model_metrics(self) -> dict[str, float]:
            return {"eval_loss": 1.25, "perplexity": 3.49}

    result = Evaluation(Tuned(scaled(items, 1.0)), items, bootstrap=FAST).run()
    assert result.model_metrics == {"eval_loss": 1.25, "perplexity": 3.49}
    assert json.loads(result.to_json())["model_metrics"]["perplexity"] == 3.49
    assert Evaluation(TablePricer(scaled(items, 1.0)), items, bootstrap=FAST).run().model_metrics is None


def test_knn_on_the_small_store(settings: Settings, dev_items: list[Item], train_items: list[Item]) -> None:
    pricer = Estimator.from_settings(settings).pricer("knn")
    result = Evaluation(pricer, dev_items, batch_size=8, bootstrap=FAST, settings=settings.public()).run()
    assert result.strategy == "knn" and result.n == len(dev_items) and result.failed == 0
    assert [row.id for row in result.rows] == [item.id for item in dev_items]
    assert all(row.estimate is not None and row.estimate > 0 for row in result.rows)
    assert 0 < result.value("mae") < 1000
    assert result.settings["store_path"] == str(settings.store_path)
    # the store holds these train items: scoring them would be leakage
    with pytest.raises(LeakageError, match="5 of the 5 items"):
        Evaluation(pricer, train_items[:5]).run()


# --- comparisons -------------------------------------------------------------------------


def comparison_registry(items: list[Item], log: dict[str, list[str]], **extra: TablePricer) -> Registry:
    """A fresh registry: ``close`` (5% off, accepts k), ``far`` (double, no options), and ``extra``."""
    registry = Registry()

    @registry.register("close", "5% too high", needs=("store",))
    def close(resources: Resources, k: int = 5) -> Pricer:
        return TablePricer(scaled(items, 1.05), log=log.setdefault("close", []))

    @registry.register("far", "twice the price")
    def far(resources: Resources) -> Pricer:
        return TablePricer(scaled(items, 2.0), log=log.setdefault("far", []))

    def returning(pricer: TablePricer) -> Callable[[Resources], Pricer]:
        return lambda resources: pricer  # a closure, not a default: every keyword parameter is an option

    for name, pricer in extra.items():
        registry.register(name, name, needs=("llm",))(returning(pricer))
    return registry


def run_comparison(
    registry: Registry, names: list[str], items: list[Item], out: Path, settings: Settings, **kw
) -> object:
    kw.setdefault("charts", False)  # drawing is tested once below and in test_charts.py
    return Comparison(Resources(settings), names, items, out, registry=registry, bootstrap=FAST, workers=1, **kw).run()


def test_compare_writes_a_report_sorted_by_mae_and_reuses_finished_runs(items: list[Item], tmp_path: Path) -> None:
    settings = Settings(store_path=tmp_path / "store")
    log: dict[str, list[str]] = {}
    registry = comparison_registry(items, log)
    first = run_comparison(registry, ["far", "close"], items, tmp_path / "out", settings, charts=True)
    assert [r.strategy for r in first.results] == ["far", "close"] and first.reused == []
    assert len(log["far"]) == len(log["close"]) == len(items)
    out = tmp_path / "out"
    for name in ("comparison.md", "comparison.png", "far.json", "close.json", "far.png", "close.png"):
        assert (out / name).stat().st_size > 0, name
    report = (out / "comparison.md").read_text()
    table = [line for line in report.splitlines() if line.startswith("| ")]
    assert "MAE" in table[0] and "95% CI" in table[0] and "hit rate" in table[0] and "RMSLE" in table[0]
    assert "`close`" in table[1] and "`far`" in table[2]  # sorted by MAE
    close = json.loads((out / "close.json").read_text())
    # the options recorded are the validated ones, defaults filled in
    assert close["n"] == len(items) and close["options"] == {"k": 5} and "mae_ci95" in close

    # a rerun prices nothing: both runs come from the cache
    second = run_comparison(comparison_registry(items, log), ["far", "close"], items, tmp_path / "out", settings)
    assert sorted(second.reused) == ["close", "far"]
    assert len(log["far"]) == len(log["close"]) == len(items)
    assert [r.to_dict()["mae"] for r in second.results] == [r.to_dict()["mae"] for r in first.results]

    # another k changes only the strategy that takes k
    third = run_comparison(registry, ["far", "close"], items, tmp_path / "out", settings, options={"k": 3})
    assert third.reused == ["far"] and len(log["close"]) == 2 * len(items)

    # other items are another run
    run_comparison(registry, ["far"], items[:6], tmp_path / "out", settings)
    assert len(log["far"]) == len(items) + 6


def test_compare_names_the_llm_of_the_llm_rows_in_the_report_and_the_json(items: list[Item], tmp_path: Path) -> None:
    from rag_pricer.llms import build_llm
    from rag_pricer.strategies.knn import KnnPricer
    from rag_pricer.strategies.zero_shot import ZeroShotPricer

    local = build_llm("local", Settings(_env_file=None, llm_cache_dir=None, local_model_path=None))  # built, not loaded
    described = "local (SmolLM2-135M-Instruct.Q4_1, llama-cpp)"
    assert local.identity()["description"] == described
    assert ZeroShotPricer(local, KnnPricer(None)).llm_used() == local.identity()  # type: ignore[arg-type]

    class Asking(TablePricer):
        def llm_used(self) -> dict[str, object]:
            return local.identity()

    registry = comparison_registry(items, {}, asking=Asking(scaled(items, 1.1)))
    settings = Settings(store_path=tmp_path / "store", _env_file=None)
    for _ in range(2):  # the second run comes from the cache and still says it
        run_comparison(registry, ["far", "asking"], items, tmp_path / "out", settings)
        report = (tmp_path / "out" / "comparison.md").read_text()
        assert f"## LLM\n\n- `asking`: {described}\n" in report and "`far`:" not in report.split("## LLM")[1]
    saved = json.loads((tmp_path / "out" / "asking.json").read_text())
    assert saved["llm"]["spec"] == "local" and saved["llm"]["model_id"] == "SmolLM2-135M-Instruct.Q4_1"
    assert saved["llm"]["runtime"] == "llama-cpp" and saved["llm"]["description"] == described
    assert json.loads((tmp_path / "out" / "far.json").read_text())["llm"] is None


def test_compare_resumes_an_interrupted_strategy(items: list[Item], tmp_path: Path) -> None:
    settings = Settings(store_path=tmp_path / "store", llm="fake")
    log: dict[str, list[str]] = {}
    slow = TablePricer(scaled(items, 1.3), interrupt_after=7)
    with pytest.raises(KeyboardInterrupt):
        run_comparison(comparison_registry(items, log, llm=slow), ["llm"], items, tmp_path / "out", settings)
    resumed = TablePricer(scaled(items, 1.3))
    outcome = run_comparison(comparison_registry(items, log, llm=resumed), ["llm"], items, tmp_path / "out", settings)
    assert resumed.log == [item.id for item in items[7:]]
    assert outcome.results[0].resumed == 7 and outcome.results[0].n == len(items)
    assert not list((tmp_path / "out" / "cache").glob("*.partial.jsonl"))  # superseded by the result


def test_compare_retries_only_the_failed_items_of_a_saved_run(items: list[Item], tmp_path: Path) -> None:
    settings = Settings(store_path=tmp_path / "store", llm="fake")
    bad = [items[1].id, items[4].id]
    first = run_comparison(
        comparison_registry(items, {}, llm=TablePricer(scaled(items, 1.0), fail=bad)),
        ["llm"],
        items,
        tmp_path,
        settings,
    )
    assert first.results[0].failed == 2
    fixed = TablePricer(scaled(items, 1.0))
    second = run_comparison(comparison_registry(items, {}, llm=fixed), ["llm"], items, tmp_path, settings)
    assert sorted(fixed.log) == sorted(bad)
    assert second.results[0].failed == 0 and second.results[0].n == len(items)


def test_compare_refuses_leakage_before_running_anything(items: list[Item], tmp_path: Path) -> None:
    log: dict[str, list[str]] = {}
    leaky = TablePricer(scaled(items, 1.0), leaked=[items[0].id])
    registry = comparison_registry(items, log, leaky=leaky)
    with pytest.raises(LeakageError):
        run_comparison(registry, ["close", "leaky"], items, tmp_path, Settings(store_path=tmp_path / "store"))
    assert log.get("close", []) == [] and leaky.calls == 0


def test_compare_skips_a_strategy_that_cannot_be_built(items: list[Item], tmp_path: Path) -> None:
    registry = comparison_registry(items, {})

    @registry.register("untrained", "needs models", needs=("trained",))
    def untrained(resources: Resources) -> Pricer:
        raise FileNotFoundError("no model in var/models: run `rag-pricer train-baselines`")

    outcome = run_comparison(registry, ["untrained", "far"], items, tmp_path, Settings(store_path=tmp_path / "store"))
    assert [r.strategy for r in outcome.results] == ["far"]
    assert "train-baselines" in outcome.skipped["untrained"]
    assert "## Not run" in (tmp_path / "comparison.md").read_text()


def test_resolve_strategies(items: list[Item]) -> None:
    registry = comparison_registry(items, {})
    registry.register("tuned", "needs a GPU", needs=("gpu",))(lambda resources: TablePricer({}))
    assert resolve_strategies("far, close,far", registry) == ["far", "close"]
    assert resolve_strategies("all-cpu", registry) == ["close", "far"]
    assert resolve_strategies("all", registry, gpu=False) == ["close", "far"]
    assert resolve_strategies("all", registry, gpu=True) == ["close", "far", "tuned"]
    with pytest.raises(UnknownStrategy):
        resolve_strategies("close,nope", registry)
    with pytest.raises(ValueError):
        resolve_strategies(" , ", registry)


def test_run_key_depends_on_what_changes_the_answers(items: list[Item], tmp_path: Path) -> None:
    """The key hashes the pricer's validated options and its own fingerprint, nothing the
    harness guesses from settings (the strategies' fingerprints: tests/test_contracts.py)."""

    class Fingerprinted(TablePricer):
        source = "a"

        def fingerprint(self) -> dict[str, object]:
            return {"source": self.source}

    registry = comparison_registry(items, {})
    registry.register("printed", "states its fingerprint")(lambda resources, k=5: Fingerprinted(scaled(items, 1.0)))
    resources = Resources(Settings(store_path=tmp_path / "a", llm="fake"))
    printed, far = registry.get("printed"), registry.get("far")
    key = run_key(printed.build(resources), items)
    assert key == run_key(printed.build(resources, k=5), items)  # the default, given or not
    assert key != run_key(printed.build(resources, k=6), items)
    assert key != run_key(printed.build(resources), items[:-1])
    other = printed.build(resources)
    other.source = "b"
    assert key != run_key(other, items)
    shorter = printed.build(resources)
    shorter.max_chars = 100
    assert key != run_key(shorter, items)
    assert run_key(far.build(resources), items) != run_key(registry.get("close").build(resources), items)
    # settings a pricer does not state do not matter
    assert key == run_key(printed.build(Resources(Settings(store_path=tmp_path / "b", llm="local"))), items)


# --- command line ------------------------------------------------------------------------

runner = CliRunner()


def cli(*args: str) -> object:
    return runner.invoke(app, [*args, "--no-progress", "--resamples", "100"])


def test_cli_evaluate_knn(settings: Settings, items_path: Path, dev_items: list[Item], tmp_path: Path) -> None:
    out, chart = tmp_path / "knn.json", tmp_path / "knn.png"
    result = cli(
        "evaluate",
        "--strategy",
        "knn",
        "--items",
        str(items_path),
        "--split",
        "dev",
        "--limit",
        "7",
        "--store",
        str(settings.store_path),
        "--json",
        str(out),
        "--chart",
        str(chart),
    )
    assert result.exit_code == 0, result.output
    assert "MAE" in result.output and "hit rate" in result.output
    data = json.loads(out.read_text())
    for key in (
        "strategy",
        "n",
        "mae",
        "rmsle",
        "hit_rate",
        "mae_ci95",
        "seconds",
        "failed",
        "fallbacks",
        "settings",
        "rows",
        "within_10",
        "within_20",
        "within_50",
        "bias",
        "bias_ci95",
    ):
        assert key in data, key
    assert data["strategy"] == "knn" and data["n"] == 7 and data["failed"] == 0
    assert 0 <= data["hit_rate"] <= 1 and data["mae_ci95"][0] <= data["mae"] <= data["mae_ci95"][1]
    # --limit takes the first items of the split, in file order
    assert [row["id"] for row in data["rows"]] == [item.id for item in dev_items[:7]]
    assert set(data["rows"][0]) >= {"id", "truth", "estimate", "fallback", "error", "latency_s"}
    assert data["settings"]["store_path"] == str(settings.store_path)
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_evaluate_refuses_leakage_with_exit_2(settings: Settings, items_path: Path) -> None:
    result = cli(
        "evaluate",
        "--strategy",
        "knn",
        "--items",
        str(items_path),
        "--split",
        "train",
        "--limit",
        "5",
        "--store",
        str(settings.store_path),
    )
    assert result.exit_code == 2
    assert "5 of the 5 items" in result.output and "--split train" in result.output


def test_cli_evaluate_rejects_bad_input(settings: Settings, items_path: Path, tmp_path: Path) -> None:
    unknown = cli("evaluate", "--strategy", "nope", "--items", str(items_path), "--limit", "2")
    assert unknown.exit_code == 2 and "unknown strategy" in unknown.output
    missing = cli("evaluate", "--items", str(tmp_path / "missing.jsonl"))
    assert missing.exit_code == 2 and "missing.jsonl" in missing.output
    empty = cli("evaluate", "--items", str(items_path), "--split", "nosuchsplit", "--limit", "2")
    assert empty.exit_code == 2 and "nosuchsplit" in empty.output


def test_cli_compare_reuses_finished_runs(settings: Settings, items_path: Path, tmp_path: Path) -> None:
    args = (
        "compare",
        "--strategies",
        "knn",
        "--items",
        str(items_path),
        "--limit",
        "6",
        "--store",
        str(settings.store_path),
        "--out",
        str(tmp_path / "cmp"),
    )
    first = cli(*args)
    assert first.exit_code == 0, first.output
    report = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "`knn`" in report and (tmp_path / "cmp" / "knn.png").exists()
    saved = json.loads((tmp_path / "cmp" / "knn.json").read_text())
    assert saved["n"] == 6
    second = cli(*args)
    assert second.exit_code == 0 and "cached" in second.output
    assert json.loads((tmp_path / "cmp" / "knn.json").read_text())["seconds"] == saved["seconds"]
