"""SmolLM2 (or any GGUF chat model) through transformers, which dequantises the GGUF to fp32."""

from __future__ import annotations

import time
from typing import Any

from rag_pricer.llms.errors import ContextWindowExceeded
from rag_pricer.llms.local_chat import LocalChatModel


class ChatTransformersGGUF(LocalChatModel):
    """transformers runtime of a GGUF file (``from_pretrained(dir, gguf_file=...)``).

    Slower than llama.cpp here (see ``benchmarks/llm_runtime.py``) but it is the model the
    fine-tuning code trains, so its answers are the reference for a fine-tuned adapter. The
    prefill uses ``apply_chat_template(continue_final_message=True)``; ``timeout_s`` is
    ``generate(max_time=...)`` and raises ``TimeoutError`` when reached. torch's thread pool is
    process-wide (``torch.set_num_threads``): ``n_threads`` is not applied here, to leave the
    embedding model's setting alone.
    """

    @property
    def _llm_type(self) -> str:
        return "transformers-gguf"

    def _load(self) -> tuple[Any, Any]:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # ~20 GGUF de-quantisation bars per load
        folder, name = str(self.model_path.parent), self.model_path.name
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
        model.eval()
        return tokenizer, model

    def _complete(
        self, runtime: Any, messages: list[dict[str, str]], stop: list[str], max_tokens: int
    ) -> tuple[str, int, int]:
        import torch

        tokenizer, model = runtime
        prefill = messages[-1]["role"] == "assistant"
        inputs = tokenizer.apply_chat_template(
            messages,
            add_generation_prompt=not prefill,
            continue_final_message=prefill,
            return_tensors="pt",
            return_dict=True,
        )
        prompt_tokens = int(inputs["input_ids"].shape[1])
        limit = getattr(model.config, "max_position_embeddings", None)
        if limit and prompt_tokens + max_tokens > limit:
            raise ContextWindowExceeded(
                f"{prompt_tokens} prompt tokens + {max_tokens} to generate exceed the context of {limit}"
            )
        sampling = (
            {"do_sample": True, "temperature": self.temperature} if self.temperature > 0 else {"do_sample": False}
        )
        started = time.monotonic()
        with torch.inference_mode():
            output = model.generate(
                **inputs,
                max_new_tokens=max_tokens,
                max_time=self.timeout_s,
                stop_strings=stop or None,
                tokenizer=tokenizer if stop else None,
                pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
                **sampling,
            )
        new = output[0, prompt_tokens:]
        ended = len(new) > 0 and int(new[-1]) == tokenizer.eos_token_id
        cut_short = len(new) < max_tokens and not ended
        if self.timeout_s and cut_short and time.monotonic() - started >= self.timeout_s:
            # generate() stops silently at max_time: an answer cut short is a timeout, not an answer.
            raise TimeoutError(f"local generation exceeded {self.timeout_s} s")
        text = tokenizer.decode(new, skip_special_tokens=True)
        for marker in stop:  # stop strings are matched on tokens; cut the text like the other runtimes
            text = text.split(marker)[0]
        return text, prompt_tokens, int(len(new))
