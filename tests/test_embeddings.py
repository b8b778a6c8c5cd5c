"""Embedding backends: the ONNX exports agree with torch fp32 on real descriptions, and the
exported files are built once and reused from the cache."""

from __future__ import annotations

import io
import json
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest

from rag_pricer.items import Item
from rag_pricer.knowledge.embeddings import Embedder, resolve_model
from rag_pricer.knowledge.onnx_embedder import OnnxEmbedder

MODEL = resolve_model("all-MiniLM-L6-v2")

#: these tests measure the embedder itself: every call runs the model (conftest's cache is off)
pytestmark = pytest.mark.real_embeddings


@pytest.fixture(scope="module")
def texts(train_items: list[Item]) -> list[str]:
    """20 real descriptions of mixed lengths, one longer than the model's 256 tokens (truncated)."""
    chosen = [item.description for item in train_items[:19]]
    return chosen + [" ".join(chosen[:6])]


@pytest.fixture(scope="module")
def reference(texts: list[str]) -> np.ndarray:
    """torch fp32 (sentence-transformers): the vectors every backend is measured against."""
    return Embedder(backend="torch").encode(texts)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A fresh cache with the fp32 export built in it (once for the module), and what the
    export printed."""
    cache = tmp_path_factory.mktemp("onnx-cache")
    printed = io.StringIO()
    with redirect_stdout(printed), redirect_stderr(printed):
        OnnxEmbedder(MODEL, quantize=False, optimize=False, cache_dir=cache).build()
    return cache, printed.getvalue()


@pytest.fixture(scope="module")
def cache_dir(exported: tuple[Path, str]) -> Path:
    return exported[0]


@pytest.fixture(scope="module")
def fp32(cache_dir: Path) -> Embedder:
    return Embedder(backend="onnx", cache_dir=cache_dir, batch_size=8)


@pytest.fixture(scope="module")
def int8(cache_dir: Path) -> Embedder:
    return Embedder(backend="onnx-int8", cache_dir=cache_dir, batch_size=8)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1)


def test_onnx_fp32_reproduces_torch(fp32: Embedder, texts: list[str], reference: np.ndarray) -> None:
    vectors = fp32.encode(texts)
    # same weights and ops in fp32: only the summation order differs (measured min 0.9999998)
    assert cosines(vectors, reference).min() > 0.9999


def test_the_default_embedder_is_onnx_and_makes_torchs_vectors(
    embedder: Embedder, texts: list[str], reference: np.ndarray
) -> None:
    assert embedder.backend == "onnx" and embedder.vectors == "fp32"
    assert cosines(embedder.encode(texts), reference).min() > 0.9999
    assert embedder.model.onnx_path.name == "model-fp32.onnx"  # the fusions cost the same CPU here: opt-in
    assert Embedder(threads=1).model.threads == 1  # passed on to onnxruntime


def test_a_model_onnx_cannot_run_says_how_to_use_torch() -> None:
    with pytest.raises(ValueError, match="RAG_PRICER_EMBEDDING_BACKEND=torch"):
        Embedder("someone/not-a-local-folder").encode(["a text"])


def test_onnx_int8_agrees_with_torch(int8: Embedder, texts: list[str], reference: np.ndarray) -> None:
    vectors = int8.encode(texts)
    assert vectors.shape == (len(texts), 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    agreement = cosines(vectors, reference)
    # measured on 303 descriptions: 0.9967 mean, 0.987 min; per-tensor int8 gave 0.94 / 0.75
    assert agreement.mean() >= 0.99 and agreement.min() >= 0.98
    # and it really is the quantised model, not the fp32 one
    assert agreement.min() < 0.9999
    assert int8.model.onnx_path.stat().st_size < 0.4 * (int8.model.model_dir / "model-fp32.onnx").stat().st_size


def test_rows_follow_input_order_across_batches(fp32: Embedder, texts: list[str]) -> None:
    forward = fp32.encode(texts)
    # batch_size 8: three batches sorted by length, and a one-text call with no padding at all
    np.testing.assert_allclose(fp32.encode(texts[::-1]), forward[::-1], atol=1e-5)
    np.testing.assert_allclose(fp32.encode_one(texts[7]), forward[7], atol=1e-5)


def test_int8_single_texts_agree_with_batches(int8: Embedder, texts: list[str], reference: np.ndarray) -> None:
    batched = int8.encode(texts)
    single = np.stack([int8.encode_one(text) for text in texts[:6]])
    # dynamic quantisation scales activations per batch, so a text's int8 vector depends a little
    # on its batch mates (measured 0.996 mean between the two); one-text queries stay as close
    # to torch fp32 as batched ones (0.997)
    assert cosines(single, batched[:6]).min() >= 0.98
    assert cosines(single, reference[:6]).min() >= 0.98


def test_one_instance_serves_concurrent_calls(int8: Embedder, cache_dir: Path, texts: list[str]) -> None:
    int8.encode(texts[:1])  # the file is built; a fresh instance then loads it from several threads at once
    shared = OnnxEmbedder(MODEL, quantize=True, cache_dir=cache_dir)
    with ThreadPoolExecutor(4) as pool:
        rows = list(pool.map(lambda text: shared.encode([text])[0], texts[:8]))
    expected = np.stack([int8.encode_one(text) for text in texts[:8]])
    np.testing.assert_allclose(np.stack(rows), expected, atol=1e-5)


def test_empty_input_and_bad_input(int8: Embedder) -> None:
    empty = int8.encode([])
    assert empty.shape == (0, 384) and empty.dtype == np.float32
    with pytest.raises(TypeError, match="sequence of texts"):
        int8.model.encode("one string")


def test_built_once_then_reused_from_the_cache(int8: Embedder, cache_dir: Path, texts: list[str]) -> None:
    int8.encode(texts[:1])
    path = int8.model.onnx_path
    built_at = path.stat().st_mtime_ns
    again = OnnxEmbedder(MODEL, quantize=True, cache_dir=cache_dir)
    again.encode(texts[:2])
    assert again.onnx_path == path and not again.built_
    assert path.stat().st_mtime_ns == built_at
    assert not [p.name for p in path.parent.iterdir() if p.suffix != ".onnx"]  # no temp files left


@pytest.fixture(scope="module")
def fused(cache_dir: Path) -> OnnxEmbedder:
    return OnnxEmbedder(MODEL, quantize=False, optimize=True, cache_dir=cache_dir, batch_size=8)


def test_the_fused_model_makes_the_plain_exports_vectors(fused: OnnxEmbedder, fp32: Embedder, texts: list[str]) -> None:
    import onnx

    plain = fp32.model
    # fused attention, LayerNorm and GELU: the same weights and maths in fewer, larger ops
    assert cosines(fused.encode(texts), plain.encode(texts)).min() >= 0.9999
    ops = {node.op_type for node in onnx.load(str(fused.onnx_path), load_external_data=False).graph.node}
    assert {"Attention", "SkipLayerNormalization", "BiasGelu"} <= ops
    assert fused.onnx_path != plain.onnx_path and fused.onnx_path.parent == plain.onnx_path.parent


def test_the_fused_model_is_built_once_then_reused(fused: OnnxEmbedder, cache_dir: Path, texts: list[str]) -> None:
    fused.encode(texts[:1])
    path = fused.onnx_path
    built_at = path.stat().st_mtime_ns
    again = OnnxEmbedder(MODEL, quantize=False, optimize=True, cache_dir=cache_dir)
    np.testing.assert_allclose(again.encode(texts[:2]), fused.encode(texts[:2]), atol=1e-6)
    assert again.onnx_path == path and not again.built_ and path.stat().st_mtime_ns == built_at
    # int8 quantises the plain export, not the fused one: its vectors stay what stores recorded
    assert OnnxEmbedder(MODEL, quantize=True, optimize=True, cache_dir=cache_dir).onnx_path.name == "model-int8.onnx"


def test_a_fused_model_that_moves_the_vectors_is_not_used(
    cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnxruntime.transformers.optimizer as optimizer

    fresh = OnnxEmbedder(MODEL, quantize=False, optimize=True, cache_dir=tmp_path)
    fresh.model_dir.mkdir(parents=True)
    plain = fresh.model_dir / "model-fp32.onnx"
    os.link(cache_dir / fresh.model_dir.name / "model-fp32.onnx", plain)

    class Broken:  # stands for a fusion that matched a pattern it should not have
        def save_model_to_file(self, path: str) -> None:
            (Path(path)).write_bytes(b"broken")

    monkeypatch.setattr(optimizer, "optimize_model", lambda *args, **kwargs: Broken())
    monkeypatch.setattr(OnnxEmbedder, "_agreement", lambda self, plain, fused: 0.97)
    with pytest.warns(UserWarning, match="gives other vectors"):
        path = fresh.build()
    assert path.read_bytes() == plain.read_bytes()  # the plain graph runs under the fused name


def test_a_missing_file_is_rebuilt(int8: Embedder, tmp_path: Path, texts: list[str]) -> None:
    fresh = OnnxEmbedder(MODEL, quantize=True, cache_dir=tmp_path)
    fresh.model_dir.mkdir(parents=True)
    # give the new cache the fp32 export only (a hard link: no copy), so just the int8 is missing
    exported = int8.model.model_dir / "model-fp32.onnx"
    os.link(exported, fresh.model_dir / "model-fp32.onnx")
    vectors = fresh.encode(texts[:3])
    assert fresh.built_ and fresh.onnx_path.is_file()
    assert (fresh.model_dir / "model-fp32.onnx").stat().st_mtime_ns == exported.stat().st_mtime_ns  # not re-exported
    np.testing.assert_allclose(vectors, int8.encode(texts[:3]), atol=1e-6)


def test_cache_is_keyed_by_the_model_folder(tmp_path: Path) -> None:
    copy = tmp_path / "copy-of-minilm"
    copy.mkdir()
    for item in Path(MODEL).iterdir():
        (copy / item.name).symlink_to(item)
    original = OnnxEmbedder(MODEL, cache_dir=tmp_path / "cache")
    assert OnnxEmbedder(copy, cache_dir=tmp_path / "cache").model_dir != original.model_dir
    assert original.model_dir.parent == tmp_path / "cache" and original.model_dir.name.startswith(Path(MODEL).name)


def test_unsupported_setups_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown embedding backend"):
        Embedder(backend="tensorrt")
    with pytest.raises(ValueError, match="CPU only"):
        Embedder(backend="onnx-int8", device="cuda")
    with pytest.raises(ValueError, match="local sentence-transformers model folder"):
        OnnxEmbedder(tmp_path / "nowhere")
    (tmp_path / "config.json").write_text("{}")
    pooling = {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}
    (tmp_path / "modules.json").write_text(json.dumps([pooling]))
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 8, "pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False})
    )
    with pytest.raises(ValueError, match="mean pooling only"):
        OnnxEmbedder(tmp_path)


def test_exporting_draws_no_loading_bar_into_the_log(exported: tuple[Path, str]) -> None:
    """The main job's log shows the indexer's lines, not transformers' "Loading weights" bar."""
    cache, printed = exported  # the module's export, into an empty cache
    assert list(cache.glob("*/model-fp32.onnx")) and "Loading weights" not in printed


class RecordingSession:
    """An onnxruntime session that records the shape of every batch it runs."""

    def __init__(self, session: object) -> None:
        self.session = session
        self.shapes: list[tuple[int, ...]] = []

    def get_inputs(self) -> list:
        return self.session.get_inputs()  # type: ignore[attr-defined]

    def run(self, outputs: object, feeds: dict[str, np.ndarray]) -> list:
        self.shapes.append(feeds["input_ids"].shape)
        return self.session.run(outputs, feeds)  # type: ignore[attr-defined]


def test_batches_are_cut_by_token_count_and_padded_to_their_longest(embedder: Embedder) -> None:
    """Characters are a poor proxy for tokens: sorted by characters, a 2-text batch pairs the
    long-worded text with the many-token one and pads both to the longer (the old behaviour)."""
    texts = [
        "internationalization internationalization internationalization",  # most characters, few tokens
        "1 2 3 4 5 6 7 8 9 10 11 12 13 14",  # fewer characters, the most tokens
        "1 2 3 4 5 6 7 8 9 10 11",
        "x",
    ]
    counts = [len(embedder.model.tokenizer(text)["input_ids"]) for text in texts]
    onnx = OnnxEmbedder(MODEL, quantize=False, batch_size=2)
    recorder = RecordingSession(onnx.session)
    onnx.__dict__["session"] = recorder
    vectors = onnx.encode(texts)
    by_tokens = sorted(counts, reverse=True)
    assert sorted(recorder.shapes) == sorted([(2, by_tokens[0]), (2, by_tokens[2])])
    np.testing.assert_allclose(vectors, embedder.encode(texts), atol=1e-5)  # rows in the input order
