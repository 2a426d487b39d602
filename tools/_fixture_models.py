"""In-memory sentence-transformers models for each fixture, built from seeded tiny BERTs."""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
from sentence_transformers import CrossEncoder, MultiVectorEncoder, SentenceTransformer, SparseEncoder
from sentence_transformers.base.model import BaseModel
from sentence_transformers.base.modules import Dense, Module, Normalize, Router, Transformer
from sentence_transformers.base.modules.transformer import TransformerTask
from sentence_transformers.multi_vector_encoder.modules import HierarchicalTokenPooling, MultiVectorMask
from sentence_transformers.sentence_transformer.modules import Pooling, StaticEmbedding
from sentence_transformers.sparse_encoder.modules import MLMTransformer, SparseStaticEmbedding, SpladePooling
from torch import nn

from exporter import _deps  # noqa: F401  (raises ImportError with the install command without the export extra)
from tools._tiny import MAX_SEQ_LENGTH, VOCAB_SIZE, build_tokenizer, hf_tokenizer, save_tiny_hf_model

HIDDEN = 32
PROMPTS: dict[str, str] = {"query": "query: ", "document": "passage: "}


@dataclass(frozen=True)
class FixtureSpec:
    """How to build one fixture: its family, a model builder, and a short description."""

    name: str
    kind: str
    build: Callable[[Path], BaseModel]
    description: str
    extras: dict[str, object] = field(default_factory=dict)


_TASKS: dict[str, TransformerTask] = {
    "base": "feature-extraction",
    "mlm": "fill-mask",
    "cls": "sequence-classification",
}


def _transformer(
    work: Path, tag: str, seed: int, *, head: str = "base", num_labels: int = 1, type_ids: bool = True
) -> Transformer:
    hf_dir = save_tiny_hf_model(work / f"hf-{tag}", head=head, seed=seed, num_labels=num_labels, type_ids=type_ids)
    return Transformer(str(hf_dir), transformer_task=_TASKS[head], max_seq_length=MAX_SEQ_LENGTH)


def _dense(modules: Sequence[nn.Module], **kwargs: Any) -> SentenceTransformer:
    return SentenceTransformer(modules=list(modules), device="cpu", **kwargs)


def _pooled(
    name: str,
    seed: int,
    mode: Any,
    *,
    normalize: bool = False,
    prompts: dict[str, str] | None = None,
    include_prompt: bool = True,
    type_ids: bool = True,
) -> FixtureSpec:
    def build(work: Path) -> BaseModel:
        pooling = Pooling(HIDDEN, mode, include_prompt=include_prompt)
        modules: list[nn.Module] = [_transformer(work, name, seed, type_ids=type_ids), pooling]
        if normalize:
            modules.append(Normalize())
        return _dense(modules, prompts=prompts, similarity_fn_name="cosine")

    description = f"Transformer + Pooling {mode!r}" + (" + Normalize" if normalize else "")
    if not type_ids:
        description += " (tokenizer without token_type_ids)"
    return FixtureSpec(name, "dense", build, description)


def _dense_layer(work: Path) -> BaseModel:
    transformer = _transformer(work, "dense-layer", 11)
    torch.manual_seed(111)
    dense = Dense(HIDDEN, 16, activation_function=nn.Tanh())
    return _dense([transformer, Pooling(HIDDEN, "mean"), dense, Normalize()], similarity_fn_name="dot")


def _do_lower_case(work: Path) -> BaseModel:
    hf_dir = save_tiny_hf_model(work / "hf-lower", seed=12, lowercase=False)
    transformer = Transformer(str(hf_dir), max_seq_length=MAX_SEQ_LENGTH, do_lower_case=True)
    return _dense([transformer, Pooling(HIDDEN, "mean")])


def _router(work: Path) -> BaseModel:
    query: list[Module] = [_transformer(work, "router-query", 13), Pooling(HIDDEN, "mean")]
    document: list[Module] = [_transformer(work, "router-document", 14), Pooling(HIDDEN, "cls")]
    router = Router.for_query_document(query_modules=query, document_modules=document)
    return _dense([router, Normalize()])


def _static(work: Path) -> BaseModel:
    torch.manual_seed(15)
    weights = torch.randn(VOCAB_SIZE, 16)
    return _dense([StaticEmbedding(build_tokenizer(), embedding_weights=weights)])


def _sparse(name: str, seed: int, strategy: Any, activation: Any, prompts: dict[str, str] | None) -> FixtureSpec:
    def build(work: Path) -> BaseModel:
        transformer = _transformer(work, name, seed, head="mlm")
        modules: list[nn.Module] = [transformer, SpladePooling(strategy, activation, VOCAB_SIZE)]
        return SparseEncoder(modules=modules, device="cpu", prompts=prompts, similarity_fn_name="dot")

    return FixtureSpec(name, "sparse", build, f"Transformer(fill-mask) + SpladePooling({strategy}, {activation})")


def _inference_free(work: Path) -> BaseModel:
    hf_dir = save_tiny_hf_model(work / "hf-inference-free", head="mlm", seed=23)
    document: list[Module] = [
        MLMTransformer(str(hf_dir), max_seq_length=MAX_SEQ_LENGTH),
        SpladePooling("max", "relu", VOCAB_SIZE),
    ]
    generator = torch.Generator().manual_seed(24)
    idf = torch.rand(VOCAB_SIZE, generator=generator) * 4.0
    query: list[Module] = [SparseStaticEmbedding(tokenizer=cast(Any, hf_tokenizer()), weight=idf, frozen=True)]
    router = Router.for_query_document(query_modules=query, document_modules=document)
    return SparseEncoder(modules=[router], device="cpu", similarity_fn_name="dot")


def _cross(name: str, seed: int, num_labels: int) -> FixtureSpec:
    def build(work: Path) -> BaseModel:
        transformer = _transformer(work, name, seed, head="cls", num_labels=num_labels)
        return CrossEncoder(modules=[transformer], device="cpu")

    return FixtureSpec(name, "cross", build, f"CrossEncoder, BertForSequenceClassification num_labels={num_labels}")


def _multi_vector(name: str, seed: int, *, transformer_kwargs: dict[str, Any] | None = None,
                  skiplist: bool = False, pool_factor: float | None = None,
                  prompts: dict[str, str] | None = None, description: str) -> FixtureSpec:
    def build(work: Path) -> BaseModel:
        hf_dir = save_tiny_hf_model(work / f"hf-{name}", seed=seed)
        transformer = Transformer(str(hf_dir), max_seq_length=MAX_SEQ_LENGTH, **(transformer_kwargs or {}))
        torch.manual_seed(seed + 100)
        dense = Dense(HIDDEN, 16, bias=False, activation_function=nn.Identity(), module_input_name="token_embeddings")
        modules: list[nn.Module] = [
            transformer,
            dense,
            MultiVectorMask(skiplist_words=list(string.punctuation) if skiplist else None),
            Normalize(module_input_name="token_embeddings"),
        ]
        if pool_factor is not None:
            modules.append(HierarchicalTokenPooling(pool_factor=pool_factor))
        return MultiVectorEncoder(modules=modules, device="cpu", prompts=prompts)

    return FixtureSpec(name, "multi-vector", build, description)


FIXTURES: dict[str, FixtureSpec] = {
    spec.name: spec
    for spec in (
        _pooled("dense-mean", 1, "mean", normalize=True, prompts=PROMPTS),
        _pooled("dense-cls", 2, "cls"),
        _pooled("dense-max", 3, "max"),
        _pooled("dense-mean-sqrt", 4, "mean_sqrt_len_tokens"),
        _pooled("dense-weightedmean", 5, "weightedmean"),
        _pooled("dense-lasttoken", 6, "lasttoken", type_ids=False),
        _pooled("dense-mean-exclude-prompt", 7, "mean", prompts=PROMPTS, include_prompt=False),
        _pooled("dense-multi-pooling", 8, ("cls", "mean")),
        FixtureSpec("dense-dense-layer", "dense", _dense_layer, "Transformer + mean + Dense(32->16, Tanh) + Normalize"),
        FixtureSpec("dense-do-lower-case", "dense", _do_lower_case, "cased tokenizer, Transformer(do_lower_case=True)"),
        FixtureSpec("dense-router", "dense", _router, "Router(query: T+mean, document: T+cls) + Normalize"),
        FixtureSpec("dense-static", "dense", _static, "StaticEmbedding(dim 16), no ONNX graph"),
        _sparse("sparse-max-relu", 21, "max", "relu", {"query": "query: "}),
        _sparse("sparse-sum-log1p", 22, "sum", "log1p_relu", None),
        FixtureSpec(
            "sparse-inference-free",
            "sparse",
            _inference_free,
            "Router(query: SparseStaticEmbedding, document: MLMTransformer + SpladePooling)",
        ),
        _cross("cross-1label", 31, 1),
        _cross("cross-3labels", 32, 3),
        _multi_vector("multi-vector-basic", 41, prompts=PROMPTS,
                      description="Transformer + token Dense(32->16) + MultiVectorMask + token Normalize, prompts"),
        _multi_vector("multi-vector-expansion", 42, skiplist=True, transformer_kwargs={
            "document_length": 48, "query_expansion": {"strategy": "fixed", "length": 16}},
            description="query expansion fixed 16 ([MASK], not attended), document_length 48, punctuation skiplist"),
        _multi_vector("multi-vector-pooling", 43, pool_factor=2.0, transformer_kwargs={
            "query_length": 24, "query_expansion": {"strategy": "min", "length": 12, "attend": True}},
            description="query expansion min 12 (attended), query_length 24, HierarchicalTokenPooling(2)"),
    )
}
