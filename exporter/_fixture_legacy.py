"""Fixtures written in older on-disk formats that sentence-transformers 6.2 still loads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import _deps  # noqa: F401  (raises ImportError with the install command without the export extra)
from ._tiny import MAX_SEQ_LENGTH, save_tiny_hf_model


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
