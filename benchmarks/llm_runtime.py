"""Which runtime should run the local model? llama.cpp vs transformers, on SmolLM2-135M-Instruct.

For each runtime and thread count: load time, prefill and decode speed in tokens/s, and the
latency of a real price answer (a dev item's description with the "Price is $" prefill, up to
12 tokens). The configurations take turns round by round, so that a load that comes and goes
on a shared machine hits them alike; medians over the rounds after a warm-up round. The load
average is recorded with the figures. Prints a table and writes
``benchmarks/out/llm_runtime.json``.

Also, at 1 thread: llama.cpp with its extra buffer types (weights repacked for special kernels;
off by default because the AMX one crashes, skipped on CPUs with AMX), and llama.cpp run in its
own process as the library runs it (``isolated``: answer latency only, prefill and decode are
measured in process).

    python -m benchmarks.llm_runtime                      # llama.cpp and transformers, 1 and 2 threads
    python -m benchmarks.llm_runtime --skip-transformers --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from benchmarks.support import ROOT
from rag_pricer.diagnostics import cpu_flags
from rag_pricer.items import read_items
from rag_pricer.llms.client import PricingLLM
from rag_pricer.llms.llama_cpp_chat import ChatLlamaCpp
from rag_pricer.llms.local_chat import LocalChatModel, default_gguf_path
from rag_pricer.llms.retry import RetryPolicy
from rag_pricer.llms.transformers_chat import ChatTransformersGGUF

OUT = ROOT / "benchmarks" / "out" / "llm_runtime.json"
DATA = Path(os.environ.get("RAG_PRICER_DATA_DIR", ROOT.parent / "shared" / "data"))
SYSTEM = "You estimate the prices of products. Reply only with the price, no explanation."


def conversations(n: int) -> list[list[BaseMessage]]:
    items = read_items(DATA / "items.jsonl.gz", split="dev", limit=n)
    return [
        [
            SystemMessage(SYSTEM),
            HumanMessage(f"How much does this cost to the nearest dollar?\n\n{item.description}"),
            AIMessage("Price is $"),
        ]
        for item in items
    ]


def text_of_tokens(count_tokens: Callable[[str], int], target: int) -> str:
    """Real product descriptions cut to about ``target`` tokens."""
    words = " ".join(item.description for item in read_items(DATA / "items.jsonl.gz", split="train", limit=40)).split()
    lo, hi = 1, len(words)
    while lo < hi:  # the longest prefix of words within the target
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if count_tokens(" ".join(words[:mid])) <= target else (lo, mid - 1)
    return " ".join(words[:lo])


@dataclass
class Config:
    """One runtime at one thread count, and what was measured of it."""

    name: str
    model: LocalChatModel
    threads: int
    load_s: float = float("nan")
    rows: list[dict[str, float]] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)


def speeds_llama(model: ChatLlamaCpp, text: str, decode_tokens: int) -> tuple[int, float, float]:
    llm, _template = model._runtime
    tokens = llm.tokenize(text.encode(), add_bos=False, special=True)
    llm.reset()  # no reuse of the previous prompt's KV cache
    started = time.perf_counter()
    stream = llm.generate(tokens, temp=0.0, reset=True)
    next(stream)  # evaluates the whole prompt, samples one token
    first = time.perf_counter()
    for _ in range(decode_tokens):
        next(stream)
    done = time.perf_counter()
    stream.close()
    return len(tokens), len(tokens) / (first - started), decode_tokens / (done - first)


def speeds_transformers(model: ChatTransformersGGUF, text: str, decode_tokens: int) -> tuple[int, float, float]:
    import torch

    tokenizer, hf = model._runtime
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        started = time.perf_counter()
        hf(ids, use_cache=True)
        first = time.perf_counter()
        hf.generate(
            ids,
            max_new_tokens=decode_tokens + 1,
            min_new_tokens=decode_tokens + 1,
            do_sample=False,
            pad_token_id=tokenizer.eos_token_id,
        )
        done = time.perf_counter()
    # generate() = one prefill and decode_tokens steps: take the prefill out.
    return (
        int(ids.shape[1]),
        ids.shape[1] / (first - started),
        decode_tokens / max(1e-9, (done - first) - (first - started)),
    )


def one_round(config: Config, text: str, decode_tokens: int, conversation: list[BaseMessage]) -> None:
    if config.model.isolated:
        tokens, prefill, decode = 0, float("nan"), float("nan")
    elif isinstance(config.model, ChatTransformersGGUF):
        import torch

        torch.set_num_threads(config.threads)  # process-wide: fine in a benchmark, not in the library
        tokens, prefill, decode = speeds_transformers(config.model, text, decode_tokens)
    else:
        tokens, prefill, decode = speeds_llama(config.model, text, decode_tokens)  # type: ignore[arg-type]
    llm = PricingLLM(
        config.model, spec="bench", model_id="bench", supports_prefill=True, retry=RetryPolicy(max_retries=0)
    )
    reply = llm.ask(conversation)
    config.answers.append(reply.text)
    config.rows.append(
        {
            "prompt_tokens": tokens,
            "prefill_tok_s": prefill,
            "decode_tok_s": decode,
            "answer_s": reply.latency_s,
            "answer_prompt_tokens": reply.usage.prompt_tokens,
            "load_avg": os.getloadavg()[0],
        }
    )


def summary(config: Config) -> dict[str, Any]:
    timed = config.rows[1:]  # the first round warms up (page faults, weight repacking, caches)
    med = lambda key: statistics.median(row[key] for row in timed)  # noqa: E731
    return {
        "runtime": config.name,
        "threads": config.threads,
        "load_s": config.load_s,
        "prompt_tokens": timed[0]["prompt_tokens"],
        "prefill_tok_s": med("prefill_tok_s"),
        "decode_tok_s": med("decode_tok_s"),
        "answer_p50_s": med("answer_s"),
        "answer_prompt_tokens_p50": med("answer_prompt_tokens"),
        "load_avg_p50": med("load_avg"),
        "rounds": config.rows,
        "answers": config.answers,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prefill-tokens", type=int, default=400, help="prompt length for the prefill figure")
    parser.add_argument("--decode-tokens", type=int, default=32, help="tokens generated for the decode figure")
    parser.add_argument(
        "--rounds", type=int, default=3, help="timed rounds per configuration (after one warm-up round)"
    )
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[1, 2], help="thread counts (llama.cpp n_threads, torch threads)"
    )
    parser.add_argument("--skip-transformers", action="store_true")
    args = parser.parse_args()

    path = default_gguf_path()
    configs = [Config("llama.cpp", ChatLlamaCpp(model_path=path, n_threads=t, isolated=False), t) for t in args.threads]
    if not any(flag.startswith("amx") for flag in cpu_flags()):  # the AMX buffer type segfaults there
        configs.append(
            Config("llama.cpp+bufts", ChatLlamaCpp(model_path=path, extra_buffer_types=True, isolated=False), 1)
        )
    configs.append(Config("llama.cpp child", ChatLlamaCpp(model_path=path), 1))
    if not args.skip_transformers:
        shared = ChatTransformersGGUF(model_path=path, isolated=False)  # one copy of the weights for every thread count
        configs += [Config("transformers", shared, t) for t in args.threads]
    for config in configs:
        if config.model._runtime is None and config.model._process is None:
            started = time.perf_counter()
            config.model.load()
            config.load_s = time.perf_counter() - started

    convs = conversations(args.rounds + 1)
    llama = configs[0].model._runtime[0]
    text = text_of_tokens(lambda s: len(llama.tokenize(s.encode(), add_bos=False, special=True)), args.prefill_tokens)
    for round_ in range(args.rounds + 1):
        for config in configs:
            one_round(config, text, args.decode_tokens, convs[round_])
            row = config.rows[-1]
            print(
                f"round {round_} {config.name} threads={config.threads}: prefill {row['prefill_tok_s']:.1f} tok/s, "
                f"decode {row['decode_tok_s']:.1f} tok/s, answer {row['answer_s']:.2f} s, load avg "
                f"{row['load_avg']:.1f}",
                flush=True,
            )

    results = [summary(c) for c in configs]
    print(
        f"\n{'runtime':14} {'threads':>7} {'load s':>7} {'prefill tok/s':>14} {'decode tok/s':>13} "
        f"{'answer p50 s':>13} {'load avg':>9}"
    )
    for r in results:
        print(
            f"{r['runtime']:14} {r['threads']:7d} {r['load_s']:7.2f} {r['prefill_tok_s']:14.1f} "
            f"{r['decode_tok_s']:13.1f} "
            f"{r['answer_p50_s']:13.3f} {r['load_avg_p50']:9.1f}"
        )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "model": path.name,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "args": vars(args),
        "results": results,
    }
    OUT.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"\nwritten to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
