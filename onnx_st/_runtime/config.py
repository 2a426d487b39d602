"""Every JSON file of a model directory, read into frozen dataclasses in one place."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from onnx_st.errors import ConfigError, ModelNotFoundError

T = TypeVar("T")

MODULES_FILE = "modules.json"
MODEL_CONFIG_FILE = "config_sentence_transformers.json"
TRANSFORMER_CONFIG_FILES = ("sentence_bert_config.json", "sentence_roberta_config.json",
                            "sentence_distilbert_config.json", "sentence_camembert_config.json",
                            "sentence_albert_config.json", "sentence_xlm-roberta_config.json",
                            "sentence_xlnet_config.json")
SIMILARITY_FN_NAMES = ("cosine", "dot", "euclidean", "manhattan")
TRANSFORMER_TASKS = ("feature-extraction", "fill-mask", "sequence-classification")
SIDES = ("right", "left")
TRANSFORMER_CONFIG_KEYS = ("transformer_task", "model_kwargs", "processor_kwargs", "config_kwargs", "processing_kwargs",
                           "backend", "modality_config", "module_output_name", "unpad_inputs", "query_length",
                           "document_length", "query_expansion", "max_seq_length", "do_lower_case",
                           "tokenizer_name_or_path", "model_args", "tokenizer_args", "config_args", "cache_dir")
"""Keys a Transformer config file may hold: sentence-transformers' constructor parameters and their old names."""
MAX_JSON_BYTES = 64 * 2**20  # a vocabulary-sized IDF file is a few MB; configs are a few KB


def read_json_value(path: Path, *, required: bool = True, default: Any = None) -> Any:
    """Read one JSON file of a model directory, bounded in size and nesting (Python's recursion limit).

    Raises:
        ModelNotFoundError: ``required`` and the file does not exist.
        ConfigError: the file is too large, too deeply nested, not UTF-8 or not valid JSON.
    """
    if not path.is_file():
        if required:
            raise ModelNotFoundError(f"Required file not found: {path}")
        return default
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise ConfigError(f"{path} is {size} bytes; JSON files of a model directory are limited to "
                              f"{MAX_JSON_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
        return json.loads(text)  # nesting beyond Python's recursion limit raises RecursionError
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, OSError) as exc:
        raise ConfigError(f"{path} is not valid JSON: {type(exc).__name__}: {exc}"[:500]) from exc
MULTI_VECTOR_SIMILARITY_FN_NAMES = ("maxsim", "meanmaxsim")
_ABSENT: Any = object()
_CACHED_BYTES = 2**20  # configs are a few KB; a tokenizer.json or an IDF file is read by one reader only


class JsonFiles:
    """Parsed JSON files of one model directory by path, each read once (see :class:`onnx_st.model_dir.ModelDir`).

    While :meth:`active`, :func:`read_json` (every config reader of a load) reads through this cache.
    Files over 1 MiB are read but not kept.
    """

    def __init__(self) -> None:
        self._values: dict[Path, Any] = {}

    def value(self, path: Path, *, required: bool = True, default: Any = None,
              read: Callable[[], Any] | None = None) -> Any:
        """The parsed file at ``path`` (``read()`` when given instead of the file; ``None`` from it: absent).

        Raises:
            ModelNotFoundError: ``required`` and the file does not exist.
            ConfigError: the file is too large, too deeply nested, not UTF-8 or not valid JSON.
        """
        value = self._values.get(path, _ABSENT)
        if value is _ABSENT and path not in self._values:
            if read is not None:
                value = read()
                value = _ABSENT if value is None else value
            else:
                value = read_json_value(path, required=False, default=_ABSENT)
            if value is _ABSENT or read is not None or _small(path):
                self._values[path] = value
        if value is _ABSENT:
            if required:
                raise ModelNotFoundError(f"Required file not found: {path}")
            return default
        return value

    @contextmanager
    def active(self) -> Iterator[None]:
        """Within the block, :func:`read_json` reads through this cache."""
        token = _ACTIVE.set(self)
        try:
            yield
        finally:
            _ACTIVE.reset(token)


_ACTIVE: ContextVar[JsonFiles | None] = ContextVar("onnx_st_json_files", default=None)


def _small(path: Path) -> bool:
    try:
        return path.stat().st_size <= _CACHED_BYTES
    except OSError:
        return False


def read_json(path: Path, *, required: bool = True) -> dict[str, Any]:
    """Read one JSON object; a missing optional file gives ``{}`` (through the active model directory's cache).

    Raises:
        ModelNotFoundError: ``required`` and the file does not exist.
        ConfigError: the file is not valid JSON or not an object.
    """
    files = _ACTIVE.get()
    if files is None:
        data = read_json_value(path, required=required, default={})
    else:
        data = files.value(path, required=required, default={})
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object, got a JSON {type(data).__name__}")
    return data


def inside(model_dir: Path, name: Any, what: str, source: Path | str) -> Path:
    """``model_dir / name`` when that stays inside ``model_dir``; anything else is a ConfigError.

    The check is on the path as written (``..``, absolute paths, drive letters), not on where
    symbolic links point: a Hub cache links every file into its blob store.

    Raises:
        ConfigError: naming ``source`` (the file or option that names the path), ``what`` and the path.
    """
    if not isinstance(name, str) or "\x00" in name:
        raise ConfigError(f"{source}: {what} must be a path relative to the model directory, got {name!r}")
    normalized = name.replace("\\", "/")
    parts = [p for p in normalized.split("/") if p not in ("", ".")]
    if normalized.startswith("/") or os.path.isabs(name) or ":" in (parts[0] if parts else "") or ".." in parts:
        raise ConfigError(f"{source}: {what} {name!r} must be a path inside the model directory {model_dir}")
    return model_dir.joinpath(*parts)


def _where(path: Path | str, key: str) -> str:
    return f"{path}: {key!r}"


def config_int(data: dict[str, Any], key: str, default: T, path: Path | str, *, minimum: int = 1) -> int | T:
    """An integer value ``>= minimum`` (``default`` when absent or null)."""
    value = data.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{_where(path, key)} must be an integer >= {minimum}, got {value!r}")
    return value


def config_bool(data: dict[str, Any], key: str, default: bool, path: Path | str) -> bool:
    """A boolean value (``default`` when absent or null)."""
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ConfigError(f"{_where(path, key)} must be true or false, got {value!r}")
    return value


def config_str(data: dict[str, Any], key: str, default: T, path: Path | str,
               choices: Sequence[str] | None = None) -> str | T:
    """A string value, one of ``choices`` when given (``default`` when absent or null)."""
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, str) or (choices is not None and value not in choices):
        allowed = f"one of {list(choices)}" if choices is not None else "a string"
        raise ConfigError(f"{_where(path, key)} must be {allowed}, got {value!r}")
    return value


def config_dict(data: dict[str, Any], key: str, path: Path | str) -> dict[str, Any]:
    """An object value (``{}`` when absent or null)."""
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{_where(path, key)} must be a JSON object, got {value!r:.80}")
    return value


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


def parse_modules(raw: Any, model_dir: Path, path: Path) -> list[ModuleSpec]:
    """The entries of ``modules.json`` (``raw``, read from ``path``), each module path checked to stay inside.

    Raises:
        ConfigError: not a non-empty list of module objects, or a module path leading out of ``model_dir``.
    """
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{path} must hold a non-empty JSON list of modules, got {type(raw).__name__}")
    specs = []
    for i, entry in enumerate(raw):
        where = f"{path} entry #{i}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be an object with 'idx', 'path' and 'type', got {entry!r:.80}")
        idx = config_int(entry, "idx", i, where, minimum=0)
        module_path = entry.get("path", "")
        inside(model_dir, module_path, "module path", where)
        type_name = entry.get("type")
        if not isinstance(type_name, str) or not type_name:
            raise ConfigError(f"{where}: 'type' must be a sentence-transformers class path, got {type_name!r}")
        specs.append(ModuleSpec(idx, str(entry.get("name", i)), module_path, type_name))
    if len({s.idx for s in specs}) != len(specs):
        raise ConfigError(f"{path}: module 'idx' values must be distinct, got {[s.idx for s in specs]}")
    return specs


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
        path = model_dir / MODEL_CONFIG_FILE
        return cls.parse(read_json(path, required=False), path)

    @classmethod
    def parse(cls, data: dict[str, Any], path: Path | str) -> ModelConfig:
        """The config from the parsed file ``data`` (read from ``path``, named in errors)."""
        prompts = config_dict(data, "prompts", path)
        for name, text in prompts.items():
            if text is not None and not isinstance(text, str):
                raise ConfigError(f"{path}: 'prompts'[{name!r}] must be a string, got {text!r:.80}")
        sim = config_str(data, "similarity_fn_name", None, path)
        if sim == "MaxSim":  # PyLate's spelling; sentence-transformers ignores it and scores with maxsim
            sim = None
        known = SIMILARITY_FN_NAMES + MULTI_VECTOR_SIMILARITY_FN_NAMES
        if sim is not None and sim not in known:
            raise ConfigError(f"{path}: similarity_fn_name {sim!r} is not one of {known}")
        return cls(
            model_type=config_str(data, "model_type", None, path),
            prompts={str(k): v for k, v in prompts.items() if v is not None},
            default_prompt_name=config_str(data, "default_prompt_name", None, path),
            similarity_fn_name=sim,
            truncate_dim=config_int(data, "truncate_dim", None, path),
            activation_fn=config_str(data, "activation_fn", None, path),
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
        path = directory / "config.json"
        return cls.parse(read_json(path, required=False), path)

    @classmethod
    def parse(cls, parsed: dict[str, Any], path: Path | str) -> HFConfig:
        """The config from the parsed ``config.json`` (read from ``path``, named in errors)."""
        data: dict[str, Any] = dict(parsed)
        nested = data.get("text_config")
        text: dict[str, Any] = nested if isinstance(nested, dict) else data
        st_section = config_dict(data, "sentence_transformers", path)
        id2label: dict[int, str] = {}
        for key, label in config_dict(data, "id2label", path).items():
            if not (isinstance(key, str) and key.lstrip("-").isdigit()):
                raise ConfigError(f"{path}: 'id2label' keys must be integers, got {key!r}")
            id2label[int(key)] = str(label)
        if id2label and sorted(id2label) != list(range(len(id2label))):
            raise ConfigError(f"{path}: 'id2label' keys must be 0..{len(id2label) - 1}, got {sorted(id2label)}")
        num_labels = config_int(data, "num_labels", None, path)
        if id2label and num_labels is not None and num_labels != len(id2label):
            raise ConfigError(f"{path}: 'num_labels' is {num_labels} but 'id2label' names {len(id2label)} labels")
        architectures = data.get("architectures") or []
        if not isinstance(architectures, list) or not all(isinstance(a, str) for a in architectures):
            raise ConfigError(f"{path}: 'architectures' must be a list of strings, got {architectures!r:.80}")
        hidden_key = "hidden_size" if "hidden_size" in text else "d_model"
        return cls(
            model_type=config_str(data, "model_type", None, path),
            architectures=tuple(architectures),
            max_position_embeddings=config_int(text, "max_position_embeddings", None, path),
            hidden_size=config_int(text, hidden_key, None, path),
            vocab_size=config_int(text, "vocab_size", None, path),
            id2label=id2label,
            st_activation_fn=config_str(st_section, "activation_fn", None, path),
            raw={**data, "num_labels": num_labels} if num_labels is not None else data,
        )

    @property
    def num_labels(self) -> int:
        """Number of classification labels (1 when the config names none)."""
        return len(self.id2label) or int(self.raw.get("num_labels") or 1)


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
        path = directory / TRANSFORMER_CONFIG_FILES[0]
        for name in TRANSFORMER_CONFIG_FILES:
            if (directory / name).is_file():
                path = directory / name
                saved = read_json(path)
                check_init_keys(saved, TRANSFORMER_CONFIG_KEYS, "Transformer", path)
                data.update(saved)
                break
        processing = config_dict(data, "processing_kwargs", path)
        text_kwargs = config_dict(processing, "text", f"{path} processing_kwargs")
        if text_kwargs.get("max_length") is not None:
            max_len = config_int(text_kwargs, "max_length", None, f"{path} processing_kwargs.text")
        else:
            max_len = config_int(data, "max_seq_length", None, path)
        return cls(
            transformer_task=config_str(data, "transformer_task", default_task, path, TRANSFORMER_TASKS),
            max_seq_length=max_len,
            do_lower_case=config_bool(data, "do_lower_case", False, path),
            module_output_name=config_str(data, "module_output_name", None, path),
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


def check_init_keys(config: dict[str, Any], accepted: Sequence[str], class_name: str, path: Path | str) -> None:
    """Refuse a config key the sentence-transformers constructor of ``class_name`` does not take (it raises
    TypeError there: such a directory does not load in sentence-transformers either).

    Raises:
        ConfigError: naming the first unknown key, in sentence-transformers' wording.
    """
    unknown = sorted(set(config) - set(accepted))
    if unknown:
        raise ConfigError(f"{path}: {class_name}.__init__() got an unexpected keyword argument {unknown[0]!r}")


def read_module_config(directory: Path, file_name: str = "config.json") -> dict[str, Any]:
    """Read a module's own config file (``1_Pooling/config.json`` ...); absent means ``{}``."""
    return read_json(directory / file_name, required=False)
