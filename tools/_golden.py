"""Golden outputs computed by sentence-transformers (PyTorch) for the fixture inputs."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from sentence_transformers import CrossEncoder, MultiVectorEncoder, SentenceTransformer, SparseEncoder
from sentence_transformers.base.model import BaseModel
from sentence_transformers.base.modules import Router, Transformer
from sentence_transformers.multi_vector_encoder.modules import HierarchicalTokenPooling
from sentence_transformers.util import quantize_embeddings

from exporter import _deps  # noqa: F401  (raises ImportError with the install command without the export extra)
from tools._tiny import CORPUS

PRECISIONS: tuple[str, ...] = ("int8", "uint8", "binary", "ubinary")
DECODE_TOP_K = 10


def long_text(words: int = 300) -> str:
    """A deterministic English text of exactly ``words`` words, built from the corpus."""
    tokens = " ".join(CORPUS[i % len(CORPUS)] for i in range(7, 7 + 2 * len(CORPUS))).split()
    return " ".join(tokens[:words])


LONG_TEXT = long_text()
TEXTS: list[str] = [
    "The quick brown fox jumps over the lazy dog.",
    "",
    "What is the capital of France?",
    "Paris is the capital and most populous city of France.",
    "MiXeD CaSe TeXt: the WEATHER in London is RAINY today!",
    "Hello, world... How are you? (Fine, thanks!) -- #tags & @mentions; 100% sure.",
    "a",
    "Machine learning models learn patterns from large amounts of data.",
    "Numbers like 42, 3.14 and 2024 appear in many texts.",
    "   leading and trailing whitespace   ",
    "Café, naïve and Zürich have accents; 東京 is not in the vocabulary.",
    LONG_TEXT,
]
PAIRS: list[list[str]] = [
    ["What is the capital of France?", "Paris is the capital and most populous city of France."],
    ["What is the capital of France?", "Berlin is the capital and largest city of Germany."],
    ["", "A man is eating food while sitting at a small wooden table."],
    ["How is the weather today?", ""],
    ["", ""],
    ["Who wrote the novel about a white whale?", LONG_TEXT],
    [LONG_TEXT, "A short document."],
    ["MiXeD CaSe QUERY", "mixed case document"],
    ["Hello, world!", "Hello, world!"],
    ["Numbers like 42?", "The answer is 42, or maybe 3.14."],
    ["Café?", "Zürich, naïve, café."],
    ["A woman is playing the violin.", "Children are playing football in the park after school."],
]
RANK_QUERY = "What is the capital of France?"
RANK_DOCUMENTS: list[str] = [
    "Berlin is the capital and largest city of Germany.",
    "Paris is the capital and most populous city of France.",
    "The Eiffel Tower was completed in 1889 for the world fair.",
    "",
    "The cat sleeps on the warm windowsill all afternoon.",
    LONG_TEXT,
]


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an ``.npz`` (readable by ``numpy.load``) with fixed timestamps, so rebuilds are byte-identical."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key in sorted(arrays):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())


def _numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.to_dense() if value.is_sparse else value
        return value.detach().cpu().float().numpy()
    return np.asarray(value)


def _has_router(model: BaseModel) -> bool:
    return any(isinstance(module, Router) for module in model.children())


def _has_transformer(model: BaseModel) -> bool:
    return any(isinstance(module, Transformer) for module in model.modules())


def _asymmetric(model: BaseModel) -> bool:
    return _has_router(model) or any(model.prompts.get(key) for key in ("query", "document"))


def dense_golden(name: str, model: SentenceTransformer) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``encode`` variants, token embeddings, similarity and (dense-mean) quantized precisions."""
    arrays: dict[str, np.ndarray] = {}
    embeddings = model.encode(TEXTS, convert_to_numpy=True)
    arrays["encode"] = _numpy(embeddings)
    arrays["encode_normalized"] = _numpy(model.encode(TEXTS, normalize_embeddings=True))
    if _asymmetric(model):
        arrays["encode_query"] = _numpy(model.encode_query(TEXTS))
        arrays["encode_document"] = _numpy(model.encode_document(TEXTS))
    if _has_transformer(model):
        tokens = model.encode(TEXTS, output_value="token_embeddings")
        arrays["token_embeddings"] = np.concatenate([_numpy(t) for t in tokens], axis=0)
        arrays["token_embeddings_lengths"] = np.array([len(t) for t in tokens], dtype=np.int64)
    arrays["similarity"] = _numpy(model.similarity(embeddings, embeddings))
    if name == "dense-mean":
        for precision in PRECISIONS:
            arrays[precision] = np.asarray(quantize_embeddings(embeddings, precision=cast(Any, precision)))
    return arrays, {}


def _decode(model: SparseEncoder, embedding: torch.Tensor) -> list[list[Any]]:
    decoded = cast(list[tuple[str, float]], model.decode(embedding, top_k=DECODE_TOP_K))
    return [[token, float(weight)] for token, weight in decoded]


def sparse_golden(name: str, model: SparseEncoder) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Dense copies of the sparse ``encode`` outputs, similarity, and ``decode`` of the first text."""
    encoded = {
        "encode": model.encode(TEXTS, convert_to_tensor=True),
        "encode_query": model.encode_query(TEXTS, convert_to_tensor=True),
        "encode_document": model.encode_document(TEXTS, convert_to_tensor=True),
    }
    arrays = {key: _numpy(value) for key, value in encoded.items()}
    arrays["similarity"] = _numpy(model.similarity(encoded["encode"], encoded["encode"]))
    decode = {"text": TEXTS[0], "top_k": DECODE_TOP_K}
    decode |= {key: _decode(model, value[0]) for key, value in encoded.items()}
    return arrays, {"decode.json": decode}


def cross_golden(name: str, model: CrossEncoder) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``predict`` with the default activation, raw logits, softmax (multi-label) and ``rank`` (1 label)."""
    pairs = cast(Any, PAIRS)
    arrays = {
        "predict": _numpy(model.predict(pairs)),
        "predict_logits": _numpy(model.predict(pairs, activation_fn=torch.nn.Identity())),
    }
    documents: dict[str, Any] = {}
    if model.num_labels > 1:
        arrays["predict_softmax"] = _numpy(model.predict(pairs, apply_softmax=True))
    else:
        result = model.rank(RANK_QUERY, RANK_DOCUMENTS)
        ranked = [{"corpus_id": int(r["corpus_id"]), "score": float(r["score"])} for r in result]
        documents["rank.json"] = {"query": RANK_QUERY, "documents": RANK_DOCUMENTS, "result": ranked}
    return arrays, documents


POOL_FACTOR = 2.0  # per-call token pooling of the multi-vector golden outputs


def _ragged(arrays: dict[str, np.ndarray], key: str, rows: list[Any]) -> None:
    """Rows of all texts concatenated under ``key``, their lengths under ``key_lengths``."""
    arrays[key] = np.concatenate([_numpy(r) for r in rows], axis=0)
    arrays[f"{key}_lengths"] = np.array([len(r) for r in rows], dtype=np.int64)


def multi_vector_golden(name: str, model: MultiVectorEncoder) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Token vectors of ``encode`` / ``encode_query`` / ``encode_document``, per-call token pooling and the
    MaxSim / MeanMaxSim scores of the queries against the documents (all-pairs and pairwise)."""
    arrays: dict[str, np.ndarray] = {}
    queries, documents = model.encode_query(TEXTS), model.encode_document(TEXTS)
    _ragged(arrays, "encode", model.encode(TEXTS))
    _ragged(arrays, "encode_query", queries)
    _ragged(arrays, "encode_document", documents)
    pooling = HierarchicalTokenPooling(pool_factor=POOL_FACTOR)
    _ragged(arrays, "encode_document_pooled", model.encode_document(TEXTS, token_pooling=pooling))
    arrays["similarity"] = _numpy(model.similarity(queries, documents))
    arrays["similarity_pairwise"] = _numpy(model.similarity_pairwise(queries, documents))
    model.similarity_fn_name = "meanmaxsim"
    arrays["similarity_meanmaxsim"] = _numpy(model.similarity(queries, documents))
    model.similarity_fn_name = "maxsim"
    return arrays, {}


def golden(kind: str, name: str, model: BaseModel) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays for ``expected.npz`` and extra JSON documents (file name -> content) for one fixture."""
    builders = {"dense": dense_golden, "sparse": sparse_golden, "cross": cross_golden,
                "multi-vector": multi_vector_golden}
    return builders[kind](name, model)  # type: ignore[operator]


def inputs_document(kind: str) -> dict[str, Any]:
    """Content of ``inputs.json`` for a fixture of ``kind``."""
    if kind == "cross":
        return {"pairs": PAIRS, "rank_query": RANK_QUERY, "rank_documents": RANK_DOCUMENTS}
    return {"texts": TEXTS}
