"""Whether a strategy can price on this server now: the ``status``, ``ready`` and ``hint`` of
``GET /v1/strategies``, so that the page never offers a strategy that can only fail.

A minimal check from files and settings, never by building a pricer (that may load a model):
the trained files a strategy's factory reads by default, the LLM backend named in settings,
and the store's state as the service saw it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from rag_pricer.pricing.registry import Strategy, missing_extra

Status = Literal["ready", "needs-training", "needs-llm", "needs-store", "needs-extra", "needs-gpu"]

#: need -> (file its factory reads under ``models_dir/<strategy>``, the command that writes it);
#: the first need a strategy has, in this order, decides (``ensemble`` is "trained" and "dev-fitted")
TRAINED_FILES: dict[str, tuple[str, str]] = {
    "adapter": ("run.json", "rag-pricer finetune"),
    "dev-fitted": ("ensemble.json", "rag-pricer train-ensemble --items ITEMS --split dev"),
    "trained": ("baseline.json", "rag-pricer train-baselines"),
}
#: a fine-tuned run with comparables is trained with --k
COMMANDS = {"rag-finetuned": "rag-pricer finetune --k 5"}


def strategy_status(
    spec: Strategy, models_dir: Path, llm_backends: list[str], llm: str, store_problem: str | None
) -> tuple[Status, str | None]:
    """``(status, hint)`` of ``spec``: ``llm`` is the server's LLM spec, ``llm_backends`` the
    registered backends, ``store_problem`` why the knowledge base is unusable (``None``: fine)."""
    extra = missing_extra(spec)
    if extra is not None:  # first: nothing else can make it ready
        return "needs-extra", f"this install lacks the {extra!r} extra: pip install 'rag-pricer[{extra}]'"
    for need, (filename, command) in TRAINED_FILES.items():
        if need in spec.needs:
            if not (Path(models_dir) / spec.name / filename).is_file():
                return "needs-training", f"not trained on this server: run `{COMMANDS.get(spec.name, command)}`"
            break
    if "llm" in spec.needs:
        backend = llm.partition(":")[0].strip()
        if backend not in llm_backends:
            hint = f"the server's LLM backend {backend!r} is unknown: set RAG_PRICER_LLM to one of `rag-pricer llms`"
            return "needs-llm", hint
    if "store" in spec.needs and store_problem is not None:
        return "needs-store", store_problem
    if "gpu" in spec.needs:
        import torch  # only for a strategy that needs a GPU: torch takes seconds to import

        if not torch.cuda.is_available():
            return "needs-gpu", "needs a CUDA GPU, and this server has none"
    return "ready", None
