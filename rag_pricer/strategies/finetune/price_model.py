"""A fine-tuned run at inference: base + adapter loaded once, price distributions per description."""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag_pricer.strategies.finetune.base_model import BaseCheckpoint, load_tokenizer
from rag_pricer.strategies.finetune.decoding import PriceDecoder, PriceDistribution
from rag_pricer.strategies.finetune.prompt import ComparableLike, PromptEncoder, prompt_encoder
from rag_pricer.strategies.finetune.run_folder import ADAPTER_DIR, IDS_FILE, read_run

#: distributions kept: pricers that differ only in decoding (evaluated one after the other on the
#: same items) share one model pass per description
RECENT = 4096


class PriceModel:
    """Reads a run folder of ``rag-pricer finetune``; the model loads on first use, once.

    ``adapter=False`` runs the base model alone through the same prompt and decoder: the
    ablation that shows what fine-tuning added. The adapter is merged into the weights for
    speed (outputs equal the unmerged model's to float rounding)."""

    def __init__(self, run_dir: Path, cache_dir: Path, adapter: bool = True, merge: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.record = read_run(self.run_dir)
        if self.record.get("status") != "finished" or not (self.run_dir / ADAPTER_DIR).is_dir():
            raise FileNotFoundError(
                f"the fine-tuning run in {run_dir} has not finished; re-run `rag-pricer finetune` to resume it"
            )
        self.cache_dir = Path(cache_dir)
        self.adapter = adapter
        self.merge = merge
        self._lock = threading.Lock()
        self._loaded: tuple[Any, PromptEncoder, PriceDecoder] | None = None
        self._recent: OrderedDict[str, PriceDistribution] = OrderedDict()

    def trained_ids(self) -> set[str]:
        """The items the adapter learnt from (none when the base model runs alone)."""
        path = self.run_dir / IDS_FILE
        return set(path.read_text().split()) if self.adapter and path.is_file() else set()

    def load(self) -> tuple[Any, PromptEncoder, PriceDecoder]:
        with self._lock:
            if self._loaded is None:
                self._loaded = self._build()
            return self._loaded

    def _build(self) -> tuple[Any, PromptEncoder, PriceDecoder]:
        import torch
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        recorded = self.record["base"]
        base = BaseCheckpoint.resolve(recorded["spec"])
        if recorded.get("sha256") and base.sha256 != recorded["sha256"]:
            raise ValueError(
                f"base model {recorded['spec']} on this machine differs from the one the adapter was trained on"
            )
        checkpoint = base.checkpoint(self.cache_dir)
        model: torch.nn.Module = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32)
        if self.adapter:
            tuned = PeftModel.from_pretrained(model, str(self.run_dir / ADAPTER_DIR))
            model = tuned.merge_and_unload() if self.merge else tuned
        model.eval()
        tokenizer = load_tokenizer(checkpoint)
        encoder = prompt_encoder(tokenizer, self.record["config"])
        return model, encoder, PriceDecoder.for_tokenizer(tokenizer)

    @property
    def k(self) -> int:
        """Comparables the model was trained to read (0: the description alone)."""
        return int(self.record["config"].get("k", 0) or 0)

    def distribution(self, description: str, comparables: Sequence[ComparableLike] = ()) -> PriceDistribution:
        """The model's distribution over whole-dollar prices for ``description`` (and, for a run
        trained with comparables, ``comparables``, most similar first: the prompt it was trained on).

        The prompt is read once and its key/value cache reused for every digit prefix: a price
        costs one prompt pass and one short pass per digit level."""
        import torch

        model, encoder, decoder = self.load()
        prompt = encoder.prompt_ids(description, comparables)
        key = ",".join(map(str, prompt))
        with self._lock, torch.inference_mode():
            if key in self._recent:
                return self._recent[key]
            first = model(input_ids=torch.tensor([prompt]), use_cache=True)
            cache = first.past_key_values

            def step(prefixes: Sequence[Sequence[int]]) -> np.ndarray:
                if len(prefixes) == 1 and not prefixes[0]:
                    return first.logits[:, -1].float().numpy()
                batch = copy.deepcopy(cache)
                batch.batch_repeat_interleave(len(prefixes))
                out = model(input_ids=torch.tensor([list(p) for p in prefixes]), past_key_values=batch, use_cache=True)
                return out.logits[:, -1].float().numpy()

            found = self._recent[key] = decoder.decode(step)
            if len(self._recent) > RECENT:
                self._recent.popitem(last=False)
            return found
