"""One fine-tuning run: base model + LoRA adapter trained on items, resumable, recorded.

The run folder's layout is ``strategies.finetune.run_folder``'s (the strategies read it). Re-running
with the same configuration and data resumes from the last checkpoint (or does nothing if the run
finished); anything else is refused unless ``overwrite``.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from rag_pricer.atomic_files import write_text_atomic
from rag_pricer.items import Item
from rag_pricer.knowledge.store import Neighbour
from rag_pricer.strategies.finetune.base_model import BaseCheckpoint, load_tokenizer
from rag_pricer.strategies.finetune.run_folder import ADAPTER_DIR, CHART_FILE, IDS_FILE, LOG_FILE, RUN_FILE, read_run
from rag_pricer.training.finetune.comparables import comparables_hash
from rag_pricer.training.finetune.config import FinetuneConfig, same_training


class RunConflict(RuntimeError):
    """The output folder holds a different run."""


def ids_hash(items: Sequence[Item]) -> str:
    return hashlib.sha256("\n".join(i.id for i in items).encode()).hexdigest()


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for package in ("rag-pricer", "torch", "transformers", "peft", "accelerate", "bitsandbytes", "gguf"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def load_model(checkpoint: str, config: FinetuneConfig, cuda: bool) -> Any:
    """The base model ready for LoRA: fp32 on CPU, 4-bit NF4 (double quantisation) for QLoRA."""
    import torch
    from transformers import AutoModelForCausalLM

    if config.method == "qlora":
        if not cuda:
            raise RuntimeError(
                "QLoRA needs a CUDA GPU (bitsandbytes 4-bit is ~2x slower than fp32 on CPU): use method lora"
            )
        from peft import prepare_model_for_kbit_training
        from transformers import BitsAndBytesConfig

        quantisation = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_use_double_quant=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
        model = AutoModelForCausalLM.from_pretrained(checkpoint, quantization_config=quantisation, device_map="auto")
        return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32)
    # transformers wraps PreTrainedModel.to in functools.wraps, whose stub does not bind self
    return model.to("cuda") if cuda else model  # type: ignore[arg-type]


@dataclass
class FinetuneRun:
    config: FinetuneConfig
    out: Path
    #: where a GGUF base's fp32 conversion is cached
    cache_dir: Path
    overwrite: bool = False

    def train(
        self,
        train: Sequence[Item],
        evaluation: Sequence[Item] = (),
        data: dict[str, Any] | None = None,
        comparables: Mapping[str, Sequence[Neighbour]] | None = None,
    ) -> dict[str, Any]:
        """Train (or resume) and return the run record (also written to ``run.json``).

        With ``config.k`` > 0 every item (trained or evaluated) needs its ``comparables``
        (``training.finetune.comparables.ComparablesCache``: retrieved as at inference, never itself)."""
        import torch

        if not train:
            raise ValueError("no training items")
        data = dict(data or {})
        if self.config.k:
            missing = [i.id for i in [*train, *evaluation] if comparables is None or i.id not in comparables]
            if missing:
                raise ValueError(
                    f"k={self.config.k} needs the comparables of every item; {len(missing)} have none (e.g. "
                    f"{missing[0]})"
                )
            assert comparables is not None  # every item was checked just above
            data["comparables_sha256"] = comparables_hash(
                {i.id: list(comparables[i.id]) for i in [*train, *evaluation]}
            )
        cuda = torch.cuda.is_available()
        base = BaseCheckpoint.resolve(self.config.base)
        record = self._start(base, train, evaluation, data, cuda)
        if record.get("status") == "finished":
            return record
        return self._fit(record, base, train, evaluation, cuda, comparables or {})

    # ---------------------------------------------------------------------------------------

    def _start(
        self, base: BaseCheckpoint, train: Sequence[Item], evaluation: Sequence[Item], data: dict[str, Any], cuda: bool
    ) -> dict[str, Any]:
        data = {
            **data,
            "n_train": len(train),
            "train_ids_sha256": ids_hash(train),
            "n_eval": len(evaluation),
            "eval_ids_sha256": ids_hash(evaluation) if evaluation else None,
        }
        fresh = {
            "config": self.config.record(),
            "base": base.record(),
            "data": data,
            "versions": versions(),
            "machine": {"cuda": cuda, "platform": platform.platform()},
            "status": "running",
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "resumed_at": [],
        }
        self.out.mkdir(parents=True, exist_ok=True)
        previous = self._previous()
        if previous is not None and not self.overwrite:
            same = (
                same_training(previous["config"]) == self.config.training_keys()
                and previous["base"].get("sha256") == base.sha256
                and previous["base"]["source"] == base.source
                and previous["data"]["train_ids_sha256"] == data["train_ids_sha256"]
                and previous["data"].get("eval_ids_sha256") == data["eval_ids_sha256"]
                and previous["data"].get("comparables_sha256") == data.get("comparables_sha256")
            )
            if not same:
                raise RunConflict(
                    f"{self.out} holds another run (configuration, base or data differ): choose another --out or "
                    "--overwrite"
                )
            if previous.get("status") == "finished":
                return previous
            previous["resumed_at"].append(time.strftime("%Y-%m-%dT%H:%M:%S%z"))
            self._write(previous)
            return previous
        if previous is not None:
            for name in (RUN_FILE, IDS_FILE, LOG_FILE, CHART_FILE):
                (self.out / name).unlink(missing_ok=True)
            for name in ("checkpoints", ADAPTER_DIR):
                shutil.rmtree(self.out / name, ignore_errors=True)
        (self.out / IDS_FILE).write_text("".join(f"{i.id}\n" for i in train))
        self._write(fresh)
        return fresh

    def _fit(
        self,
        record: dict[str, Any],
        base: BaseCheckpoint,
        train: Sequence[Item],
        evaluation: Sequence[Item],
        cuda: bool,
        comparables: Mapping[str, Sequence[Neighbour]],
    ) -> dict[str, Any]:
        from peft import get_peft_model
        from transformers import TrainingArguments
        from transformers.trainer_utils import get_last_checkpoint

        from rag_pricer.strategies.finetune.prompt import prompt_encoder
        from rag_pricer.training.finetune.batches import collate
        from rag_pricer.training.finetune.trainer import CompletionTrainer
        from rag_pricer.training.finetune.training_log import TrainingLog, plot_log

        config = self.config
        checkpoint = base.checkpoint(self.cache_dir)
        tokenizer = load_tokenizer(checkpoint)
        encoder = prompt_encoder(tokenizer, config.record())
        model = get_peft_model(load_model(checkpoint, config, cuda), config.lora_config())
        folder = self.out / "checkpoints"
        last = get_last_checkpoint(str(folder)) if folder.is_dir() else None
        resume_step = int(Path(last).name.split("-")[-1]) if last else 0
        args = TrainingArguments(
            output_dir=str(folder),
            per_device_train_batch_size=config.batch_size,
            per_device_eval_batch_size=config.batch_size,
            gradient_accumulation_steps=config.grad_accum,
            learning_rate=config.learning_rate,
            lr_scheduler_type=config.scheduler,
            warmup_steps=config.warmup_ratio,
            num_train_epochs=config.epochs,
            max_steps=config.max_steps,
            weight_decay=config.weight_decay,
            optim=config.optimizer,
            bf16=config.precision == "bf16",
            use_cpu=not cuda,
            seed=config.seed,
            logging_steps=config.logging_steps,
            logging_first_step=True,
            save_steps=config.save_steps,
            save_total_limit=2,
            eval_strategy="steps" if evaluation else "no",
            eval_steps=config.eval_steps,
            prediction_loss_only=True,
            eval_on_start=bool(evaluation) and not last,  # step 0: the base model's loss, the yardstick
            include_num_input_tokens_seen="non_padding",
            label_names=["labels"],
            remove_unused_columns=False,
            report_to="none",
            dataloader_num_workers=0,
        )
        trainer = CompletionTrainer(
            model=model,
            args=args,
            data_collator=lambda batch: collate(batch, tokenizer.pad_token_id),
            train_dataset=[encoder.example(i, comparables.get(i.id, ())) for i in train],
            eval_dataset=[encoder.example(i, comparables.get(i.id, ())) for i in evaluation] or None,
            callbacks=[TrainingLog(self.out / LOG_FILE, resume_step)],
        )
        started = time.monotonic()
        result = trainer.train(resume_from_checkpoint=last)
        final: dict[str, Any] = {
            "train_loss": result.training_loss,
            "steps": result.global_step,
            "train_seconds_this_session": round(time.monotonic() - started, 1),
        }
        if evaluation:
            # the last step's evaluation when the Trainer just ran one, else one now
            logged = [e for e in trainer.state.log_history if "eval_loss" in e and e.get("step") == result.global_step]
            final["eval_loss"] = logged[-1]["eval_loss"] if logged else trainer.evaluate()["eval_loss"]
            final["eval_perplexity"] = math.exp(final["eval_loss"])
        model.save_pretrained(self.out / ADAPTER_DIR)
        tokenizer.save_pretrained(self.out / ADAPTER_DIR)
        title = f"LoRA on {base.spec}: {len(train):,} items" + (f", {config.k} comparables" if config.k else "")
        plot_log(self.out / LOG_FILE, self.out / CHART_FILE, title=title)
        record |= {
            "status": "finished",
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "final": final,
            "base_checkpoint": checkpoint,
            "resumed_from_step": resume_step or None,
        }
        self._write(record)
        return record

    def _previous(self) -> dict[str, Any] | None:
        try:
            return read_run(self.out)
        except FileNotFoundError:
            return None

    def _write(self, record: dict[str, Any]) -> None:
        write_text_atomic(self.out / RUN_FILE, json.dumps(record, indent=1) + "\n")
