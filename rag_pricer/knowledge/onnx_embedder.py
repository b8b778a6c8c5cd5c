"""Sentence embeddings from an ONNX export of a local sentence-transformers model, run by onnxruntime.

The export (and, with ``quantize=True``, its dynamic int8 quantisation) is built once from the
model folder and cached on disk, keyed by that folder and its files; nothing is downloaded.
Tokenisation, mean pooling over the attention mask and L2 normalisation reproduce what
sentence-transformers does for mean-pooling models such as all-MiniLM-L6-v2: the fp32 export
agrees with torch to cosine > 0.9999998. Needs the ``onnx`` package (the quantiser imports it);
torch is imported only to build the export.

Batches are cut from the texts sorted by their token counts and padded to their own longest
text: sorting by characters, as before, left batches padded to a text with many more tokens than
the rest (13-16% more CPU per text, benchmarks/embedding.py).

``optimize=True`` runs instead the export after onnxruntime's own transformer fusions
(``onnxruntime.transformers.optimizer``: one ``Attention`` per layer with Q, K and V in one
MatMul, ``EmbedLayerNormalization``, ``SkipLayerNormalization``, ``BiasGelu``): 46 nodes instead
of 516 (254 after onnxruntime's load-time optimisations), the same vectors (cosine 0.9999999 to
the plain export). It is built once beside the export, keyed by the onnxruntime version and the
fusion recipe, and used only if it reproduces the plain export on a probe batch. It is not the
default: on the AVX-512 machine it cost about the same CPU per text as the plain export
(0.98-1.05x, session runs alternated batch by batch); AVX2 machines were not measured.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

#: Bump when the export or quantisation recipe changes, so cached files are rebuilt.
RECIPE = "minilm-onnx-1"

#: MatMuls left in fp32 when quantising. Quantising one MatMul at a time (per-channel int8,
#: all-MiniLM-L6-v2, 150 real descriptions) showed the FFN output projections of layers 0-2
#: (they read the post-GELU activations, whose outliers per-tensor uint8 activations clip) cost
#: about half of the whole int8 error: excluding them lifts cosine vs fp32 from 0.994 to 0.997
#: mean (0.975 to 0.987 min) and costs ~13% of the int8 throughput. Models whose node names differ
#: simply get every MatMul quantised.
KEEP_FP32 = re.compile(r"layer\.[0-2]/output/dense/MatMul$")

#: Bump when the fusion recipe (``_fuse``) changes; the onnxruntime version joins it in the key.
FUSION_RECIPE = "bert-fusions-1"
#: the fused graph must reproduce the plain export to this cosine on the probe texts, or it is
#: replaced by the plain graph (a fusion that matched a pattern it should not have)
FUSION_MIN_COSINE = 0.99999
PROBE_TEXTS = (
    "Stainless steel 12-cup coffee maker with glass carafe and auto shut-off",
    "USB-C cable",
    "Replacement water pump assembly for 2012-2016 sedans, OEM part, includes gasket and bolts.",
)


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rag-pricer" / "onnx"


@contextmanager
def atomic_file(target: Path) -> Iterator[Path]:
    """A temporary path beside ``target``, moved onto it when the block succeeds: a killed
    build or a concurrent process never leaves a truncated model in the cache."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=target.stem + "-", suffix=".onnx.tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        tmp.chmod(0o644)  # mkstemp makes it private; the cache may be shared by several users
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


class OnnxEmbedder:
    """Turns texts into L2-normalised float32 vectors with onnxruntime (fp32 or dynamic int8).

    ``model_path`` is a local sentence-transformers folder with mean pooling. ``threads`` is
    onnxruntime's intra-op thread count (None: its default, one per physical core). ``optimize``
    runs the fp32 model with onnxruntime's transformer fusions (the same vectors; int8 always
    quantises the plain export, so its vectors stay what stores recorded). The ONNX files are
    built on first use (seconds) under ``cache_dir``; ``built_`` tells whether this instance
    had to build one.
    """

    def __init__(
        self,
        model_path: str | Path,
        quantize: bool = True,
        batch_size: int = 32,
        threads: int | None = None,
        cache_dir: str | Path | None = None,
        optimize: bool = False,
    ) -> None:
        self.model_path = Path(model_path)
        self.quantize = quantize
        self.optimize = optimize and not quantize
        self.batch_size = batch_size
        self.threads = threads
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be at least 1 or None, not {threads}")
        if not (self.model_path / "config.json").is_file():
            raise ValueError(
                f"the ONNX backend needs a local sentence-transformers model folder; {str(model_path)!r} is not one"
            )
        self.built_ = False
        # one instance serves concurrent requests in the HTTP service: build the session once,
        # and keep a fast tokenizer from being re-configured by two threads at once
        self._lock = threading.RLock()
        self._check_pooling()

    # configuration read from the model folder ---------------------------------------------

    def _check_pooling(self) -> None:
        listing = self.model_path / "modules.json"
        modules = json.loads(listing.read_text()) if listing.is_file() else []
        pooling = next((m for m in modules if m.get("type", "").endswith("Pooling")), None)
        if pooling is None:
            raise ValueError(f"{self.model_path} has no sentence-transformers Pooling module")
        config = json.loads((self.model_path / pooling["path"] / "config.json").read_text())
        modes = {key for key, on in config.items() if key.startswith("pooling_mode") and on}
        if modes != {"pooling_mode_mean_tokens"}:
            raise ValueError(f"the ONNX backend implements mean pooling only; {self.model_path} uses {sorted(modes)}")
        self._dimension = int(config["word_embedding_dimension"])

    @property
    def dimension(self) -> int:
        return self._dimension

    @cached_property
    def max_tokens(self) -> int:
        """Longer texts are truncated to this many tokens, as sentence-transformers does."""
        config = self.model_path / "sentence_bert_config.json"
        if config.is_file() and (length := json.loads(config.read_text()).get("max_seq_length")):
            return int(length)
        return int(self.tokenizer.model_max_length)

    @cached_property
    def tokenizer(self) -> Any:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(self.model_path))

    # the cached ONNX files ----------------------------------------------------------------

    @cached_property
    def model_dir(self) -> Path:
        """Cache folder of this model: named after it, keyed by its path, files and the recipe."""
        key = hashlib.sha256(f"{RECIPE}\n{self.model_path.resolve()}".encode())
        for file in sorted(self.model_path.rglob("*")):
            if file.is_file():
                stat = file.stat()
                key.update(f"\n{file.relative_to(self.model_path)} {stat.st_size} {stat.st_mtime_ns}".encode())
        return self.cache_dir / f"{self.model_path.name}-{key.hexdigest()[:16]}"

    @property
    def onnx_path(self) -> Path:
        if self.quantize:
            return self.model_dir / "model-int8.onnx"
        if self.optimize:
            import onnxruntime

            # onnxruntime's version is in the name: another version may fuse (or run) differently
            key = hashlib.sha256(f"{FUSION_RECIPE}\n{onnxruntime.__version__}".encode()).hexdigest()[:12]
            return self.model_dir / f"model-fp32-fused-{key}.onnx"
        return self.model_dir / "model-fp32.onnx"

    def build(self) -> Path:
        """Build the ONNX file(s) that are missing from the cache; return the one this instance runs."""
        fp32 = self.model_dir / "model-fp32.onnx"
        if not fp32.is_file():
            self._export(fp32)
            self.built_ = True
        if self.onnx_path.is_file():
            return self.onnx_path
        if self.quantize:
            self._quantize(fp32, self.onnx_path)
        elif self.optimize:
            self._fuse(fp32, self.onnx_path)
        self.built_ = True
        return self.onnx_path

    def _export(self, target: Path) -> None:
        import torch
        from transformers import AutoModel
        from transformers.utils import logging as transformers_logging

        # transformers draws a "Loading weights" bar on every load: it would land in the main job's log
        transformers_logging.disable_progress_bar()
        # eager attention exports to plain ONNX ops; the legacy (TorchScript) exporter needs
        # neither onnxscript nor a torch.export-able model
        model = AutoModel.from_pretrained(str(self.model_path), attn_implementation="eager").eval()
        sample = self.tokenizer(
            ["a short text", "a somewhat longer text, so that it pads"], padding=True, return_tensors="pt"
        )
        names = list(sample.keys())

        class LastHiddenState(torch.nn.Module):
            def __init__(self, inner: torch.nn.Module) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
                return self.inner(**dict(zip(names, inputs, strict=True))).last_hidden_state

        axes = {name: {0: "batch", 1: "tokens"} for name in [*names, "last_hidden_state"]}
        with atomic_file(target) as tmp, torch.no_grad(), warnings.catch_warnings():
            # tracer warnings about shape-dependent Python branches: the tests check the export
            # against torch on batches of other sizes and lengths
            warnings.simplefilter("ignore")
            torch.onnx.export(
                LastHiddenState(model),
                tuple(sample[name] for name in names),
                str(tmp),
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )

    @staticmethod
    def _quantize(source: Path, target: Path) -> None:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        graph = onnx.load(str(source), load_external_data=False).graph
        keep = [node.name for node in graph.node if node.op_type == "MatMul" and KEEP_FP32.search(node.name)]
        with atomic_file(target) as tmp:
            # per-channel weights: per-tensor int8 gave cosine 0.94 mean (0.75 min) vs fp32
            quantize_dynamic(source, tmp, per_channel=True, weight_type=QuantType.QInt8, nodes_to_exclude=keep)

    def _fuse(self, source: Path, target: Path) -> None:
        """onnxruntime's BERT fusions of ``source`` into ``target``, checked against ``source``."""
        from onnxruntime.transformers.fusion_options import FusionOptions
        from onnxruntime.transformers.optimizer import optimize_model

        config = json.loads((self.model_path / "config.json").read_text())
        options = FusionOptions("bert")
        # the 0/1 mask as it is, not "index of the last token": right for either padding side
        options.use_raw_attention_mask(True)
        quiet = logging.getLogger("onnxruntime.transformers")
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # it logs every fusion it applies
        try:
            # opt_level 0: the Python fusions only; onnxruntime's own (partly CPU-specific)
            # optimisations run when a session loads the file, as they do for the plain export
            fused = optimize_model(
                str(source),
                model_type="bert",
                num_heads=int(config.get("num_attention_heads", 0)),
                hidden_size=int(config.get("hidden_size", 0)),
                optimization_options=options,
                opt_level=0,
            )
        finally:
            quiet.setLevel(level)
        with atomic_file(target) as tmp:
            fused.save_model_to_file(str(tmp))
            agreement = self._agreement(source, tmp)
            if agreement < FUSION_MIN_COSINE:
                warnings.warn(
                    f"the fused ONNX model of {self.model_path.name} gives other vectors (cosine {agreement:.6f} "
                    "to the plain export): the plain export runs instead",
                    stacklevel=2,
                )
                shutil.copyfile(source, tmp)

    def _agreement(self, plain: Path, fused: Path) -> float:
        """The lowest cosine between the two models' vectors of ``PROBE_TEXTS``."""
        texts = list(PROBE_TEXTS)
        a, b = (self._run(self._session(path), self._tokenize(texts)) for path in (plain, fused))
        return float(np.sum(a * b, axis=1).min())

    # inference ----------------------------------------------------------------------------

    @cached_property
    def session(self) -> Any:
        with self._lock:
            return self._session(self.build())

    def _session(self, path: Path) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = self.threads or 0
        options.inter_op_num_threads = 1
        # idle pool threads sleep instead of spinning: on a shared machine spinning threads
        # burn the cores the other thread is waiting for (see benchmarks/RESULTS.md)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` in batches of similar token counts; rows follow the input order."""
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of texts, not one string")
        texts = [str(text).strip() for text in texts]
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return vectors
        session = self.session
        tokens = self._tokenize(texts)
        # longest first, by tokens: each batch is padded to its own longest text only
        order = sorted(range(len(texts)), key=lambda i: -len(tokens["input_ids"][i]))
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            vectors[rows] = self._run(session, {name: [ids[i] for i in rows] for name, ids in tokens.items()})
        return vectors

    def _tokenize(self, texts: list[str]) -> dict[str, list[list[int]]]:
        """Token ids of ``texts``, truncated as sentence-transformers does, not padded."""
        with self._lock:  # a fast tokenizer must not be re-configured by two threads at once
            found = self.tokenizer(texts, truncation="longest_first", max_length=self.max_tokens)
        return {name: list(values) for name, values in found.items()}

    def _run(self, session: Any, tokens: dict[str, list[list[int]]]) -> np.ndarray:
        """Mean-pooled, L2-normalised vectors of one batch, padded on the right to its longest text."""
        width = max(len(mask) for mask in tokens["attention_mask"])
        padded = {}
        for name, rows in tokens.items():
            fill = (self.tokenizer.pad_token_id or 0) if name == "input_ids" else 0
            padded[name] = np.full((len(rows), width), fill, dtype=np.int64)
            for row, ids in enumerate(rows):
                padded[name][row, : len(ids)] = ids
        hidden = session.run(None, {inp.name: padded[inp.name] for inp in session.get_inputs()})[0]
        mask = padded["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
