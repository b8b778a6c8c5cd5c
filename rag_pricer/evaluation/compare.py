"""Several strategies on the same items, side by side: ``Comparison(...).run()``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag_pricer.api import attach_calibration
from rag_pricer.evaluation.bootstrap import Bootstrap
from rag_pricer.evaluation.cache import ResultCache, run_key
from rag_pricer.evaluation.report import comparison_markdown
from rag_pricer.evaluation.results import EvaluationResult
from rag_pricer.evaluation.runner import Evaluation, LeakageError, check_leaks, schedule
from rag_pricer.items import Item
from rag_pricer.pricing.pricer import Pricer
from rag_pricer.pricing.readiness import gpu_available
from rag_pricer.pricing.registry import InvalidOptions, Registry, Strategy, StrategyOptions
from rag_pricer.pricing.registry import registry as default_registry
from rag_pricer.pricing.resources import Resources


def resolve_strategies(spec: str, registry: Registry = default_registry, gpu: bool | None = None) -> list[str]:
    """Strategy names from ``a,b,c``; ``all-cpu`` is every strategy that needs no GPU, ``all``
    every one this machine can run (GPU ones only when a GPU is there). Neither includes the
    strategies fitted on dev (``ensemble``), which would be refused on dev: name them. Unknown
    names raise."""
    names: list[str] = []
    for part in (p.strip() for p in spec.split(",")):
        if part in ("all", "all-cpu"):
            with_gpu = part == "all" and (gpu_available() if gpu is None else gpu)
            names += [
                s.name for s in registry.all() if (with_gpu or "gpu" not in s.needs) and "dev-fitted" not in s.needs
            ]
        elif part:
            names.append(registry.get(part).name)
    if not names:
        raise ValueError(f"no strategy selected by {spec!r}")
    return list(dict.fromkeys(names))


@dataclass
class ComparisonResult:
    """The runs (in the order asked), the strategies that could not run and why, and the files written."""

    results: list[EvaluationResult]
    skipped: dict[str, str] = field(default_factory=dict)
    #: strategies whose finished result was taken from the cache instead of being run
    reused: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


@dataclass
class _Planned:
    strategy: Strategy
    pricer: Pricer
    options: dict[str, Any]
    key: str


class Comparison:
    """Runs ``strategies`` on the same ``items`` and writes to ``out_dir``: ``comparison.md``,
    ``comparison.png``, and per strategy ``<name>.json`` and ``<name>.png`` (no PNG with ``charts=False``).

    Finished runs are cached under ``cache_dir`` (default ``out_dir/cache``) by ``run_key``,
    so a rerun reuses them and an interrupted one resumes from its checkpoint; ``fresh``
    ignores the cache. Every pricer is built and checked for leakage before any is run, so a
    leaky setup is refused at once (``LeakageError``); a strategy that cannot be built (e.g.
    its models are not trained) is skipped with the reason.
    """

    def __init__(
        self,
        resources: Resources,
        strategies: Sequence[str],
        items: Sequence[Item],
        out_dir: str | Path,
        *,
        registry: Registry = default_registry,
        options: Mapping[str, Any] | None = None,
        workers: int | None = None,
        bootstrap: Bootstrap | None = None,
        cache_dir: str | Path | None = None,
        fresh: bool = False,
        progress: bool = False,
        charts: bool = True,
        description: str = "",
    ) -> None:
        if not items:
            raise ValueError("no items to compare on")
        self.resources = resources
        self.strategies = list(strategies)
        self.items = list(items)
        self.out_dir = Path(out_dir)
        self.registry = registry
        self.options = {k: v for k, v in (options or {}).items() if v is not None}
        self.workers = workers
        self.bootstrap = bootstrap or Bootstrap()
        self.cache = ResultCache(cache_dir if cache_dir is not None else self.out_dir / "cache")
        self.fresh = fresh
        self.progress = progress
        self.charts = charts
        self.description = description

    def run(self) -> ComparisonResult:
        if self.charts:
            # matplotlib is an optional dependency: imported only when charts are drawn.
            from rag_pricer.evaluation.charts import comparison_chart, dashboard

        planned, skipped = self._plan()
        outcome = ComparisonResult(results=[], skipped=skipped)
        report = self.out_dir / "comparison.md"
        for plan in planned:
            result = self._evaluate(plan, outcome)
            outcome.results.append(result)
            outcome.files.append(result.save(self.out_dir / f"{plan.strategy.name}.json"))
            if self.charts and result.n:
                outcome.files.append(dashboard(result, self.out_dir / f"{plan.strategy.name}.png"))
            # Rewritten after each strategy: a long comparison shows its progress as it goes.
            self._write_report(outcome, report)
        self._write_report(outcome, report)
        outcome.files.append(report)
        if self.charts and any(r.n for r in outcome.results):
            outcome.files.append(comparison_chart(outcome.results, self.out_dir / "comparison.png"))
        return outcome

    def _write_report(self, outcome: ComparisonResult, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            comparison_markdown(outcome.results, outcome.skipped, description=self.description), encoding="utf-8"
        )

    def _plan(self) -> tuple[list[_Planned], dict[str, str]]:
        """Check every strategy's options, build every pricer and refuse leakage before scoring anything."""
        settings = self.resources.settings
        options = self._options_by_strategy()
        planned, skipped = [], {}
        for name in self.strategies:
            strategy = self.registry.get(name)
            try:
                pricer = strategy.build(self.resources, options[name])
                pricer.max_chars = settings.max_description_chars
                attach_calibration(pricer, name, settings.models_dir)
                check_leaks(pricer, self.items)
                key = run_key(pricer, self.items)
            except LeakageError:
                raise
            except Exception as error:  # e.g. models not trained, store missing: report it, run the others
                skipped[name] = f"{type(error).__name__}: {error}"
                continue
            planned.append(_Planned(strategy, pricer, dict(pricer.options), key))
        return planned, skipped

    def _options_by_strategy(self) -> dict[str, StrategyOptions]:
        """Each strategy's share of the options: those it declares (k from the settings unless
        given, as in ``Estimator.pricer``). An option that no compared strategy declares, or a
        value one of them refuses, raises ``InvalidOptions`` before anything runs: a typo is
        never measured as the plain run."""
        strategies = [self.registry.get(name) for name in self.strategies]
        unknown = [name for name in self.options if not any(s.accepts(name) for s in strategies)]
        if unknown:
            valid = sorted({o for s in strategies for o in s.options()})
            names = ", ".join(map(repr, unknown))
            known = ", ".join(valid) or "none"
            raise InvalidOptions(f"no compared strategy has the option {names}; their options: {known}")
        defaults = {"k": self.resources.settings.k}
        chosen = {}
        for strategy in strategies:
            mine = {k: v for k, v in {**defaults, **self.options}.items() if v is not None and strategy.accepts(k)}
            # a bad value stops the comparison, it is not a skipped strategy
            chosen[strategy.name] = strategy.validate(mine)
        return chosen

    def _evaluate(self, plan: _Planned, outcome: ComparisonResult) -> EvaluationResult:
        name = plan.strategy.name
        cached = None if self.fresh else self.cache.load(name, plan.key, self.bootstrap)
        if cached is not None and not cached.failed and len(cached.rows) == len(self.items):
            outcome.reused.append(name)
            cached.llm = cached.llm or plan.pricer.llm_used()  # runs saved before results named their LLM
            return cached
        checkpoint = self.cache.checkpoint_path(name, plan.key)
        if self.fresh:
            checkpoint.unlink(missing_ok=True)
        workers, batch_size = schedule(plan.strategy.needs, self.resources.settings.llm_concurrency, self.workers)
        result = Evaluation(
            plan.pricer,
            self.items,
            workers=workers,
            batch_size=batch_size,
            bootstrap=self.bootstrap,
            progress=self.progress,
            checkpoint=checkpoint,
            # A saved run with failures is completed: only its failed items are priced again.
            reuse=cached.rows if cached is not None else (),
            settings=self.resources.settings.public(),
            options=plan.options,
        ).run()
        if cached is not None:
            result.seconds += cached.seconds
        self.cache.save(result, plan.key)
        return result
