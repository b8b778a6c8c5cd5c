"""The parameters of a fine-tuning run, with the two sets of defaults the project supports.

- ``gpu()``: QLoRA as in the course (4-bit NF4 with double quantisation, r 32, alpha 64,
  dropout 0.1 on q/k/v/o, lr 1e-4, cosine, 3% warmup, one epoch, 182 tokens, paged AdamW).
- ``cpu()``: plain LoRA in fp32 on SmolLM2-135M. Measured on the 2-core machine (batch 8 of
  182 tokens, q/k/v/o): ~5.7 s a step, so ~3,000 items train in about 40 minutes. A small model
  and few steps want a higher learning rate than the course's 1e-4.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

METHODS = ("lora", "qlora")
PRECISIONS = ("fp32", "bf16")
#: how often to log, evaluate and save: free to change when a run resumes
CADENCE = ("logging_steps", "eval_steps", "save_steps")
#: a prompt with comparables needs more room than the course's 182 tokens
RAG_MAX_LENGTH = 256


@dataclass(frozen=True)
class FinetuneConfig:
    base: str = "smollm2"
    #: ``qlora`` loads the base in 4-bit (bitsandbytes, CUDA only); ``lora`` trains on full weights
    method: str = "lora"
    #: ``bf16`` = autocast (weights stay fp32); on CPU it needs AVX512-BF16 to be any faster
    precision: str = "fp32"
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    learning_rate: float = 3e-4
    scheduler: str = "cosine"
    warmup_ratio: float = 0.03
    epochs: float = 1.0
    #: stop after this many optimiser steps (-1: run the epochs)
    max_steps: int = -1
    batch_size: int = 8
    grad_accum: int = 1
    #: prompt + completion, in tokens; the description is cut to fit, never the price
    max_length: int = 182
    #: comparables in the prompt (``strategies.finetune.prompt``): 0 is the course prompt, the description alone
    k: int = 0
    #: tokens of each comparable's text, and of the description, in a prompt with comparables
    comparable_tokens: int = 24
    query_tokens: int = 96
    optimizer: str = "adamw_torch"
    weight_decay: float = 0.0
    logging_steps: int = 10
    eval_steps: int = 100
    save_steps: int = 50
    seed: int = 42

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, not {self.method!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {self.precision!r}")
        if self.max_length < 32:
            raise ValueError("max_length must leave room for a description (>= 32 tokens)")
        if self.k < 0 or self.comparable_tokens < 1 or self.query_tokens < 1:
            raise ValueError("k must be >= 0, comparable_tokens and query_tokens positive")
        if self.batch_size < 1 or self.grad_accum < 1 or self.r < 1:
            raise ValueError("batch_size, grad_accum and r must be positive")

    @classmethod
    def cpu(cls, **changes: Any) -> FinetuneConfig:
        return replace(cls(), **changes)

    @classmethod
    def gpu(cls, **changes: Any) -> FinetuneConfig:
        course = cls(
            base="meta-llama/Llama-3.1-8B",
            method="qlora",
            precision="bf16",
            r=32,
            alpha=64,
            dropout=0.1,
            learning_rate=1e-4,
            batch_size=16,
            optimizer="paged_adamw_32bit",
            logging_steps=50,
            eval_steps=500,
            save_steps=500,
        )
        return replace(course, **changes)

    @classmethod
    def for_machine(cls, cuda: bool, **changes: Any) -> FinetuneConfig:
        """The GPU (QLoRA) defaults when CUDA is present, the CPU (LoRA) ones otherwise."""
        return cls.gpu(**changes) if cuda else cls.cpu(**changes)

    def lora_config(self) -> Any:
        """The peft ``LoraConfig`` of this run."""
        from peft import LoraConfig

        return LoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=list(self.target_modules),
            task_type="CAUSAL_LM",
        )

    def record(self) -> dict[str, Any]:
        data = asdict(self)
        data["target_modules"] = list(self.target_modules)
        return data

    def training_keys(self) -> dict[str, Any]:
        """What must not change between a run and its resumption (logging cadence may)."""
        return same_training(self.record())


def same_training(record: dict[str, Any]) -> dict[str, Any]:
    """The part of a recorded configuration that decides the trained weights. Fields added after
    a run was recorded take their defaults (the behaviour the run was trained with)."""
    defaults = FinetuneConfig().record()
    # runs recorded before the unused ``extra`` field went carry ``"extra": {}``: the same training
    record = {k: v for k, v in record.items() if not (k == "extra" and not v)}
    return {name: record.get(name, defaults[name]) for name in defaults if name not in CADENCE} | {
        k: v for k, v in record.items() if k not in CADENCE and k not in defaults
    }
