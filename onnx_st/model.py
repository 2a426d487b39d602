"""What the three front classes share: loading, prompts, providers, saving."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from .config import MODEL_CONFIG_FILE, ModelConfig
from .errors import InputError, ModelNotFoundError
from .export_on_load import LoadSource, ensure_onnx, split_export
from .hub import resolve_model_dir
from .kinds import check_kind, kind_of_class
from .modules import LoadContext, Module, load_modules
from .modules.transformer import Transformer
from .options import LOAD_KWARGS, MODEL_KWARGS, RuntimeOptions
from .pipeline import Pipeline
from .tokenizer import check_texts

_UNSET: Any = object()


def runtime_options(options: RuntimeOptions | None, model_kwargs: dict[str, Any] | None, device: str | None,
                    **overrides: Any) -> RuntimeOptions:
    """One :class:`RuntimeOptions` from an options object, ``model_kwargs``, ``device`` and keyword overrides.

    ``model_kwargs`` and ``device`` (sentence-transformers' names) win over ``options``; overrides left
    unset keep the options' values.

    Raises:
        InputError: unknown ``model_kwargs`` or invalid values.
    """
    if model_kwargs is not None and not isinstance(model_kwargs, dict):
        raise InputError(f"model_kwargs must be a dict, got {type(model_kwargs).__name__}")
    kwargs = {k: v for k, v in (model_kwargs or {}).items() if v is not None}
    unknown = set(kwargs) - set(MODEL_KWARGS)
    if unknown:
        raise InputError(f"Unknown model_kwargs {sorted(unknown)}; supported: {list(MODEL_KWARGS + LOAD_KWARGS)}")
    base = options or RuntimeOptions()
    if not isinstance(base, RuntimeOptions):
        raise InputError(f"options must be a RuntimeOptions, got {type(base).__name__}")
    if kwargs or device is not None:
        built = RuntimeOptions.from_kwargs(device=device, **kwargs)
        changes: dict[str, Any] = {"file_name": built.file_name, "prepack": built.prepack,
                                   "intra_op_num_threads": built.intra_op_num_threads,
                                   "inter_op_num_threads": built.inter_op_num_threads}
        if any(k in kwargs for k in ("provider", "providers", "provider_options")) or device is not None:
            changes["providers"] = built.providers
        base = base.with_overrides(**changes)
    set_now = {k: v for k, v in overrides.items() if v is not _UNSET}
    return replace(base, **set_now) if set_now else base


class BaseModel:
    """A loaded model directory: its modules, prompts and ONNX sessions.

    Args:
        model_name_or_path: a local directory or a Hub repo id.
        backend: only ``"onnx"``; accepted so sentence-transformers code runs unchanged.
        model_kwargs: ``provider``, ``providers``, ``provider_options``, ``file_name``, thread counts, and
            ``export`` (export a model without ONNX file on load; see :mod:`onnx_st.export_on_load`).
        device: ``"cpu"`` or ``"cuda[:N]"`` (mapped to the CUDA execution provider).
        options: a :class:`~onnx_st.RuntimeOptions` (the same object ``serve``, ``embed`` and the Lambda
            handler build); ``model_kwargs``, ``device`` and ``max_batch_tokens`` override its fields.
        prompts, default_prompt_name: override the directory's prompts.
        cache_folder, revision, local_files_only, token: Hub options.
        max_batch_tokens: most rows x tokens per ONNX run; longer batches run in several (``None``: no limit).
    """

    model_kind: ClassVar[str] = "SentenceTransformer"
    default_task: ClassVar[str] = "feature-extraction"
    default_prompt_names: ClassVar[tuple[str, ...]] = ("query", "document")
    dense_input_name: ClassVar[str] = "sentence_embedding"
    task_feature: ClassVar[bool] = False  # modules read the task from features["task"]

    def __init__(self, model_name_or_path: str | Path, *, device: str | None = None,
                 prompts: dict[str, str] | None = None, default_prompt_name: str | None = None,
                 cache_folder: str | Path | None = None, revision: str | None = None, local_files_only: bool = False,
                 token: str | bool | None = None, backend: str = "onnx", model_kwargs: dict[str, Any] | None = None,
                 trust_remote_code: bool = False, options: RuntimeOptions | None = None,
                 max_batch_tokens: int | None = _UNSET, **unused: Any) -> None:
        if backend != "onnx":
            raise InputError(f"onnx-st runs only the 'onnx' backend, got backend={backend!r}")
        model_kwargs, export = split_export(model_kwargs)
        self.options = runtime_options(options, model_kwargs, device, max_batch_tokens=max_batch_tokens,
                                       **self._option_overrides(unused))
        self.model_dir = resolve_model_dir(model_name_or_path, revision=revision, cache_dir=cache_folder,
                                           local_files_only=local_files_only, token=token,
                                           file_name=self.options.file_name)
        check_kind(self.model_dir, type(self))
        source = LoadSource(model_name_or_path, revision, cache_folder, local_files_only, token)
        self.model_dir = ensure_onnx(self.model_dir, kind_of_class(type(self)), source, self.options.file_name, export)
        self.config = ModelConfig.read(self.model_dir)
        ctx = self._load_context(LoadContext(self.model_dir, self.options, self.default_task,
                                             self.dense_input_name))
        modules = load_modules(self.model_dir, ctx)
        self.pipeline = Pipeline(modules if modules is not None else self._default_modules(ctx),
                                 task_feature=self.task_feature)
        self._max_batch_tokens = self.options.max_batch_tokens
        self.prompts = self._merge_prompts(prompts)
        self.default_prompt_name = default_prompt_name or self.config.default_prompt_name
        if self.default_prompt_name is not None and self.default_prompt_name not in self.prompts:
            raise InputError(f"Default prompt name {self.default_prompt_name!r} not found in prompts "
                             f"{sorted(self.prompts)}")

    @classmethod
    def from_dir(cls, path: str | Path, *, provider: str | None = None, file_name: str | None = None,
                 **kwargs: Any) -> BaseModel:
        """Load a local model directory.

        Args:
            path: directory in the sentence-transformers layout with ONNX files under ``onnx/``.
            provider: ONNX Runtime execution provider (default ``CPUExecutionProvider``).
            file_name: ONNX file relative to the Transformer folder (default ``onnx/model.onnx``).
            **kwargs: ``providers``, ``provider_options``, ``intra_op_num_threads``, ``inter_op_num_threads``,
                and the constructor's own keywords (``prompts``, ``truncate_dim``...).

        Raises:
            ModelNotFoundError, ConfigError, OnnxModelError, ProviderError.

        Example:
            >>> model = Encoder.from_dir("all-minilm-l6-v2-onnx", provider="CPUExecutionProvider")
        """
        if not Path(path).expanduser().is_dir():
            raise ModelNotFoundError(f"Model directory not found: {path}")
        return cls.from_pretrained(path, file_name=file_name, provider=provider, local_files_only=True, **kwargs)

    @classmethod
    def from_pretrained(cls, repo_id_or_path: str | Path, *, revision: str | None = None,
                        file_name: str | None = None, local_files_only: bool = False,
                        cache_dir: str | Path | None = None, token: str | bool | None = None,
                        **kwargs: Any) -> BaseModel:
        """Load from a Hub repo id (only the needed files are fetched) or a local path.

        Example:
            >>> model = Encoder.from_pretrained("sentence-transformers/all-MiniLM-L6-v2", local_files_only=True)
        """
        session = {k: kwargs.pop(k) for k in MODEL_KWARGS + LOAD_KWARGS if k in kwargs}
        if file_name is not None:
            session["file_name"] = file_name
        return cls(repo_id_or_path, revision=revision, local_files_only=local_files_only, cache_folder=cache_dir,
                   token=token, model_kwargs=session, **kwargs)

    def _option_overrides(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Kind-specific constructor keywords that are runtime options (popped from ``kwargs``)."""
        return {}

    def _merge_prompts(self, user: dict[str, str] | None) -> dict[str, str]:
        """The kind's blank prompts, then the user's, then saved prompts for keys still unset."""
        merged: dict[str, str | None] = {**dict.fromkeys(self.default_prompt_names), **(user or {})}
        for name, text in self.config.prompts.items():
            if merged.get(name) is None:
                merged[name] = text
        return {name: text or "" for name, text in merged.items()}

    def _load_context(self, ctx: LoadContext) -> LoadContext:
        """The kind's adjustments of what module loaders get."""
        return ctx

    def _default_modules(self, ctx: LoadContext) -> list[Module]:
        """Modules for a directory without ``modules.json``."""
        raise NotImplementedError

    def _transformers(self) -> list[Transformer]:
        """Every Transformer module, inside Routers and fused sparse heads too."""
        found: list[Transformer] = []
        pending: list[Any] = list(self.pipeline.modules)
        while pending:
            module = pending.pop(0)
            if isinstance(module, Transformer):
                found.append(module)
            pending.extend(chain for route in getattr(module, "routes", {}).values() for chain in route)
            inner = getattr(module, "transformer", None)
            if inner is not None:
                pending.append(inner)
        return found

    @property
    def max_batch_tokens(self) -> int | None:
        """Most rows x tokens of one ONNX run (``None``: a whole batch per run)."""
        return self._max_batch_tokens

    @max_batch_tokens.setter
    def max_batch_tokens(self, value: int | None) -> None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InputError(f"max_batch_tokens must be a positive integer or None, got {value!r}")
        self._max_batch_tokens = value
        for transformer in self._transformers():
            transformer.max_batch_tokens = value

    def get_backend(self) -> str:
        """Always ``"onnx"``."""
        return "onnx"

    @property
    def modules(self) -> list[Module]:
        """The modules in order."""
        return self.pipeline.modules

    @property
    def tokenizer(self) -> Any:
        """The ``tokenizers.Tokenizer`` of the input module, when it has one."""
        tok = getattr(self.pipeline.input_module, "tokenizer", None)
        return getattr(tok, "backend", tok)

    @property
    def max_seq_length(self) -> int | None:
        """Truncation length of the input module."""
        return getattr(self.pipeline.input_module, "max_seq_length", None)

    def _resolve_prompt(self, prompt: str | None, prompt_name: str | None) -> str | None:
        if prompt is not None:
            return prompt
        if prompt_name is not None:
            if prompt_name not in self.prompts:
                raise InputError(f"Prompt name {prompt_name!r} not found in the configured prompts dictionary "
                                 f"with keys {sorted(self.prompts)!r}")
            return self.prompts[prompt_name]
        if self.default_prompt_name is not None:
            return self.prompts.get(self.default_prompt_name)
        return None

    @staticmethod
    def _as_text_list(sentences: Any, what: str = "input") -> tuple[list[str], bool]:
        """Normalize ``str | Sequence[str]`` to a list; the flag says a single string was passed."""
        if isinstance(sentences, str):
            return [sentences], True
        if sentences is None or (not isinstance(sentences, (Sequence,)) and not hasattr(sentences, "__array__")):
            raise InputError(f"{what} must be a str or a list of str, got {type(sentences).__name__}")
        return check_texts(list(sentences), what), False

    def save_pretrained(self, path: str | Path) -> None:
        """Write a directory that reloads with ``local_files_only=True`` (ONNX files included)."""
        target = Path(path)
        if target.resolve() != self.model_dir.resolve():
            shutil.copytree(self.model_dir, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".cache"))
        data = dict(self.config.raw)
        data.update({"model_type": self.model_kind, "prompts": self.prompts,
                     "default_prompt_name": self.default_prompt_name})
        data.update(self._extra_config())
        (target / MODEL_CONFIG_FILE).write_text(json.dumps(data, indent=2), encoding="utf-8")

    save = save_pretrained

    def _extra_config(self) -> dict[str, Any]:
        """Kind-specific keys written by ``save_pretrained``."""
        return {}

    def __repr__(self) -> str:
        names = ", ".join(type(m).__name__ for m in self.modules)
        return f"{type(self).__name__}(dir={str(self.model_dir)!r}, modules=[{names}])"
