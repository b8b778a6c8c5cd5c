"""Fine-tuning on CPU with the packaged SmolLM2 (a few steps on short prompts) and the
``finetuned`` strategy: masking, loss, training, resumption, save/reload, pricing."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from typer.testing import CliRunner

from rag_pricer.api import Estimator
from rag_pricer.cli.app import app
from rag_pricer.items import Item
from rag_pricer.settings import Settings
from rag_pricer.strategies.finetune.base_model import load_tokenizer
from rag_pricer.strategies.finetune.price_model import PriceModel
from rag_pricer.strategies.finetune.prompt import IGNORE, PromptEncoder
from rag_pricer.training.finetune.batches import collate
from rag_pricer.training.finetune.config import FinetuneConfig
from rag_pricer.training.finetune.run import FinetuneRun, RunConflict, ids_hash
from rag_pricer.training.finetune.trainer import completion_loss

pytestmark = pytest.mark.slow  # loads and trains the real 135M model: ~2 minutes in all

MAX_LENGTH = 64  # short prompts keep CPU steps well under a second


@pytest.fixture(scope="session")
def encoder(checkpoint: str) -> PromptEncoder:
    return PromptEncoder(load_tokenizer(checkpoint), MAX_LENGTH)


def tiny_config(**changes: object) -> FinetuneConfig:
    settings = dict(
        max_steps=6,
        batch_size=2,
        learning_rate=2e-3,
        max_length=MAX_LENGTH,
        dropout=0.0,
        logging_steps=1,
        eval_steps=3,
        save_steps=3,
        r=8,
        alpha=16,
    )
    return FinetuneConfig.cpu(**(settings | changes))


@pytest.fixture(scope="module")
def tiny_run(
    tmp_path_factory: pytest.TempPathFactory, base_cache: Path, train_items: list[Item], dev_items: list[Item]
) -> Path:
    out = tmp_path_factory.mktemp("finetuned")
    FinetuneRun(tiny_config(), out, base_cache).train(train_items[:4], dev_items[:2], {"items": "train slice"})
    return out


def loss_on(model: torch.nn.Module, encoder: PromptEncoder, items: list[Item]) -> float:
    batch = collate([encoder.example(i) for i in items], encoder.tokenizer.pad_token_id)
    with torch.inference_mode():
        total, count = completion_loss(model, batch)
    return float(total / count)


# examples and loss -------------------------------------------------------------------------


def test_the_loss_is_on_the_price_completion_only(encoder: PromptEncoder, train_items: list[Item]) -> None:
    item = train_items[0]
    example = encoder.example(item)
    labelled = [t for t, label in zip(example["input_ids"], example["labels"]) if label != IGNORE]
    prompt = [t for t, label in zip(example["input_ids"], example["labels"]) if label == IGNORE]
    assert encoder.tokenizer.decode(labelled) == f"{round(item.price)}.00"
    assert encoder.tokenizer.decode(prompt).endswith("\n\nPrice is $")
    assert encoder.tokenizer.decode(prompt).startswith("How much does this cost to the nearest dollar?\n\n")
    assert [t for t, label in zip(example["input_ids"], example["labels"]) if label != IGNORE] == example["labels"][
        len(prompt) :
    ]


def test_long_descriptions_are_cut_never_the_question_or_the_price(encoder: PromptEncoder) -> None:
    item = Item(id="long", title="Drill " * 400, text="cordless " * 400, price=149.99)
    example = encoder.example(item)
    assert len(example["input_ids"]) <= MAX_LENGTH
    assert encoder.tokenizer.decode(example["input_ids"]).endswith("\n\nPrice is $150.00")
    assert encoder.prompt_ids(item.description) == example["input_ids"][: -len("150.00")]


def test_collate_left_pads_and_counts_positions_from_the_first_real_token() -> None:
    batch = collate(
        [{"input_ids": [5, 6, 7], "labels": [IGNORE, IGNORE, 7]}, {"input_ids": [8], "labels": [8]}], pad_id=0
    )
    assert batch["input_ids"].tolist() == [[5, 6, 7], [0, 0, 8]]
    assert batch["labels"].tolist() == [[IGNORE, IGNORE, 7], [IGNORE, IGNORE, 8]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]
    assert batch["position_ids"].tolist() == [[0, 1, 2], [0, 0, 0]]


def test_completion_loss_equals_the_full_logits_loss(
    checkpoint: str, encoder: PromptEncoder, train_items: list[Item]
) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).eval()
    batch = collate([encoder.example(i) for i in train_items[:3]], encoder.tokenizer.pad_token_id)
    with torch.inference_mode():
        total, count = completion_loss(model, batch)
        logits = model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], position_ids=batch["position_ids"]
        ).logits
    reference = F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), batch["labels"][:, 1:].reshape(-1), ignore_index=IGNORE
    )
    assert int(count) == sum(len(f"{round(i.price)}.00") for i in train_items[:3])  # SmolLM2: a token per character
    assert float(total / count) == pytest.approx(float(reference), rel=1e-4)


# training ----------------------------------------------------------------------------------


def test_a_tiny_run_lowers_the_loss_and_records_itself(
    tiny_run: Path, train_items: list[Item], base_cache: Path, encoder: PromptEncoder
) -> None:
    rows = list(csv.DictReader(open(tiny_run / "metrics.csv")))
    train = [r for r in rows if r["kind"] == "train"]
    assert [int(r["step"]) for r in train] == [1, 2, 3, 4, 5, 6]
    assert {"loss", "perplexity", "learning_rate", "tokens_per_s"} <= set(rows[0])
    assert float(train[-1]["loss"]) < float(train[0]["loss"])
    evals = [r for r in rows if r["kind"] == "eval"]
    assert [int(r["step"]) for r in evals] == [0, 3, 6]  # step 0: the base model before training
    assert float(evals[-1]["loss"]) < float(evals[0]["loss"])
    assert (tiny_run / "training.png").stat().st_size > 10_000

    # the saved adapter carries what was learnt: its loss on the training items is far below the base's
    base = PriceModel(tiny_run, base_cache, adapter=False).load()[0]
    tuned = PriceModel(tiny_run, base_cache, merge=False).load()[0]
    assert loss_on(tuned, encoder, train_items[:4]) < 0.7 * loss_on(base, encoder, train_items[:4])

    record = json.loads((tiny_run / "run.json").read_text())
    assert record["status"] == "finished" and record["final"]["steps"] == 6
    assert record["data"]["train_ids_sha256"] == ids_hash(train_items[:4]) and record["data"]["n_eval"] == 2
    assert record["base"]["spec"] == "smollm2" and len(record["base"]["sha256"]) == 64
    assert record["config"]["learning_rate"] == 2e-3 and record["versions"]["peft"]
    assert (tiny_run / "train_ids.txt").read_text().split() == [i.id for i in train_items[:4]]


def test_the_adapter_reloads_to_identical_outputs(tiny_run: Path, base_cache: Path, dev_items: list[Item]) -> None:
    final = load_file(tiny_run / "adapter" / "adapter_model.safetensors")
    last_checkpoint = load_file(tiny_run / "checkpoints" / "checkpoint-6" / "adapter_model.safetensors")
    assert final.keys() == last_checkpoint.keys() and all(torch.equal(final[k], last_checkpoint[k]) for k in final)
    assert any(float(v.abs().max()) > 0 for k, v in final.items() if "lora_B" in k)  # B starts at zero: it trained

    first = PriceModel(tiny_run, base_cache, merge=False).distribution(dev_items[0].description)
    again = PriceModel(tiny_run, base_cache, merge=False).distribution(dev_items[0].description)
    merged = PriceModel(tiny_run, base_cache, merge=True).distribution(dev_items[0].description)
    # two loads give the same outputs (to the last bits that multi-threaded sums may reorder)
    assert first.prices.tolist() == again.prices.tolist() and again.probs == pytest.approx(first.probs, abs=1e-12)
    assert first.greedy_text == again.greedy_text == merged.greedy_text
    assert merged.prices.tolist() == first.prices.tolist() and merged.probs == pytest.approx(first.probs, abs=1e-4)


def test_a_killed_run_resumes_from_its_last_checkpoint(
    tiny_run: Path, tmp_path: Path, base_cache: Path, train_items: list[Item], dev_items: list[Item]
) -> None:
    killed = tmp_path / "killed"
    shutil.copytree(tiny_run, killed)
    # as if killed between the checkpoint of step 3 and the end
    shutil.rmtree(killed / "adapter")
    shutil.rmtree(killed / "checkpoints" / "checkpoint-6")
    record = json.loads((killed / "run.json").read_text())
    (killed / "run.json").write_text(json.dumps(record | {"status": "running", "final": None}))

    resumed = FinetuneRun(tiny_config(), killed, base_cache).train(
        train_items[:4], dev_items[:2], {"items": "train slice"}
    )
    assert resumed["resumed_from_step"] == 3 and resumed["status"] == "finished" and len(resumed["resumed_at"]) == 1
    steps = [int(r["step"]) for r in csv.DictReader(open(killed / "metrics.csv")) if r["kind"] == "train"]
    assert steps == [1, 2, 3, 4, 5, 6]  # no step logged twice
    straight = load_file(tiny_run / "adapter" / "adapter_model.safetensors")
    again = load_file(killed / "adapter" / "adapter_model.safetensors")
    assert all(torch.allclose(straight[k], again[k], atol=1e-5) for k in straight)


def test_a_finished_run_is_not_retrained_and_another_is_refused(
    tiny_run: Path, base_cache: Path, train_items: list[Item], dev_items: list[Item]
) -> None:
    before = (tiny_run / "adapter" / "adapter_model.safetensors").stat().st_mtime_ns
    record = FinetuneRun(tiny_config(), tiny_run, base_cache).train(train_items[:4], dev_items[:2])
    assert (
        record["status"] == "finished"
        and (tiny_run / "adapter" / "adapter_model.safetensors").stat().st_mtime_ns == before
    )
    with pytest.raises(RunConflict, match="another run"):
        FinetuneRun(tiny_config(learning_rate=1e-3), tiny_run, base_cache).train(train_items[:4], dev_items[:2])
    with pytest.raises(RunConflict):
        FinetuneRun(tiny_config(), tiny_run, base_cache).train(train_items[1:5], dev_items[:2])


def test_configuration_is_validated_and_gpu_defaults_are_the_courses() -> None:
    gpu = FinetuneConfig.for_machine(cuda=True)
    assert (gpu.method, gpu.r, gpu.alpha, gpu.dropout, gpu.learning_rate, gpu.optimizer) == (
        "qlora",
        32,
        64,
        0.1,
        1e-4,
        "paged_adamw_32bit",
    )
    assert (
        gpu.target_modules == ("q_proj", "k_proj", "v_proj", "o_proj")
        and gpu.max_length == 182
        and gpu.warmup_ratio == 0.03
    )
    assert FinetuneConfig.for_machine(cuda=False).method == "lora"
    with pytest.raises(ValueError, match="method"):
        FinetuneConfig(method="full")
    with pytest.raises(ValueError, match="precision"):
        FinetuneConfig(precision="fp8")


def test_qlora_without_cuda_is_refused_clearly(tmp_path: Path, base_cache: Path, train_items: list[Item]) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the refusal concerns CPU-only machines")
    with pytest.raises(RuntimeError, match="QLoRA needs a CUDA GPU"):
        FinetuneRun(tiny_config(method="qlora"), tmp_path / "q", base_cache).train(train_items[:2])


# the strategy ------------------------------------------------------------------------------


@pytest.fixture()
def finetuned_settings(settings: Settings, tiny_run: Path, base_cache: Path) -> Settings:
    shutil.copytree(tiny_run, settings.models_dir / "finetuned")
    shutil.copytree(base_cache, settings.models_dir / "base", copy_function=os.link)  # read-only: links
    return settings


def test_the_finetuned_strategy_prices_with_its_evidence(finetuned_settings: Settings, dev_items: list[Item]) -> None:
    estimator = Estimator.from_settings(finetuned_settings)
    for decoding in ("expectation", "median", "greedy"):
        estimate = estimator.estimate(dev_items[1], strategy="finetuned", decoding=decoding)
        assert estimate.strategy == "finetuned" and estimate.price > 0 and estimate.comparables
        assert estimate.llm_answer and (estimate.llm_answer.endswith(".00") or estimate.llm_answer == "(no digits)")
        assert any(note.startswith(f"{decoding} decoding; most likely prices: $") for note in estimate.notes)
        if estimate.fallback is None:  # the model's own price, inside the plausible band
            low = min(c.price for c in estimate.comparables) / 3
            assert estimate.price >= low


def test_trained_items_are_refused_as_evaluation_items(
    finetuned_settings: Settings, train_items: list[Item], dev_items: list[Item]
) -> None:
    pricer = Estimator.from_settings(finetuned_settings).pricer("finetuned")
    trained = [i.id for i in train_items[:4]]
    assert set(trained) <= set(pricer.leaked_ids(trained + [dev_items[0].id]))
    assert dev_items[0].id not in pricer.leaked_ids([dev_items[0].id])


def test_an_untrained_model_is_a_clear_error(settings: Settings) -> None:
    result = CliRunner().invoke(
        app,
        ["estimate", "Cordless drill", "-s", "finetuned", "--store", str(settings.store_path)],
        env={"RAG_PRICER_MODELS_DIR": str(settings.models_dir)},
    )
    assert result.exit_code == 2 and "rag-pricer finetune" in result.output


def test_the_cli_trains_and_reports(tmp_path: Path, items_path: Path, base_cache: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(base_cache, models / "base", copy_function=os.link)  # the session's fp32 conversion, linked
    result = CliRunner().invoke(
        app,
        ["finetune", "--items", str(items_path), "--limit", "2", "--max-steps", "1", "--batch-size", "2", "--json"],
        env={"RAG_PRICER_MODELS_DIR": str(models)},
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["status"] == "finished" and record["data"]["n_train"] == 2 and record["config"]["method"] == "lora"
    assert (models / "finetuned" / "adapter" / "adapter_config.json").is_file()
    refused = CliRunner().invoke(
        app, ["finetune", "--items", str(items_path), "--split", "nope"], env={"RAG_PRICER_MODELS_DIR": str(models)}
    )
    assert refused.exit_code == 2 and "no items of split 'nope'" in refused.output
