"""The model kinds, in one place: how a directory is recognised and what each surface does with it.

sentence-transformers has four model classes; a directory says which one saved it in
``config_sentence_transformers.json`` (``model_type``). Older directories say it through their
modules (``modules.json``, a Router's ``router_config.json``), through the Hugging Face
``config.json`` (a legacy cross-encoder is a bare ``*ForSequenceClassification`` model) or through
ColBERT's ``artifact.metadata``. Every surface (front classes, CLI, server, jobs, exporter) asks
:func:`detect_kind` and dispatches on the :class:`ModelKind` it returns.

Example:
    >>> detect_kind("all-minilm-l6-v2-onnx").kind.name
    'dense'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from onnx_st.errors import ConfigError, InputError, foreign_errors
from onnx_st.model_dir import ModelDir

KindName = Literal["dense", "sparse", "cross", "multi-vector"]


class Capability(Enum):
    """What a model can answer (a server route asks for one); a kind's :attr:`ModelKind.output` is its own."""

    EMBED = "embed"
    """One dense vector per text."""
    EMBED_SPARSE = "embed_sparse"
    """One sparse vector over the vocabulary per text."""
    EMBED_ALL = "embed_all"
    """One vector per token of each text."""
    PREDICT = "predict"
    """Scores of ``(query, document)`` pairs (``/predict``, ``/rerank``)."""
    SIMILARITY = "similarity"
    """One score per sentence against a source sentence."""

    def __str__(self) -> str:
        return self.value
ConfigSource = Callable[[str], Any]
"""Reads a JSON file of a model by its path relative to the model root; ``None`` when absent."""


@dataclass(frozen=True)
class ModelKind:
    """One model kind and what each surface does with it.

    Attributes:
        name: the name used by CLI flags, job specs and docs (``dense``, ``sparse``, ``cross``, ``multi-vector``).
        model_type: sentence-transformers' class name, saved as ``model_type`` in ``config_sentence_transformers.json``.
        class_path: ``module:attribute`` of the onnx-st front class.
        description: what the model produces, in words.
        input_columns: the text columns one job row holds.
        output_columns: the columns an ``onnx-st embed`` job writes.
        graph_output: the exporter's transformer task (the ONNX graph's output).
        output: the operation the model answers by itself (its ``onnx-st serve`` root route).
        also_serves: operations beside ``output`` and similarity (a dense model's token embeddings).
        scores_pairs: the model scores ``(query, document)`` pairs instead of embedding texts.
        normalizes: a job's ``normalize`` applies (L2-normalized vectors).
        sample_source: the exporter's sample of this kind (``benchmark_sentences``, or ``sample_pairs``).
    """

    name: KindName
    model_type: str
    class_path: str
    description: str
    input_columns: tuple[str, ...]
    output_columns: tuple[str, ...]
    graph_output: str
    output: Capability
    also_serves: frozenset[Capability] = frozenset()
    scores_pairs: bool = False
    normalizes: bool = False
    sample_source: str = "benchmark_sentences"

    @property
    def class_name(self) -> str:
        """Name of the front class (``SentenceTransformer`` ...)."""
        return self.class_path.rsplit(":", 1)[1]

    @property
    def server_operations(self) -> frozenset[Capability]:
        """The operations a server route may call on this kind: its output, similarity to a source, and more."""
        return frozenset({self.output, Capability.SIMILARITY, *self.also_serves})

    def __str__(self) -> str:
        return self.name


DENSE = ModelKind("dense", "SentenceTransformer", "onnx_st.dense.sentence_transformer:SentenceTransformer", "dense embeddings",
                  ("text",), ("embedding",), "feature-extraction", Capability.EMBED, normalizes=True,
                  also_serves=frozenset({Capability.EMBED_ALL}))
SPARSE = ModelKind("sparse", "SparseEncoder", "onnx_st.sparse.sparse_encoder:SparseEncoder", "sparse (SPLADE) embeddings",
                   ("text",), ("indices", "values"), "fill-mask", Capability.EMBED_SPARSE)
CROSS = ModelKind("cross", "CrossEncoder", "onnx_st.cross.cross_encoder:CrossEncoder", "reranker scores of text pairs",
                  ("query", "document"), ("score",), "sequence-classification", Capability.PREDICT,
                  scores_pairs=True, sample_source="sample_pairs")
MULTI_VECTOR = ModelKind("multi-vector", "MultiVectorEncoder", "onnx_st.multi_vector.multi_vector_encoder:MultiVectorEncoder",
                         "one vector per token (late interaction, MaxSim)", ("text",), ("embeddings",),
                         "feature-extraction", Capability.EMBED_ALL, normalizes=True)

KINDS: dict[str, ModelKind] = {k.name: k for k in (DENSE, SPARSE, CROSS, MULTI_VECTOR)}
"""Every kind by its name."""
_BY_MODEL_TYPE = {k.model_type: k for k in KINDS.values()}
_SAVED_MODEL_TYPES = {**_BY_MODEL_TYPE, "ColBERT": MULTI_VECTOR}  # PyLate saves ColBERT models as "ColBERT"
# the package of a module type string names the kind that defines it
_PACKAGES = {"sparse_encoder": SPARSE, "cross_encoder": CROSS, "multi_vector_encoder": MULTI_VECTOR}
_SPARSE_MODULES = ("SpladePooling", "SparseStaticEmbedding", "MLMTransformer")
_MULTI_VECTOR_MODULES = ("MultiVectorMask", "HierarchicalTokenPooling")
_TRANSFORMER_CONFIG = "sentence_bert_config.json"


def get_kind(name: str | ModelKind) -> ModelKind:
    """A kind by its name (``dense`` ...) or its sentence-transformers class name (``SentenceTransformer`` ...).

    Raises:
        InputError: naming the known kinds.
    """
    if isinstance(name, ModelKind):
        return name
    found = KINDS.get(str(name)) or _BY_MODEL_TYPE.get(str(name))
    if found is None:
        raise InputError(f"Unknown model kind {name!r}; kinds: {', '.join(KINDS)} "
                         f"(or {', '.join(_BY_MODEL_TYPE)})")
    return found


@dataclass(frozen=True)
class KindDetection:
    """What :func:`detect_kind` found: the kind, the evidence, and whether the files decide it.

    ``certain`` is ``False`` when only a bare Hugging Face ``config.json`` was found and the
    directory could run as another kind too (a masked LM is a dense model to sentence-transformers'
    ``SentenceTransformer`` and a SPLADE model to ``SparseEncoder``); ``alternatives`` names them.
    """

    kind: ModelKind
    evidence: str
    certain: bool = True
    alternatives: tuple[ModelKind, ...] = ()


def _from_modules(files: ModelDir, types: tuple[tuple[str, str], ...]) -> KindDetection:
    names = [t.rsplit(".", 1)[-1] for t, _ in types]
    for type_name, _ in types:
        parts = type_name.split(".")
        if len(parts) > 2 and parts[0] == "sentence_transformers" and parts[1] in _PACKAGES:
            return KindDetection(_PACKAGES[parts[1]], f"modules.json names {type_name}")
    if any(type_name.startswith("pylate.") for type_name, _ in types):
        return KindDetection(MULTI_VECTOR, "modules.json names a PyLate module")
    for name in names:
        if name in _SPARSE_MODULES:
            return KindDetection(SPARSE, f"modules.json has a {name} module")
        if name in _MULTI_VECTOR_MODULES:
            return KindDetection(MULTI_VECTOR, f"modules.json has a {name} module")
    for type_name, path in types:
        if type_name.rsplit(".", 1)[-1] == "Transformer":
            config = files.json(f"{path}/{_TRANSFORMER_CONFIG}" if path else _TRANSFORMER_CONFIG)
            task = config.get("transformer_task") if isinstance(config, dict) else None
            if task == "sequence-classification" and len(types) == 1:
                return KindDetection(CROSS, f"{_TRANSFORMER_CONFIG} transformer_task {task!r}")
            if task == "fill-mask" and "SpladePooling" in names:
                return KindDetection(SPARSE, f"{_TRANSFORMER_CONFIG} transformer_task {task!r} + SpladePooling")
    return KindDetection(DENSE, f"modules.json modules {names}")


def _model_dir(source: str | Path | ConfigSource | ModelDir) -> ModelDir:
    from onnx_st.model_dir import ModelDir

    return ModelDir.of(source)


def detect_kind(source: str | Path | ConfigSource | ModelDir) -> KindDetection:
    """Recognise the kind of a model directory (a path, a :class:`~onnx_st.model_dir.ModelDir`, or any
    source of its JSON files).

    In order: ``config_sentence_transformers.json`` ``model_type``; the modules of ``modules.json``
    (Router routes included); ColBERT's ``artifact.metadata``; the ``architectures`` of ``config.json``.

    Raises:
        ConfigError: an unknown ``model_type``, a malformed ``modules.json`` or Router config, or a
            directory none of those files describe.
    """
    files = _model_dir(source)
    looked = "config_sentence_transformers.json, modules.json, artifact.metadata, config.json"
    model_type = files.saved_model_type
    if model_type is not None:
        if not isinstance(model_type, str) or model_type not in _SAVED_MODEL_TYPES:
            raise ConfigError(f"config_sentence_transformers.json: model_type {model_type!r} is not one of "
                              f"{sorted(_SAVED_MODEL_TYPES)}")
        return KindDetection(_SAVED_MODEL_TYPES[model_type], f"config_sentence_transformers.json model_type "
                                                         f"{model_type!r}")
    types = files.module_types
    if types:
        return _from_modules(files, types)
    if files.has_artifact_metadata:
        return KindDetection(MULTI_VECTOR, "artifact.metadata (a Stanford ColBERT checkpoint)")
    archs = files.architectures
    if archs is None:
        raise ConfigError(f"Cannot tell the model kind: none of {looked} describes a model "
                          "(expected a sentence-transformers directory or a Hugging Face model with config.json)")
    if "HF_ColBERT" in archs:
        return KindDetection(MULTI_VECTOR, "config.json architectures ['HF_ColBERT'] (a Stanford ColBERT checkpoint)")
    if any(a.endswith("ForSequenceClassification") for a in archs):
        return KindDetection(CROSS, f"config.json architectures {archs}")
    if any(a.endswith("ForMaskedLM") for a in archs):
        return KindDetection(DENSE, f"config.json architectures {archs} (a bare masked language model)",
                             certain=False, alternatives=(SPARSE, MULTI_VECTOR))
    return KindDetection(DENSE, f"config.json architectures {archs or 'none'} (a bare transformer)",
                         certain=False, alternatives=(MULTI_VECTOR,))


def transformer_folders(model_dir: str | Path | ModelDir) -> list[str]:
    """Folders of the modules that run an ONNX graph, relative to the model root (``""``: the root).

    Router routes included; a directory without ``modules.json`` (a bare Hugging Face model, a legacy
    cross-encoder) is one Transformer in its root (see :attr:`onnx_st.model_dir.ModelDir.transformer_folders`).
    """
    return list(_model_dir(model_dir).transformer_folders)


def check_kind(model_dir: Path | ModelDir, wanted: ModelKind) -> None:
    """Refuse a directory whose files say it is another kind than ``wanted``.

    Raises:
        ConfigError: naming the directory's kind, the evidence and the class to use instead.
    """
    files = _model_dir(model_dir)
    with foreign_errors(ConfigError, f"Cannot tell the model kind of {files.path}"):
        found = detect_kind(files)
    if found.kind is wanted or not found.certain:
        return
    raise ConfigError(f"{files.path} is a {found.kind.model_type} model ({found.kind.description}; "
                      f"{found.evidence}), not a {wanted.model_type}: load it with onnx_st.{found.kind.class_name}")
