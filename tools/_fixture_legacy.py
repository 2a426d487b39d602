"""Fixtures written in older on-disk formats that sentence-transformers 6.3 still loads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from exporter import _deps  # noqa: F401  (raises ImportError with the install command without the export extra)
from tools._tiny import MAX_SEQ_LENGTH, save_tiny_hf_model


def write_json(path: Path, content: Any, indent: int = 2) -> None:
    """Write ``content`` as UTF-8 JSON with a trailing newline."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=indent, ensure_ascii=False) + "\n", encoding="utf8")


def write_dense_legacy(target: Path) -> None:
    """A sentence-transformers 2.x style directory: old module paths and config keys.

    ``sentence_bert_config.json`` carries ``max_seq_length`` (64, while tokenizer_config.json says
    512) and ``do_lower_case`` (the tokenizer itself is cased); Pooling uses the old
    ``pooling_mode_*_tokens`` booleans; ``2_Normalize`` has no folder at all (as on the Hub).
    tokenizer.json keeps stale truncation (128) and fixed padding (128) settings, as many Hub
    models do; sentence-transformers ignores both (it truncates at ``max_seq_length``).
    """
    save_tiny_hf_model(target, seed=9, lowercase=False, model_max_length=512)
    tokenizer = json.loads((target / "tokenizer.json").read_text(encoding="utf8"))
    tokenizer["truncation"] = {"direction": "Right", "max_length": 128, "strategy": "LongestFirst", "stride": 0}
    tokenizer["padding"] = {
        "strategy": {"Fixed": 128},
        "direction": "Right",
        "pad_to_multiple_of": None,
        "pad_id": 0,
        "pad_type_id": 0,
        "pad_token": "[PAD]",
    }
    write_json(target / "tokenizer.json", tokenizer)
    write_json(
        target / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
    )
    write_json(target / "sentence_bert_config.json", {"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": True})
    write_json(
        target / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": 32,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
        },
    )
    write_json(
        target / "config_sentence_transformers.json",
        {"__version__": {"sentence_transformers": "2.0.0", "transformers": "4.6.1", "pytorch": "1.8.1"}},
    )


def write_cross_legacy(target: Path) -> None:
    """A CrossEncoder saved before modules.json existed: a plain Hugging Face directory.

    The activation lives in config.json under ``sentence_transformers.activation_fn``; it is
    Identity here, so scores are raw logits although the model has a single label (whose
    default would be Sigmoid).
    """
    save_tiny_hf_model(target, head="cls", seed=33, num_labels=1)
    config = json.loads((target / "config.json").read_text(encoding="utf8"))
    config["sentence_transformers"] = {"activation_fn": "torch.nn.modules.linear.Identity", "version": "3.4.1"}
    write_json(target / "config.json", config)


PYLATE_SKIPLIST = [".", ",", "?", "!"]


def _seeded_projection(seed: int) -> Any:
    import torch

    return torch.randn(16, 32, generator=torch.Generator().manual_seed(seed))


def write_multi_vector_pylate(target: Path) -> None:
    """A PyLate (``model_type: ColBERT``) save: ``[Q] ``/``[D] `` added to the tokenizer, ``modules.json``
    with the Transformer and ``pylate.models.Dense.Dense`` only, lengths and skiplist at the top of
    ``config_sentence_transformers.json`` (expansion implied: fixed to ``query_length``, not attended)."""
    from safetensors.torch import save_file
    from transformers import AutoTokenizer, BertModel

    save_tiny_hf_model(target, seed=46)
    tokenizer = AutoTokenizer.from_pretrained(str(target))
    tokenizer.add_tokens(["[Q] ", "[D] "])
    model = BertModel.from_pretrained(str(target))
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    model.save_pretrained(target, safe_serialization=True)
    tokenizer.save_pretrained(str(target))
    write_json(target / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Dense", "type": "pylate.models.Dense.Dense"},
    ])
    write_json(target / "sentence_bert_config.json", {"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False})
    write_json(target / "1_Dense" / "config.json", {"in_features": 32, "out_features": 16, "bias": False,
                                                    "activation_function": "torch.nn.modules.linear.Identity"})
    save_file({"linear.weight": _seeded_projection(146).contiguous()}, str(target / "1_Dense" / "model.safetensors"))
    write_json(target / "config_sentence_transformers.json", {
        "__version__": {"sentence_transformers": "3.4.1", "transformers": "4.48.2", "pytorch": "2.5.1",
                        "pylate": "1.1.7"},
        "prompts": {}, "default_prompt_name": None, "similarity_fn_name": "MaxSim", "model_type": "ColBERT",
        "query_prefix": "[Q] ", "document_prefix": "[D] ", "query_length": 16, "document_length": 48,
        "attend_to_expansion_tokens": False, "skiplist_words": PYLATE_SKIPLIST,
    })


def write_multi_vector_stanford(target: Path) -> None:
    """A Stanford ColBERT checkpoint: ``HF_ColBERT`` config, encoder weights under ``bert.`` and the
    projection as ``linear.weight`` in one ``model.safetensors``, settings in ``artifact.metadata``;
    two vocabulary entries renamed ``[unused0]`` / ``[unused1]`` (the query / document markers)."""
    from safetensors.torch import load_file, save_file

    save_tiny_hf_model(target, seed=47)
    weights = {f"bert.{key}": value for key, value in load_file(str(target / "model.safetensors")).items()}
    weights["linear.weight"] = _seeded_projection(147)
    save_file({k: v.contiguous() for k, v in weights.items()}, str(target / "model.safetensors"))
    config = json.loads((target / "config.json").read_text(encoding="utf8"))
    config["architectures"] = ["HF_ColBERT"]
    write_json(target / "config.json", config)
    tokenizer = json.loads((target / "tokenizer.json").read_text(encoding="utf8"))
    vocab: dict[str, int] = tokenizer["model"]["vocab"]
    by_id = {i: token for token, i in vocab.items()}
    for marker, token_id in (("[unused0]", len(vocab) - 2), ("[unused1]", len(vocab) - 1)):
        del vocab[by_id[token_id]]
        vocab[marker] = token_id
    write_json(target / "tokenizer.json", tokenizer)
    if (target / "vocab.txt").is_file():
        (target / "vocab.txt").unlink()
    write_json(target / "artifact.metadata", {
        "query_token_id": "[unused0]", "doc_token_id": "[unused1]", "query_maxlen": 16, "doc_maxlen": 48,
        "attend_to_mask_tokens": False, "mask_punctuation": True, "dim": 16, "similarity": "cosine",
    })
