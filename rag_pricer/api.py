"""The Python API: ``Estimator.from_settings().estimate("...")``."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from rag_pricer.pricing.confidence import BUILT_IN, ConfidenceLevels
from rag_pricer.pricing.pricer import Pricer, QueryLike
from rag_pricer.pricing.ranges import RangeCalibration
from rag_pricer.pricing.registry import Strategy, StrategyOptions, registry
from rag_pricer.pricing.resources import Resources
from rag_pricer.pricing.values import Estimate
from rag_pricer.settings import Settings


class Estimator:
    """Prices descriptions with any registered strategy; pricers are built once and reused.

    >>> from rag_pricer import Estimator
    >>> estimator = Estimator.from_settings()                   # doctest: +SKIP
    >>> estimator.estimate("Delphi FG0166 fuel pump module").price  # doctest: +SKIP
    """

    #: pricers kept built; options come from requests (e.g. a category), so the cache is bounded
    max_pricers = 32

    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        self._pricers: OrderedDict[tuple[str, tuple[tuple[str, str], ...]], Pricer] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **overrides: Any) -> Estimator:
        """Build from settings (environment and ``.env``), with field overrides validated as the
        environment's values are (``store_path="var/other-store"`` becomes a path); an unknown
        field or a bad value raises ``InvalidSettings`` (one line)."""
        settings = settings or Settings.load()
        return cls(Resources(settings.updated(**overrides) if overrides else settings))

    @property
    def settings(self) -> Settings:
        return self.resources.settings

    def strategies(self) -> list[Strategy]:
        return registry.all()

    def options(
        self, strategy: str | None = None, options: StrategyOptions | Mapping[str, Any] | None = None, **given: Any
    ) -> StrategyOptions:
        """The options of ``strategy`` (default: settings ``strategy``), validated once: an
        options object, a mapping or keywords (``None`` values: not given), with the configured
        ``k`` for strategies that retrieve when none was given. Raises ``InvalidOptions`` on an
        unknown name or a bad value (cheap: nothing is loaded). What it returns travels as it is
        to ``pricer`` and ``load``: no second validation."""
        spec = registry.get(strategy or self.settings.strategy)
        if options is not None and given:
            raise TypeError("pass the options as one object or as keywords, not both")
        configured_k = self.settings.k if spec.accepts("k") else None
        if isinstance(options, StrategyOptions):
            if configured_k is None or "k" in options.model_fields_set:
                return spec.validate(options)  # validated already: used as it is
            # validated without the configured k (e.g. by the registry directly): add it, once
            options = {**options.model_dump(exclude_unset=True), "k": configured_k}
        chosen = {k: v for k, v in dict(options if options is not None else given).items() if v is not None}
        if configured_k is not None:  # the configured k, for strategies that retrieve
            chosen.setdefault("k", configured_k)
        return spec.validate(chosen)

    def pricer(
        self, strategy: str | None = None, options: StrategyOptions | Mapping[str, Any] | None = None, **given: Any
    ) -> Pricer:
        """The pricer for ``strategy`` (default: settings ``strategy``) with these options (see
        ``options``); built once per strategy and options, then reused."""
        spec = registry.get(strategy or self.settings.strategy)
        validated = self.options(spec.name, options, **given)
        key = (spec.name, tuple(sorted((k, repr(v)) for k, v in validated.model_dump().items())))
        with self._lock:
            if key in self._pricers:
                self._pricers.move_to_end(key)
                return self._pricers[key]
        # Built outside the lock: loading an LLM takes seconds and must not stall knn requests.
        # Heavy parts (embedder, store, LLMs) are shared through Resources, so a rare double
        # build is cheap.
        pricer = spec.build(self.resources, validated)
        pricer.max_chars = self.settings.max_description_chars
        attach_calibration(pricer, spec.name, self.settings.models_dir)
        with self._lock:
            pricer = self._pricers.setdefault(key, pricer)
            self._pricers.move_to_end(key)
            while len(self._pricers) > self.max_pricers:
                self._pricers.popitem(last=False)
        return pricer

    def load(
        self, strategy: str | None = None, options: StrategyOptions | Mapping[str, Any] | None = None, **given: Any
    ) -> float:
        """Build ``strategy``'s pricer and load what it needs now (the embedding model, the store,
        a local LLM's runtime) rather than during the first estimate, so that an estimate's
        ``latency_s`` is the estimate's alone; returns the seconds loading took."""
        started = time.perf_counter()
        spec = registry.get(strategy or self.settings.strategy)
        validated = self.options(spec.name, options, **given)
        self.pricer(spec.name, validated)
        if "store" in spec.needs:
            self.resources.embedder.encode_one("warm-up")
            self.resources.store.count()
        if "llm" in spec.needs:
            from rag_pricer.llms.local_chat import LocalChatModel

            chat_model = self.resources.llm(getattr(validated, "llm", None)).chat_model
            if isinstance(chat_model, LocalChatModel):  # remote endpoints have nothing to load
                chat_model.load()
        return time.perf_counter() - started

    def estimate(self, description: QueryLike, strategy: str | None = None, **options: Any) -> Estimate:
        """``description``'s estimate; ``options`` as keywords (validated options: ``pricer``)."""
        return self.pricer(strategy, options).estimate(description)

    def estimate_many(
        self, descriptions: Sequence[QueryLike], strategy: str | None = None, **options: Any
    ) -> list[Estimate]:
        return self.pricer(strategy, options).estimate_many(descriptions)


#: the note on an estimate without a range: for whoever reads the estimate (a page's visitor too), so
#: no command and no path; ``rag-pricer strategies`` says what makes a range (``missing_note``)
NO_RANGE_NOTE = "no price range for this strategy (it is not calibrated)"


def attach_calibration(pricer: Pricer, strategy: str, models_dir: Any) -> None:
    """Give ``pricer`` the saved range calibration of ``strategy`` (or the note saying it has
    none) and the saved confidence levels (else the built-in ones)."""
    pricer.calibration = RangeCalibration.load(models_dir, strategy)
    pricer.uncalibrated_note = None if pricer.calibration else NO_RANGE_NOTE
    pricer.confidence_levels = ConfidenceLevels.load(models_dir) or BUILT_IN
