"""Counts tokens and truncates text to a token budget with a real (fast) Hugging Face tokenizer."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

from rag_pricer.knowledge.embeddings import resolve_model

DEFAULT_TOKENIZER = "all-MiniLM-L6-v2"
DEFAULT_MAX_TOKENS = 160  # the course's budget: room for the question and the price in a prompt


class TokenBudget:
    """Truncates text to at most ``max_tokens`` tokens of ``tokenizer``, cutting between words.

    ``tokenizer`` is a model name or folder; ``all-MiniLM-L6-v2`` (the embedding model) resolves
    to the packaged copy, so nothing is downloaded. Counts exclude special tokens ([CLS], [SEP]).
    The truncated text is a prefix of the original (no decode round trip, which would
    lower-case and re-space text for uncased tokenizers).
    """

    def __init__(self, tokenizer: str = DEFAULT_TOKENIZER, max_tokens: int = DEFAULT_MAX_TOKENS) -> None:
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
        self.tokenizer_name = tokenizer
        self.max_tokens = max_tokens

    @cached_property
    def tokenizer(self):  # -> PreTrainedTokenizerFast; transformers imported lazily (slow import)
        from transformers import AutoTokenizer

        path = resolve_model(self.tokenizer_name)
        local = Path(path).exists()
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local)
        if not tokenizer.is_fast:
            raise ValueError(f"tokenizer {self.tokenizer_name!r} has no fast version: offsets are needed to truncate")
        return tokenizer

    def count(self, text: str) -> int:
        return len(self._encode(text)["input_ids"])

    def counts(self, texts: Sequence[str]) -> list[int]:
        """Token counts of many texts in one batched call (the fast tokenizer runs it in Rust)."""
        counts: list[int] = []
        for start in range(0, len(texts), 2048):  # chunks bound the memory of the encodings
            chunk = list(texts[start : start + 2048])
            encoded = self.tokenizer(chunk, add_special_tokens=False, return_attention_mask=False, verbose=False)
            counts.extend(len(ids) for ids in encoded["input_ids"])
        return counts

    def truncate(self, text: str) -> str:
        """The longest prefix of ``text`` that ends between words and fits the budget."""
        encoding = self._encode(text)
        limit = self.max_tokens
        while len(encoding["input_ids"]) > self.max_tokens:
            if limit == 0:
                return ""
            text = text[: self._cut(encoding, limit)].rstrip()
            encoding = self._encode(text)
            limit -= 1  # only for tokenizers whose prefix re-tokenises longer: shrink and retry
        return text

    @staticmethod
    def _cut(encoding, limit: int) -> int:
        """Character offset where the first token beyond ``limit`` starts, moved back to its word start."""
        offsets, words = encoding["offset_mapping"], encoding.word_ids()
        first_out = limit
        while first_out > 0 and words[first_out] is not None and words[first_out] == words[first_out - 1]:
            first_out -= 1
        if first_out == 0:  # a single word longer than the budget: cut inside it
            return offsets[limit - 1][1]
        return offsets[first_out][0]

    def _encode(self, text: str):
        return self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
