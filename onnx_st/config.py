"""Every JSON file of a model directory, read into frozen dataclasses in one place."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, ModelNotFoundError

MODULES_FILE = "modules.json"
MODEL_CONFIG_FILE = "config_sentence_transformers.json"
TRANSFORMER_CONFIG_FILES = ("sentence_bert_config.json", "sentence_roberta_config.json",
                            "sentence_distilbert_config.json", "sentence_camembert_config.json",
                            "sentence_albert_config.json", "sentence_xlm-roberta_config.json",
                            "sentence_xlnet_config.json")
SIMILARITY_FN_NAMES = ("cosine", "dot", "euclidean", "manhattan")
MULTI_VECTOR_SIMILARITY_FN_NAMES = ("maxsim", "meanmaxsim")


def read_json(path: Path, *, required: bool = True) -> dict[str, Any]:
    """Read one JSON object; a missing optional file gives ``{}``.

    Raises:
        ModelNotFoundError: ``required`` and the file does not exist.
        ConfigError: the file is not valid JSON or not an object.
    """
    if not path.is_file():
        if required:
            raise ModelNotFoundError(f"Required file not found: {path}")
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, (dict, list)):
        raise ConfigError(f"{path} must hold a JSON object, got {type(data).__name__}")
    return data  # type: ignore[return-value]


@dataclass(frozen=True)
class ModuleSpec:
    """One entry of ``modules.json``: where a module lives and which class it is."""

    idx: int
    name: str
    path: str
    type: str

    @property
    def class_name(self) -> str:
        """The bare class name of the sentence-transformers type string."""
        return self.type.rsplit(".", 1)[-1]


def read_modules(model_dir: Path) -> list[ModuleSpec] | None:
    """Read ``modules.json``; ``None`` when the directory has none (older cross-encoders, bare HF models)."""
    path = model_dir / MODULES_FILE
    if not path.is_file():
        return None
    raw = read_json(path)
    if not isinstance(raw, list):
        raise ConfigError(f"{path} must hold a JSON list of modules")
    try:
        return [ModuleSpec(int(m.get("idx", i)), str(m.get("name", i)), str(m.get("path", "")), str(m["type"]))
                for i, m in enumerate(raw)]
    except (KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{path}: every module needs a 'type': {exc}") from exc


@dataclass(frozen=True)
class ModelConfig:
    """``config_sentence_transformers.json``: prompts, similarity and the model kind."""

    model_type: str | None = None
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None
    similarity_fn_name: str | None = None
    truncate_dim: int | None = None
    activation_fn: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, model_dir: Path) -> ModelConfig:
        """Read the file; absent means defaults."""
        data = read_json(model_dir / MODEL_CONFIG_FILE, required=False)
        prompts = data.get("prompts") or {}
        if not isinstance(prompts, dict):
            raise ConfigError(f"{MODEL_CONFIG_FILE}: 'prompts' must be an object")
        sim = data.get("similarity_fn_name")
        known = SIMILARITY_FN_NAMES + MULTI_VECTOR_SIMILARITY_FN_NAMES
        if sim == "MaxSim":  # PyLate's spelling; sentence-transformers ignores it and scores with maxsim
            sim = None
        if sim is not None and sim not in known:
            raise ConfigError(f"{MODEL_CONFIG_FILE}: similarity_fn_name {sim!r} is not one of {known}")
        return cls(
            model_type=data.get("model_type"),
            prompts={str(k): str(v) for k, v in prompts.items() if v is not None},
            default_prompt_name=data.get("default_prompt_name"),
            similarity_fn_name=sim,
            truncate_dim=data.get("truncate_dim"),
            activation_fn=data.get("activation_fn"),
            raw=data,
        )


@dataclass(frozen=True)
class HFConfig:
    """The parts of the Hugging Face ``config.json`` the runtime needs."""

    model_type: str | None = None
    architectures: tuple[str, ...] = ()
    max_position_embeddings: int | None = None
    hidden_size: int | None = None
    vocab_size: int | None = None
    id2label: dict[int, str] = field(default_factory=dict)
    st_activation_fn: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, directory: Path) -> HFConfig:
        """Read ``config.json`` of a transformer directory; absent means defaults."""
        data: dict[str, Any] = dict(read_json(directory / "config.json", required=False))
        nested = data.get("text_config")
        text: dict[str, Any] = nested if isinstance(nested, dict) else data
        st_section = data.get("sentence_transformers") or {}
        id2label = {int(k): str(v) for k, v in (data.get("id2label") or {}).items()}
        return cls(
            model_type=data.get("model_type"),
            architectures=tuple(data.get("architectures") or ()),
            max_position_embeddings=text.get("max_position_embeddings"),
            hidden_size=text.get("hidden_size", text.get("d_model")),
            vocab_size=text.get("vocab_size"),
            id2label=id2label,
            st_activation_fn=st_section.get("activation_fn") if isinstance(st_section, dict) else None,
            raw=data,
        )

    @property
    def num_labels(self) -> int:
        """Number of classification labels (1 when the config names none)."""
        return len(self.id2label) or int(self.raw.get("num_labels", 1))


@dataclass(frozen=True)
class TransformerConfig:
    """``sentence_bert_config.json`` of a Transformer module (old and new keys)."""

    transformer_task: str = "feature-extraction"
    max_seq_length: int | None = None
    do_lower_case: bool = False
    module_output_name: str | None = None
    processing_kwargs: dict[str, Any] = field(default_factory=dict)
    query_length: int | None = None
    document_length: int | None = None
    query_expansion: dict[str, Any] | None = None

    @classmethod
    def read(cls, directory: Path, default_task: str = "feature-extraction",
             defaults: dict[str, Any] | None = None) -> TransformerConfig:
        """Read the first Transformer config file found in ``directory``; ``defaults`` fill keys it lacks."""
        data: dict[str, Any] = dict(defaults or {})
        for name in TRANSFORMER_CONFIG_FILES:
            if (directory / name).is_file():
                data.update(read_json(directory / name))
                break
        processing = data.get("processing_kwargs") or {}
        text_kwargs = processing.get("text") or {}
        max_len = text_kwargs.get("max_length", data.get("max_seq_length"))
        return cls(
            transformer_task=data.get("transformer_task", default_task),
            max_seq_length=int(max_len) if max_len is not None else None,
            do_lower_case=bool(data.get("do_lower_case", False)),
            module_output_name=data.get("module_output_name"),
            processing_kwargs=processing,
            query_length=_optional_length(data, "query_length"),
            document_length=_optional_length(data, "document_length"),
            query_expansion=data.get("query_expansion"),
        )


def _optional_length(data: dict[str, Any], key: str) -> int | None:
    """A positive integer length of a Transformer config, or ``None``."""
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"sentence_bert_config.json: {key} must be a positive integer or null, got {value!r}")
    return value


def read_module_config(directory: Path, file_name: str = "config.json") -> dict[str, Any]:
    """Read a module's own config file (``1_Pooling/config.json`` ...); absent means ``{}``."""
    data = read_json(directory / file_name, required=False)
    if not isinstance(data, dict):
        raise ConfigError(f"{directory / file_name} must hold a JSON object")
    return data
