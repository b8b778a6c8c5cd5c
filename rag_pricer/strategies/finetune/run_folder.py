"""What the strategies read of a fine-tuning run folder (``training.finetune.run`` writes it).

Layout of a run folder::

    run.json        configuration, base model (spec, file hash), data (path, split, ids hash),
                    versions, machine, status and final metrics
    train_ids.txt   the trained item ids, in order (the strategy refuses to score them)
    metrics.csv     loss, perplexity, learning rate, tokens/s (``training.finetune.training_log``)
    training.png    their chart
    checkpoints/    Trainer checkpoints (adapter, optimiser, scheduler, RNG): a killed run resumes
    adapter/        the final LoRA adapter and tokenizer
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

RUN_FILE = "run.json"
ADAPTER_DIR = "adapter"
IDS_FILE = "train_ids.txt"
LOG_FILE = "metrics.csv"
CHART_FILE = "training.png"
#: where `rag-pricer finetune` saves a run under ``models_dir`` and where the strategies look for it
RUN_DIRS = {False: "finetuned", True: "rag-finetuned"}


def default_run_dir(models_dir: str | Path, with_comparables: bool) -> Path:
    """The run folder of ``finetuned`` (course prompt) or ``rag-finetuned`` (prompt with comparables)."""
    return Path(models_dir) / RUN_DIRS[with_comparables]


def read_run(folder: Path) -> dict[str, Any]:
    path = Path(folder) / RUN_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no fine-tuning run in {folder} (no {RUN_FILE}); train one with `rag-pricer finetune`")
    return json.loads(path.read_text())


def run_fingerprint(folder: Path) -> str:
    """Changes whenever the run in ``folder`` is retrained (its record holds times and hashes)."""
    path = Path(folder) / RUN_FILE
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else "absent"
