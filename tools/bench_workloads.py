"""What each kind of :mod:`tools.bench` loads, feeds and times: one :class:`Workload` per model kind.

Importing this module imports neither torch nor onnx_st: the engines are imported in
:func:`load`, inside the timed cold start of a worker process.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENGINES = ("onnx-st", "st-torch", "st-onnx", "fastembed", "ort-alone")
_ALL = ("onnx-st", "ort-alone", "st-torch", "st-onnx", "fastembed")
FASTEMBED_KINDS = ("dense", "sentences", "long", "sparse", "cross")  # fastembed 0.9.1 runs no multi-vector
"""Kinds fastembed runs on the directory's own ONNX file (custom models: dense, rerankers; SPLADE by registration)."""
PROBE_TEXTS, PROBE_TOKENS = 32, 256


@dataclass(frozen=True)
class Workload:
    """One benchmark kind: the class both libraries name, its inputs, and the call that is timed."""

    kind: str
    class_name: str  # the same name in onnx_st and sentence_transformers
    call: str  # method timed on the loaded model
    unit: str  # what one input is, for the rate column
    default_n: int
    describe: str  # the inputs, ``{n}`` replaced by their number
    engines: tuple[str, ...]  # engines run when ``--engines`` is not given
    warmup: list[Any]  # the first call, part of the cold start
    inputs: Callable[[int], list[Any]]
    default_model: Callable[[], Path]
    probe: Callable[[Path], list[Any]] | None = None  # one batch whose added peak memory is measured
    probe_label: str = ""
    env: Mapping[str, str] = field(default_factory=dict)  # extra environment of the worker processes


def load(workload: Workload, engine: str, model: str, threads: int | None, file_name: str | None,
         max_run_tokens: str | None = None, parallel_runs: int = 1) -> Any:
    """Import the engine's library and load the model; the imports are part of the cold start.

    ``max_run_tokens`` (onnx-st only): ``max_batch_tokens``, an integer or ``none``; default: the library's.
    ``parallel_runs`` (onnx-st only): batches in flight at once.
    """
    if engine == "fastembed":
        return FastEmbedModel(workload, Path(model), threads, file_name or "onnx/model.onnx")
    if engine in ("onnx-st", "ort-alone"):
        import onnx_st

        options = {"file_name": file_name, "intra_op_num_threads": threads,
                   "parallel_runs": parallel_runs if parallel_runs > 1 else None}
        kwargs = {k: v for k, v in options.items() if v}
        extra: dict[str, Any] = {}
        if max_run_tokens is not None:
            extra["max_batch_tokens"] = None if max_run_tokens == "none" else int(max_run_tokens)
        return getattr(onnx_st, workload.class_name)(model, model_kwargs=kwargs or None, **extra)
    if threads:
        import torch

        torch.set_num_threads(threads)
    import sentence_transformers

    cls = getattr(sentence_transformers, workload.class_name)
    if engine == "st-torch":
        return cls(model, device="cpu")
    onnx_kwargs: dict[str, Any] = {"file_name": file_name} if file_name else {}
    if threads:
        import onnxruntime as ort

        session = ort.SessionOptions()
        session.intra_op_num_threads = threads
        onnx_kwargs["session_options"] = session
    return cls(model, device="cpu", backend="onnx", model_kwargs=onnx_kwargs)


class FastEmbedModel:
    """fastembed 0.9.1 on the directory's ONNX file, behind the call the workload times.

    fastembed downloads its models; here the local directory is registered as a custom model
    (``specific_model_path``), its dense models truncating at the model's ``max_seq_length`` as
    sentence-transformers does (fastembed's own length, 128 tokens for all-MiniLM-L6-v2, cut the
    texts past it: cosine 0.71 to sentence-transformers on one, and less to compute).
    It pools and normalizes as the directory's modules say (dense), returns raw logits (rerankers)
    and applies SPLADE's ``log1p(relu)`` max pooling (sparse).
    """

    def __init__(self, workload: Workload, model_dir: Path, threads: int | None, file_name: str) -> None:
        import json

        from fastembed.common.model_description import ModelSource, PoolingType, SparseModelDescription

        self.kind = workload.kind
        name = f"onnx-st-bench/{model_dir.name}"
        source = ModelSource(hf=name)
        common: dict[str, Any] = {"specific_model_path": str(model_dir), "threads": threads}
        if workload.kind == "cross":
            from fastembed.rerank.cross_encoder import TextCrossEncoder

            TextCrossEncoder.add_custom_model(name, sources=source, model_file=file_name)
            self.model: Any = TextCrossEncoder(name, **common)
        elif workload.kind == "sparse":
            from fastembed import SparseTextEmbedding
            from fastembed.sparse.splade_pp import supported_splade_models

            vocab = json.loads((model_dir / "config.json").read_text())["vocab_size"]
            supported_splade_models.append(SparseModelDescription(
                model=name, vocab_size=vocab, sources=source, model_file=file_name, description="",
                license="", size_in_GB=0.0))
            self.model = SparseTextEmbedding(name, **common)
            self.vocab_size = int(vocab)
        elif workload.kind in FASTEMBED_KINDS:
            from fastembed import TextEmbedding

            modules = json.loads((model_dir / "modules.json").read_text())
            pooling_dir = next(model_dir / m["path"] for m in modules if m["type"].endswith("Pooling"))
            pooling = json.loads((pooling_dir / "config.json").read_text())
            mode = pooling.get("pooling_mode") or ("cls" if pooling.get("pooling_mode_cls_token") else "mean")
            kinds = {"mean": PoolingType.MEAN, "cls": PoolingType.CLS}
            if mode not in kinds:
                raise SystemExit(f"fastembed pools with mean or cls, not {mode!r}")
            TextEmbedding.add_custom_model(
                name, pooling=kinds[mode], normalization=any(m["type"].endswith("Normalize") for m in modules),
                sources=source, dim=int(pooling.get("embedding_dimension", pooling.get("word_embedding_dimension"))),
                model_file=file_name)
            self.model = TextEmbedding(name, **common)
            lengths = (json.loads(path.read_text()).get(key) if path.is_file() else None for path, key in (
                (model_dir / "sentence_bert_config.json", "max_seq_length"),
                (model_dir / "tokenizer_config.json", "model_max_length")))
            limit = next((length for length in lengths if isinstance(length, int)), None)
            if limit is not None:  # fastembed cuts at its own length (128 here), not the model's
                self.model.model.tokenizer.enable_truncation(max_length=limit)
        else:
            raise SystemExit(f"fastembed 0.9.1 does not run {workload.kind} models")

    def encode(self, texts: list[str], batch_size: int = 32) -> Any:
        """Dense rows (``np.ndarray``) or, for sparse models, a dense (texts, vocabulary) array of the weights."""
        import numpy as np

        rows = list(self.model.embed(texts, batch_size=batch_size))
        if self.kind != "sparse":
            return np.stack(rows)
        dense = np.zeros((len(rows), self.vocab_size), dtype=np.float32)
        for i, row in enumerate(rows):
            dense[i, row.indices] = row.values
        return dense

    def predict(self, pairs: list[tuple[str, str]], batch_size: int = 32) -> Any:
        """Raw scores of the pairs."""
        import numpy as np

        return np.asarray(list(self.model.rerank_pairs(pairs, batch_size=batch_size)), dtype=np.float32)


def outputs_array(kind: str, outputs: Any) -> Any:
    """One engine's outputs as a NumPy array, to compare engines: rows (dense, sparse as dense), scores
    (rerankers), or every token vector of every document one after the other (multi-vector)."""
    import numpy as np

    if kind.startswith("multi-vector"):
        return np.concatenate([np.asarray(o, dtype=np.float32) for o in outputs])
    for convert in ("to_dense",):  # onnx-st SparseEmbeddings, torch sparse tensors
        if hasattr(outputs, convert):
            outputs = getattr(outputs, convert)()
    if hasattr(outputs, "numpy"):
        outputs = outputs.float().numpy() if hasattr(outputs, "float") else outputs.numpy()
    return np.asarray(outputs, dtype=np.float32)


def _dense_texts(n: int) -> list[Any]:
    from exporter.corpus import benchmark_sentences

    return list(benchmark_sentences(n))


def _sentence_texts(n: int) -> list[Any]:
    import random

    from exporter.corpus import sample_texts, stdlib_sentences

    sentences = stdlib_sentences()
    if n <= len(sentences):  # distinct sentences, as many as there are
        return random.Random(3).sample(sentences, n)
    return list(sample_texts(n, seed=3, long_fraction=0.0))


def _long_texts(n: int) -> list[Any]:
    from exporter.corpus import sample_texts

    return list(sample_texts(n, seed=7, long_fraction=1.0))


def _sparse_texts(n: int) -> list[Any]:
    from exporter.corpus import sample_texts

    return list(sample_texts(n, seed=0))


def _pairs(n: int) -> list[Any]:
    from exporter.corpus import sample_pairs

    return list(sample_pairs(n, seed=5))


def documents_of_tokens(model_dir: Path, n: int = PROBE_TEXTS, tokens: int = PROBE_TOKENS) -> list[Any]:
    """``n`` distinct texts of ``tokens`` tokens each (special tokens included, as near as words allow)."""
    from tokenizers import Tokenizer

    from exporter.corpus import sample_texts

    path = next(p for p in sorted(model_dir.rglob("tokenizer.json")))
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    out: list[Any] = []
    for text in sample_texts(4 * n, seed=5, long_fraction=1.0):
        words = text.split()
        lo, hi = 0, len(words)
        while lo < hi:  # the most words whose encoding fits in ``tokens``
            mid = (lo + hi + 1) // 2
            if len(tokenizer.encode(" ".join(words[:mid])).ids) <= tokens:
                lo = mid
            else:
                hi = mid - 1
        if len(tokenizer.encode(" ".join(words[:lo])).ids) >= tokens - 1:
            out.append(" ".join(words[:lo]))
        if len(out) == n:
            return out
    raise RuntimeError(f"could not build {n} texts of {tokens} tokens")


VARIANT_PARITY_TEXTS = 2000


def ensure_variants(model_dir: Path, files: Sequence[str]) -> None:
    """Build the O-level and int8 ``files`` (``onnx/model_O2.onnx``, ``onnx/model_qint8_avx2.onnx``) missing from ``model_dir``."""
    from exporter.optimize import LEVELS, level_file_name
    from exporter.quantize import FAMILIES, HQ_SUFFIX, family_file_name, split_hq
    from exporter.variants import make_variants

    buildable = {Path(level_file_name(level)).name: level for level in LEVELS}
    buildable.update({Path(family_file_name(family)).name: family for family in FAMILIES})
    buildable.update({Path(family_file_name(family + HQ_SUFFIX)).name: family + HQ_SUFFIX for family in FAMILIES})
    present = {p.name for p in Path(model_dir).rglob("model*.onnx")}
    missing = [Path(f).name for f in files if Path(f).name not in present]
    unknown = sorted(name for name in missing if name not in buildable)
    if unknown:
        raise SystemExit(f"cannot build {unknown}: only onnx/model_O1..O4.onnx and "
                         "onnx/model_qint8_<family>[_hq].onnx")
    levels = [buildable[name] for name in missing if buildable[name] in LEVELS]
    families = [buildable[name] for name in missing if split_hq(buildable[name])[0] in FAMILIES]
    if levels or families:  # records on the 2,000 texts the targets are stated on (500 by default)
        make_variants(model_dir, optimize=levels, quantize=families, parity_texts=VARIANT_PARITY_TEXTS,
                      echo=lambda line: print(line, file=sys.stderr))


def _minilm() -> Path:
    from tools.pypi_models import minilm_exported

    return minilm_exported()


def _mpnet() -> Path:
    from tools.pypi_models import mpnet_exported

    return mpnet_exported()


def _splade_tiny() -> Path:
    from tools.pypi_models import splade_tiny_exported

    return splade_tiny_exported()


def _reranker() -> Path:
    from tools.reranker_models import minilm_reranker

    return minilm_reranker(1)[1]


def _multi_vector() -> Path:
    from tools.multi_vector_models import minilm_multi_vector

    return minilm_multi_vector()[1]


WORKLOADS: dict[str, Workload] = {
    "dense": Workload(
        kind="dense", class_name="SentenceTransformer", call="encode", unit="sent", default_n=2000,
        describe="{n} texts of 4-120 words", engines=_ALL,
        warmup=["The first sentence warms nothing up."], inputs=_dense_texts, default_model=_minilm),
    "sentences": Workload(  # the texts of issue 15's table: single docstring sentences, about 35 tokens
        kind="sentences", class_name="SentenceTransformer", call="encode", unit="sent", default_n=2000,
        describe="{n} single docstring sentences (about 35 tokens)", engines=_ALL,
        warmup=["The first sentence warms nothing up."], inputs=_sentence_texts, default_model=_minilm),
    "long": Workload(  # sentence-transformers' docs warn that ONNX can lose to torch on long inputs
        kind="long", class_name="SentenceTransformer", call="encode", unit="texts", default_n=128,
        describe="{n} texts of 150-450 words (about 200-600 tokens, truncated at 384)", engines=_ALL,
        warmup=["The first sentence warms nothing up."], inputs=_long_texts, default_model=_mpnet),
    "sparse": Workload(
        kind="sparse", class_name="SparseEncoder", call="encode", unit="texts", default_n=512,
        describe="{n} texts (30% of 150-450 words)", engines=("onnx-st", "ort-alone", "st-torch", "fastembed"),
        warmup=["A first text warms nothing up."], inputs=_sparse_texts, default_model=_splade_tiny,
        probe=documents_of_tokens, probe_label=f"{PROBE_TEXTS}x{PROBE_TOKENS}",
        env={"TOKENIZERS_PARALLELISM": "false"}),
    "cross": Workload(
        kind="cross", class_name="CrossEncoder", call="predict", unit="pairs", default_n=1000,
        describe="{n} (query, document) pairs (40% long documents)", engines=_ALL,
        warmup=[("What warms up?", "Nothing does.")], inputs=_pairs, default_model=_reranker),
    "multi-vector": Workload(
        kind="multi-vector", class_name="MultiVectorEncoder", call="encode_document", unit="texts", default_n=512,
        describe="{n} documents (30% of 150-450 words)", engines=("onnx-st", "ort-alone", "st-torch"),
        warmup=["A first document warms nothing up."], inputs=_sparse_texts, default_model=_multi_vector,
        probe=documents_of_tokens, probe_label=f"{PROBE_TEXTS}x{PROBE_TOKENS}"),
    "multi-vector-sentences": Workload(
        kind="multi-vector-sentences", class_name="MultiVectorEncoder", call="encode_document", unit="texts",
        default_n=1000, describe="{n} single docstring sentences (about 35 tokens)",
        engines=("onnx-st", "ort-alone", "st-torch"), warmup=["A first document warms nothing up."],
        inputs=_sentence_texts, default_model=_multi_vector),
    "multi-vector-long": Workload(
        kind="multi-vector-long", class_name="MultiVectorEncoder", call="encode_document", unit="texts",
        default_n=128, describe="{n} documents of 150-450 words (about 200-600 tokens, truncated at 256)",
        engines=("onnx-st", "ort-alone", "st-torch"), warmup=["A first document warms nothing up."],
        inputs=_long_texts, default_model=_multi_vector),
}
