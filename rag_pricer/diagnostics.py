"""``Doctor``: checks each configured part of rag-pricer on its own and says what works.

The parts are checked in the order data flows (store, embedder, retrieval, the local model, the
configured LLM endpoint, then which strategies are ready: ``pricing.readiness``), each in
isolation: one that fails is reported and the others are still
checked. The local model answers from its own process, so even a native crash of its runtime is
a finding, not the end of the check. Used by ``rag-pricer doctor`` (users, CI) and by tests.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from rag_pricer.api import Estimator
from rag_pricer.pricing.readiness import Readiness, ask_probe
from rag_pricer.settings import Settings

SAMPLE = "Delphi FG0166 fuel pump module for Chevrolet Silverado and GMC Sierra 1500, 2004-2007"

Status = Literal["ok", "failed", "skipped"]


@dataclass(frozen=True)
class Finding:
    part: str
    status: Status
    detail: str
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Skipped(Exception):
    """A part that is not configured: nothing to check."""


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux), e.g. to tell whether it has AMX."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    return {flag for line in text.splitlines() if line.startswith("flags") for flag in line.partition(":")[2].split()}


class Doctor:
    """Runs the checks for ``settings``; ``llm_timeout_s`` bounds each LLM check."""

    def __init__(self, settings: Settings, llm_timeout_s: float = 120.0) -> None:
        self.settings = settings.model_copy(
            update={"llm_timeout_s": llm_timeout_s, "llm_max_retries": 0, "llm_cache_dir": None}
        )
        self.estimator = Estimator.from_settings(self.settings)

    def run(self) -> list[Finding]:
        # (part, check, the parts it needs): a part whose needs failed is skipped, not failed again.
        checks: list[tuple[str, Callable[[], str], tuple[str, ...]]] = [
            ("cpu", self.cpu, ()),
            ("store", self.store, ()),
            ("embedder", self.embedder, ()),
            ("knn", self.knn, ("store", "embedder")),
            ("local LLM", self.local_llm, ()),
            ("configured LLM", self.configured_llm, ()),
            ("strategies", self.strategies, ()),
        ]
        findings: dict[str, Finding] = {}
        for part, check, needs in checks:
            broken = [need for need in needs if findings[need].status != "ok"]
            findings[part] = (
                Finding(part, "skipped", f"needs the {' and the '.join(broken)}")
                if broken
                else self._check(part, check)
            )
        return list(findings.values())

    @staticmethod
    def _check(part: str, check: Callable[[], str]) -> Finding:
        started = time.perf_counter()
        try:
            status: Status
            status, detail = "ok", check()
        except Skipped as skipped:
            status, detail = "skipped", str(skipped)
        except Exception as exc:  # every failure is a finding; the next part is still checked
            status, detail = "failed", f"{type(exc).__name__}: {exc}"
        return Finding(part, status, detail, round(time.perf_counter() - started, 3))

    # -- the checks: each returns what it found, or raises ---------------------------------

    @staticmethod
    def cpu() -> str:
        amx = sorted(flag for flag in cpu_flags() if flag.startswith("amx"))
        return (
            "AMX: " + " ".join(amx) if amx else "no AMX"
        ) + "; llama.cpp loads without its extra buffer types either way"

    def store(self) -> str:
        store = self.estimator.resources.store
        count = store.check()  # a missing store is a StoreError saying how to build it, never created
        if count == 0:
            raise ValueError(f"the store at {store.location} is empty: index some items first")
        return f"{count:,} products at {store.location}"

    def embedder(self) -> str:
        embedder = self.estimator.resources.embedder
        vector = embedder.encode_one(SAMPLE)
        if not all(math.isfinite(float(x)) for x in vector):
            raise ValueError("the embedding of a sample description is not finite")
        return f"{self.settings.embedding_model} ({self.settings.embedding_backend}), {len(vector)} dimensions"

    def knn(self) -> str:
        estimate = self.estimator.estimate(SAMPLE, strategy="knn")
        if not (math.isfinite(estimate.price) and estimate.price > 0):
            raise ValueError(f"knn priced a sample at {estimate.price}")
        return f"${estimate.price:,.2f} for a sample from {len(estimate.comparables)} comparables"

    def local_llm(self) -> str:
        return self._ask("local")

    def configured_llm(self) -> str:
        spec = self.settings.llm
        if spec.split(":")[0] in ("local", "fake"):
            raise Skipped(f"llm is {spec!r}: no endpoint configured (set RAG_PRICER_LLM, e.g. openai:gpt-4o-mini)")
        return self._ask(spec)

    def strategies(self) -> str:
        """Which strategies are ready, and what the others need (the LLMs were asked above)."""
        by_status: dict[str, list[str]] = {}
        for state in Readiness(self.settings, llm_factory=self.estimator.resources.llm).all():
            by_status.setdefault(state.status, []).append(state.name)
        ordered = sorted(by_status.items(), key=lambda kv: kv[0] != "ready")  # ready first
        found = "; ".join(f"{status}: {', '.join(names)}" for status, names in ordered)
        return found + ("" if set(by_status) == {"ready"} else " (`rag-pricer strategies` says what to run)")

    def _ask(self, spec: str) -> str:
        from rag_pricer.strategies.prompting.answers import parse_price

        llm = self.estimator.resources.llm(spec)
        reply = ask_probe(llm, SAMPLE)
        price = parse_price(reply.text)
        verdict = "a price" if price else "no price"
        return f"{llm.spec} answered {reply.text.strip()!r} ({verdict}) in {reply.latency_s:.1f} s"
