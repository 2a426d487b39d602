"""Multi-vector directories saved before sentence-transformers 6: PyLate and Stanford ColBERT.

sentence-transformers 6.3 reads both without conversion; so does onnx-st (given an ONNX graph of
the encoder under ``onnx/``):

* PyLate (``config_sentence_transformers.json`` with ``model_type: ColBERT``): ``modules.json`` lists
  only the Transformer and ``pylate.models.Dense.Dense``; query / document lengths, expansion and
  the skiplist sit at the top of ``config_sentence_transformers.json``, the ``[Q] `` / ``[D] ``
  prefixes under ``query_prefix`` / ``document_prefix``. A MultiVectorMask and a token Normalize follow.
* Stanford ColBERT (``config.json`` ``architectures: ["HF_ColBERT"]``, no ``modules.json``): the
  projection is ``linear.weight`` of the root ``model.safetensors``; lengths, expansion and the
  query / document marker tokens come from ``artifact.metadata``.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from onnx_st._runtime.config import MODEL_CONFIG_FILE, MODULES_FILE, config_int, config_str, read_json
from onnx_st._runtime.weights import load_safetensors
from onnx_st.errors import ConfigError, ModelNotFoundError
from onnx_st.model_dir import ModelDir
from onnx_st.modules import LoadContext, Module
from onnx_st.modules.dense import Dense
from onnx_st.modules.multi_vector_mask import MultiVectorMask
from onnx_st.modules.normalize import Normalize
from onnx_st.modules.transformer import Transformer

_PYLATE_KNOBS = ("query_length", "document_length", "query_expansion")
_PYLATE_MARKERS = (*_PYLATE_KNOBS, "do_query_expansion", "attend_to_expansion_tokens", "attend_to_mask_tokens",
                   "query_prefix", "document_prefix", "skiplist_words")


@dataclass(frozen=True)
class LegacyLayout:
    """What a legacy save implies: Transformer config defaults, prompt prefixes, the skiplist."""

    kind: str = "native"  # "native", "pylate" or "stanford"
    transformer_defaults: dict[str, Any] = field(default_factory=dict)
    prefixes: dict[str, str] = field(default_factory=dict)
    skiplist_words: list[str] | None = None


def _pylate(config: dict[str, Any]) -> LegacyLayout:
    """Read PyLate's top-level keys as sentence-transformers 6.3 does."""
    prefixes = {prompt: config_str(config, key, "", MODEL_CONFIG_FILE)
                for key, prompt in (("query_prefix", "query"), ("document_prefix", "document")) if key in config}
    knobs = {k: config[k] for k in _PYLATE_KNOBS if k in config and (config[k] is not None or k == "query_expansion")}
    if "query_expansion" not in knobs and any(k in config for k in _PYLATE_MARKERS):
        if config.get("do_query_expansion") is False:
            knobs["query_expansion"] = None
        else:
            attend = config.get("attend_to_expansion_tokens", config.get("attend_to_mask_tokens"))
            length = knobs.pop("query_length", None) or config.get("query_length") or 32
            knobs["query_expansion"] = {"strategy": "fixed", "attend": bool(attend), "length": length}
    skiplist = config.get("skiplist_words")
    if skiplist is not None and (not isinstance(skiplist, list) or not all(isinstance(w, str) for w in skiplist)):
        raise ConfigError(f"{MODEL_CONFIG_FILE}: 'skiplist_words' must be a list of strings, got {skiplist!r:.80}")
    kind = "pylate" if config.get("model_type") == "ColBERT" else "native"
    if kind == "pylate" and skiplist is None:
        skiplist = list(string.punctuation)  # PyLate's default
    return LegacyLayout(kind, knobs, prefixes, skiplist)


def _stanford(files: ModelDir) -> LegacyLayout:
    """Read ``artifact.metadata`` (defaults when absent) as sentence-transformers 6.3 does."""
    path = files.file("artifact.metadata")
    metadata = files.json_object("artifact.metadata")
    prefixes = {"query": (config_str(metadata, "query_token_id", "", path) or "[unused0]") + " ",
                "document": (config_str(metadata, "doc_token_id", "", path) or "[unused1]") + " "}
    defaults: dict[str, Any] = {"query_expansion": {"strategy": "fixed",
                                                    "attend": bool(metadata.get("attend_to_mask_tokens")),
                                                    "length": config_int(metadata, "query_maxlen", 32, path)}}
    if metadata.get("doc_maxlen") is not None:
        defaults["document_length"] = config_int(metadata, "doc_maxlen", None, path)
    skiplist = list(string.punctuation) if metadata.get("mask_punctuation", True) else []
    return LegacyLayout("stanford", defaults, prefixes, skiplist)


def read_layout(files: ModelDir, raw_config: dict[str, Any]) -> LegacyLayout:
    """The legacy layout of a multi-vector directory (``kind="native"`` for sentence-transformers 6 saves)."""
    if not files.has(MODULES_FILE) and "HF_ColBERT" in files.hf_config().architectures:
        return _stanford(files)
    return _pylate(raw_config)


def legacy_prompts(layout: LegacyLayout, saved: dict[str, str]) -> dict[str, str]:
    """Prompts with the legacy prefixes in front of the saved prompt text (PyLate inserts the prefix first)."""
    if layout.kind == "stanford":
        return {role: saved.get(role) or prefix for role, prefix in layout.prefixes.items()}
    return {role: prefix + (saved.get(role) or "").removeprefix(prefix) for role, prefix in layout.prefixes.items()}


def token_level_tail(layout: LegacyLayout) -> list[Module]:
    """The MultiVectorMask and token Normalize that PyLate saves leave out of ``modules.json``."""
    return [MultiVectorMask(layout.skiplist_words), Normalize("token_embeddings")]


def legacy_modules(ctx: LoadContext, layout: LegacyLayout) -> list[Module]:
    """Modules of a directory without ``modules.json`` (Stanford ColBERT).

    Raises:
        ConfigError: a bare transformer, whose projection sentence-transformers would draw at random.
        ModelNotFoundError: a Stanford checkpoint without ``model.safetensors``.
    """
    if layout.kind != "stanford":
        raise ConfigError(f"{ctx.model_dir} has no modules.json and is not a Stanford ColBERT checkpoint; a bare "
                          "transformer gets a randomly initialised projection in sentence-transformers. Save it with "
                          "sentence-transformers first or export it with onnx-st-export --kind multi-vector")
    path = ctx.model_dir / "model.safetensors"
    if not path.is_file():
        raise ModelNotFoundError(f"{path} not found: the Stanford ColBERT projection (linear.weight) is read from it")
    weights = load_safetensors(path)
    if "linear.weight" not in weights:
        raise ConfigError(f"{path} has no 'linear.weight': not a Stanford ColBERT checkpoint")
    dense = Dense(weights["linear.weight"], None, "Identity", module_input_name="token_embeddings")
    return [Transformer.load(ctx.model_dir, ctx), dense, *token_level_tail(layout)]


_TYPES = {"Transformer": "sentence_transformers.base.modules.transformer.Transformer",
          "Dense": "sentence_transformers.base.modules.dense.Dense",
          "MultiVectorMask": "sentence_transformers.multi_vector_encoder.modules.multi_vector_mask.MultiVectorMask",
          "Normalize": "sentence_transformers.base.modules.normalize.Normalize"}


def _write(path: Path, content: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")


def write_native_layout(target: Path, modules: list[Module]) -> None:
    """Rewrite a saved copy of a legacy directory in sentence-transformers 6's layout (``modules.json``
    with Transformer, Dense, MultiVectorMask, Normalize), as sentence-transformers' own save does; the
    tokenizer keeps its prefix tokens as special tokens."""
    from safetensors.numpy import save_file

    transformer, dense, mask = modules[0], modules[1], modules[2]
    if not (isinstance(transformer, Transformer) and isinstance(dense, Dense) and isinstance(mask, MultiVectorMask)):
        raise ConfigError(f"Cannot write {[type(m).__name__ for m in modules]} in the native multi-vector layout")
    backend = Tokenizer.from_str(transformer.tokenizer.raw_backend.to_str())
    backend.no_padding()
    backend.no_truncation()
    backend.save(str(target / "tokenizer.json"))
    bert_config = read_json(target / "sentence_bert_config.json", required=False)
    config = transformer.config
    bert_config.update({"transformer_task": "feature-extraction", "module_output_name": "token_embeddings",
                        "query_length": config.query_length, "document_length": config.document_length,
                        "query_expansion": config.query_expansion})
    _write(target / "sentence_bert_config.json", {k: v for k, v in bert_config.items()
                                                   if v is not None or k == "query_expansion"})
    weight = np.ascontiguousarray(dense.weight_t.T)
    _write(target / "1_Dense" / "config.json", {
        "in_features": int(weight.shape[1]), "out_features": int(weight.shape[0]), "bias": dense.bias is not None,
        "activation_function": "torch.nn.modules.linear.Identity", "module_input_name": "token_embeddings",
        "module_output_name": "token_embeddings"})
    tensors = {"linear.weight": weight} | ({"linear.bias": dense.bias} if dense.bias is not None else {})
    save_file(tensors, str(target / "1_Dense" / "model.safetensors"))
    _write(target / "2_MultiVectorMask" / "config.json", mask.config())
    _write(target / "3_Normalize" / "config.json", {"module_input_name": "token_embeddings",
                                                   "module_output_name": "token_embeddings"})
    _write(target / "modules.json", [
        {"idx": i, "name": str(i), "path": path, "type": _TYPES[name]}
        for i, (path, name) in enumerate([("", "Transformer"), ("1_Dense", "Dense"),
                                          ("2_MultiVectorMask", "MultiVectorMask"), ("3_Normalize", "Normalize")])])
    st_config = read_json(target / MODEL_CONFIG_FILE, required=False)
    _write(target / MODEL_CONFIG_FILE, {k: v for k, v in st_config.items() if k not in _PYLATE_MARKERS})
