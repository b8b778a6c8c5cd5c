"""``PricingLLM.ask_many`` against LangChain's ``Runnable.batch(config={"max_concurrency": n})``.

    python -m benchmarks.llm_batch [--calls 8] [--call-s 1.0] [--concurrency 2] [--deadline-s 0.2]

A chat model that answers after ``--call-s`` seconds (a sleep: no CPU, the figures hold on a
busy machine) is asked ``--calls`` conversations, ``--concurrency`` at a time, by both, without
and with a request deadline (``llm_deadline``; for ``batch``, the calls still queued at the
deadline are skipped, as ``ask_many`` skips them). Prints the seconds each took and writes
``benchmarks/out/llm_batch.json``. Why it matters: a service request must return at its
deadline even when the endpoint hangs.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableConfig, RunnableLambda

from rag_pricer.llms.client import PricingLLM, llm_deadline
from rag_pricer.llms.reply import LLMError

OUT = Path(__file__).parent / "out" / "llm_batch.json"


class SleepyChat(BaseChatModel):
    """Answers "$42" after ``delay_s`` seconds."""

    delay_s: float = 1.0

    @property
    def _llm_type(self) -> str:
        return "sleepy"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        time.sleep(self.delay_s)
        return ChatResult(generations=[ChatGeneration(message=AIMessage("$42"))])


def timed(run: Any) -> float:
    started = time.monotonic()
    run()
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=8)
    parser.add_argument("--call-s", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--deadline-s", type=float, default=0.2)
    args = parser.parse_args()
    conversations = [[HumanMessage(f"item {n}")] for n in range(args.calls)]

    def fresh() -> PricingLLM:
        chat = SleepyChat(delay_s=args.call_s)
        return PricingLLM(chat, spec="sleepy", model_id="sleepy", supports_prefill=False, concurrency=args.concurrency)

    def batch(llm: PricingLLM, deadline: float | None) -> list[Any]:
        def one(messages: list[BaseMessage]) -> Any:
            if deadline is not None and time.monotonic() >= deadline:
                return LLMError("timeout", "deadline passed", attempts=0)
            return llm.ask(messages)

        config = RunnableConfig(max_concurrency=args.concurrency)
        return RunnableLambda(one).batch(conversations, config=config, return_exceptions=True)

    def ask_many_by_deadline(llm: PricingLLM) -> None:
        with llm_deadline(args.deadline_s):
            llm.ask_many(conversations)

    figures = {
        "ask_many, no deadline": timed(lambda: fresh().ask_many(conversations)),
        "batch, no deadline": timed(lambda: batch(fresh(), None)),
        f"ask_many, deadline {args.deadline_s:g} s": timed(lambda: ask_many_by_deadline(fresh())),
        f"batch, deadline {args.deadline_s:g} s": timed(lambda: batch(fresh(), time.monotonic() + args.deadline_s)),
    }
    time.sleep(args.call_s)  # let the calls ask_many left in flight end before the process does
    print(f"{args.calls} calls of {args.call_s:g} s, concurrency {args.concurrency}")
    for name, seconds in figures.items():
        print(f"  {name:<28} {seconds:6.2f} s")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"args": vars(args), "seconds": figures}, indent=1) + "\n")


if __name__ == "__main__":
    main()
