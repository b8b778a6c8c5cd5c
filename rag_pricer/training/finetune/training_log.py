"""Model-centric metrics while training: one CSV row per log or evaluation, and their chart.

Rows: ``kind`` is ``train`` (loss averaged since the previous row) or ``eval`` (loss on the
evaluation items); perplexity is ``exp(loss)`` of the completion tokens; ``tokens_per_s`` counts
the non-padding input tokens trained since the previous train row.
"""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

FIELDS = ("step", "epoch", "kind", "loss", "perplexity", "learning_rate", "grad_norm", "tokens_per_s", "elapsed_s")


def perplexity(loss: float) -> float:
    return math.exp(loss) if loss < 50 else float("inf")


def read_log(path: Path) -> list[dict[str, Any]]:
    if not Path(path).is_file():
        return []
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [{k: _parse(k, v) for k, v in row.items()} for row in rows]


def _parse(key: str, value: str | None) -> Any:
    if key == "kind" or value in ("", None):
        return value or None
    return int(float(value)) if key == "step" else float(value)


class TrainingLog(TrainerCallback):
    """Appends the Trainer's logs to ``path``. A resumed run first drops the rows after the
    checkpoint it resumes from, so that a killed and resumed run has one row per step."""

    def __init__(self, path: Path, resume_step: int = 0) -> None:
        self.path = Path(path)
        rows = [r for r in read_log(self.path) if resume_step and r["step"] is not None and r["step"] <= resume_step]
        with open(self.path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, FIELDS)
            writer.writeheader()
            writer.writerows({k: _cell(r.get(k)) for k in FIELDS} for r in rows)
        self._elapsed_before = rows[-1]["elapsed_s"] if rows else 0.0
        self._started = time.monotonic()
        self._last_time = self._started
        self._last_tokens: int | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._last_time = time.monotonic()
        self._last_tokens = int(getattr(state, "num_input_tokens_seen", 0) or 0)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        logs = logs or {}
        now = time.monotonic()
        row: dict[str, Any] = {
            "step": state.global_step,
            "epoch": round(state.epoch or 0.0, 4),
            "elapsed_s": round(self._elapsed_before + now - self._started, 1),
        }
        if "eval_loss" in logs:
            row |= {"kind": "eval", "loss": logs["eval_loss"], "perplexity": perplexity(logs["eval_loss"])}
        elif "loss" in logs:
            tokens = int(getattr(state, "num_input_tokens_seen", 0) or 0)
            rate = (tokens - (self._last_tokens or 0)) / max(now - self._last_time, 1e-9) if tokens else None
            self._last_time, self._last_tokens = now, tokens
            row |= {
                "kind": "train",
                "loss": logs["loss"],
                "perplexity": perplexity(logs["loss"]),
                "learning_rate": logs.get("learning_rate"),
                "grad_norm": logs.get("grad_norm"),
                "tokens_per_s": rate,
            }
        else:
            return  # the end-of-training summary: its figures are in run.json
        with open(self.path, "a", newline="") as handle:
            csv.DictWriter(handle, FIELDS).writerow({k: _cell(row.get(k)) for k in FIELDS})


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    return round(value, 6) if isinstance(value, float) else value


def plot_log(csv_path: Path, png_path: Path, title: str = "fine-tuning") -> Path:
    """Loss, perplexity and learning rate by step, train and eval, in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_log(csv_path)
    train = [r for r in rows if r["kind"] == "train"]
    evals = [r for r in rows if r["kind"] == "eval"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, key, label in ((axes[0], "loss", "loss (completion tokens)"), (axes[1], "perplexity", "perplexity")):
        ax.plot([r["step"] for r in train], [r[key] for r in train], label="train", color="tab:blue")
        if evals:
            ax.plot([r["step"] for r in evals], [r[key] for r in evals], "o-", label="eval", color="tab:orange")
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    axes[1].set_yscale("log")
    axes[2].plot([r["step"] for r in train], [r["learning_rate"] for r in train], color="tab:green")
    axes[2].set_xlabel("step")
    axes[2].set_ylabel("learning rate")
    axes[2].grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return Path(png_path)
