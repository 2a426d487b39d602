"""BaseModel: what the four model classes share: loading, prompts, providers, saving and sentence-transformers' calling conventions."""

from __future__ import annotations

import inspect
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Concatenate, Literal, ParamSpec, TypeVar

import numpy as np

from onnx_st._runtime.config import MODEL_CONFIG_FILE
from onnx_st._runtime.inputs import (
    IGNORED_INIT_KWARGS,
    IGNORED_MODEL_KWARGS,
    as_input_list,
    has_max_seq_length_setter,
    is_batch,
    processing_max_length,
)
from onnx_st._runtime.tokenizer import check_encodable
from onnx_st.base.pipeline import Pipeline
from onnx_st.base.pool import MultiProcessPool, start_pool, stop_pool
from onnx_st.errors import InputError, ModelNotFoundError
from onnx_st.export_hook import LoadSource, ensure_onnx, split_export
from onnx_st.hub import resolve_model_files
from onnx_st.kinds import ModelKind, check_kind, get_kind
from onnx_st.model_dir import ModelDir
from onnx_st.modules import LoadContext, Module, assemble, load_modules
from onnx_st.modules.pooling import Pooling
from onnx_st.modules.router import Router
from onnx_st.options import LOAD_KWARGS, MODEL_KWARGS, RuntimeOptions

_UNSET: Any = object()
logger = logging.getLogger("onnx_st")

TASK_PROMPT_NAMES: dict[str, tuple[str, ...]] = {"query": ("query",), "document": ("document", "passage", "corpus")}
"""The prompts ``encode_query`` / ``encode_document`` pick by default: the first the model has."""

_CUDA_DEVICE_PROVIDERS = frozenset({"CUDAExecutionProvider", "TensorrtExecutionProvider", "ROCMExecutionProvider",
                                    "MIGraphXExecutionProvider"})
"""Execution providers that run on the device sentence-transformers calls ``cuda:N``."""

_Model = TypeVar("_Model", bound="BaseModel")
_Params = ParamSpec("_Params")
_Result = TypeVar("_Result")


def for_task(task: Literal["query", "document"], method: Callable[Concatenate[_Model, str, _Params], _Result],
             doc: str) -> Callable[Concatenate[_Model, _Params], _Result]:
    """``method`` with its first argument (the task) fixed: ``encode_query`` and ``encode_document`` built
    from one definition of their parameters, each shown with that signature (less ``task``) and ``doc``."""
    def call(self: _Model, /, *args: _Params.args, **kwargs: _Params.kwargs) -> _Result:
        return method(self, task, *args, **kwargs)

    signature = inspect.signature(method)
    call.__name__ = f"encode_{task}"
    call.__qualname__ = f"{method.__qualname__.rpartition('.')[0]}.encode_{task}"
    call.__module__ = method.__module__
    call.__doc__ = doc
    vars(call)["__signature__"] = signature.replace(
        parameters=[p for p in signature.parameters.values() if p.name != "task"])
    return call


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
    for key in IGNORED_MODEL_KWARGS & set(kwargs):
        logger.warning("model_kwargs[%r] is a torch option and has no effect in onnx-st", key)
        kwargs.pop(key)
    unknown = set(kwargs) - set(MODEL_KWARGS)
    if unknown:
        raise InputError(f"Unknown model_kwargs {sorted(unknown)}; supported: {list(MODEL_KWARGS + LOAD_KWARGS)}")
    base = options or RuntimeOptions()
    if not isinstance(base, RuntimeOptions):
        raise InputError(f"options must be a RuntimeOptions, got {type(base).__name__}")
    if kwargs or device is not None:
        built = RuntimeOptions.from_kwargs(device=device, **kwargs)
        changes: dict[str, Any] = {"file_name": built.file_name, "prepack": built.prepack,
                                   "parallel_runs": built.parallel_runs if "parallel_runs" in kwargs else None,
                                   "intra_op_num_threads": built.intra_op_num_threads,
                                   "inter_op_num_threads": built.inter_op_num_threads}
        if any(k in kwargs for k in ("provider", "providers", "provider_options")) or device is not None:
            changes["providers"] = built.providers
        base = base.with_overrides(**changes)
    set_now = {k: v for k, v in overrides.items() if v is not _UNSET}
    return replace(base, **set_now) if set_now else base


@dataclass(frozen=True)
class OutputColumn:
    """One column an ``onnx-st embed`` job writes per row.

    Attributes:
        name: the column name.
        dtype: ``float32`` or ``int32`` values.
        nesting: 0: one value per row; 1: a list of values; 2: a list of lists (one per token).
        width: the length of the innermost lists when fixed (``None``: variable).
    """

    name: str
    dtype: Literal["float32", "int32"] = "float32"
    nesting: int = 0
    width: int | None = None


class BaseModel(ABC):
    """A loaded model directory: its modules, prompts and ONNX sessions.

    Args:
        model_name_or_path: a local directory or a Hub repo id.
        backend: only ``"onnx"``; accepted so sentence-transformers code runs unchanged.
        model_kwargs: ``provider``, ``providers``, ``provider_options``, ``file_name``, thread counts, and
            ``export`` (export a model without ONNX file on load; see :mod:`onnx_st.export_hook`).
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

    def __init__(self, model_name_or_path: str | Path | None = None, *, device: str | None = None,
                 prompts: dict[str, str] | None = None, default_prompt_name: str | None = None,
                 cache_folder: str | Path | None = None, revision: str | None = None, local_files_only: bool = False,
                 token: str | bool | None = None, backend: str = "onnx", model_kwargs: dict[str, Any] | None = None,
                 trust_remote_code: bool = False, options: RuntimeOptions | None = None,
                 max_batch_tokens: int | None = _UNSET, **unused: Any) -> None:
        if backend != "onnx":
            raise InputError(f"onnx-st runs only the 'onnx' backend, got backend={backend!r}")
        model_kwargs, export = split_export(model_kwargs)
        if model_name_or_path is None:
            raise InputError(f"{type(self).__name__} needs model_name_or_path (an exported directory or a Hub repo "
                             "id); building a model from torch modules (modules=...) is not supported")
        overrides = self._option_overrides(unused)
        token = self._check_init_kwargs(unused, token)
        self.options = runtime_options(options, model_kwargs, device, max_batch_tokens=max_batch_tokens,
                                       **overrides)
        # one ModelDir per load: each JSON file of the directory is read once, by whoever asks first
        files = resolve_model_files(model_name_or_path, revision=revision, cache_dir=cache_folder,
                                    local_files_only=local_files_only, token=token, file_name=self.options.file_name)
        source = LoadSource(model_name_or_path, revision, cache_folder, local_files_only, token)
        with files.reading():
            check_kind(files, self.kind)
            files = ensure_onnx(files, self.kind, source, self.options.file_name, export)
        self.model_files: ModelDir = files  # the model directory's files, as this load read them
        self.model_dir = files.path
        with files.reading():
            self.config = files.config
            ctx = self._load_context(LoadContext(self.model_dir, self.options, self.default_task,
                                                 self.dense_input_name))
            modules = load_modules(files, ctx)
            self.pipeline = Pipeline(modules if modules is not None else assemble(self._default_modules(ctx), ctx),
                                     task_feature=self.task_feature, parallel_runs=self.options.parallel_runs)
        self.prompts = self._merge_prompts(prompts)
        self.default_prompt_name = default_prompt_name or self.config.default_prompt_name
        if self.default_prompt_name is not None and self.default_prompt_name not in self.prompts:
            raise InputError(f"Default prompt name {self.default_prompt_name!r} not found in prompts "
                             f"{sorted(self.prompts)}")
        self._init_kwargs: dict[str, Any] = {"prompts": dict(self.prompts),
                                             "default_prompt_name": self.default_prompt_name}

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

    def _apply_options(self, **changes: Any) -> None:
        """Replace run budgets in ``self.options`` and hand the new options to every module (declared
        :meth:`Module.apply_options`: a Router and a fused head pass them on to what they hold)."""
        self.options = replace(self.options, **changes)
        self.pipeline.parallel_runs = self.options.parallel_runs
        for module in self.pipeline.modules:
            module.apply_options(self.options)

    @property
    def max_batch_tokens(self) -> int | None:
        """Most rows x tokens of one ONNX run (``None``: a whole batch per run)."""
        return self.options.max_batch_tokens

    @max_batch_tokens.setter
    def max_batch_tokens(self, value: int | None) -> None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InputError(f"max_batch_tokens must be a positive integer or None, got {value!r}")
        self._apply_options(max_batch_tokens=value)

    def get_backend(self) -> str:
        """Always ``"onnx"``."""
        return "onnx"

    def get_device_name(self) -> str:
        """The device this model runs on, in sentence-transformers' words: ``"cuda:N"`` when its first execution
        provider runs on a CUDA device (CUDA, TensorRT, ROCm, MIGraphX; ``N`` its ``device_id``), else ``"cpu"``."""
        first = self.options.providers[0]
        name, provider_options = (first, {}) if isinstance(first, str) else first
        if name in _CUDA_DEVICE_PROVIDERS:
            return f"cuda:{provider_options.get('device_id', 0)}"
        return "cpu"

    @property
    def tokenizer(self) -> Any:
        """The ``tokenizers.Tokenizer`` of the input module, when it has one."""
        tok = self.pipeline.input_module.tokenizer
        return None if tok is None else tok.backend

    @property
    def max_seq_length(self) -> int | None:
        """Truncation length of the input module (``math.inf`` for a StaticEmbedding model, as sentence-transformers)."""
        return self.pipeline.input_module.max_seq_length

    @max_seq_length.setter
    def max_seq_length(self, value: int | None) -> None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InputError(f"max_seq_length must be a positive integer or None, got {value!r}")
        module: Any = self.pipeline.input_module
        if not has_max_seq_length_setter(module):
            raise InputError(f"The input module ({type(module).__name__}) has no max_seq_length to set")
        module.max_seq_length = value

    def _resolve_prompt(self, prompt: str | None, prompt_name: str | None) -> str | None:
        if prompt is not None:
            if not isinstance(prompt, str):
                raise InputError(f"prompt must be a str, got {type(prompt).__name__}: {prompt!r:.80}")
            check_encodable(prompt, "prompt")
            return prompt
        if prompt_name is not None:
            if not isinstance(prompt_name, str):
                raise InputError(f"prompt_name must be a str, got {type(prompt_name).__name__}")
            if prompt_name not in self.prompts:
                raise InputError(f"Prompt name {prompt_name!r} not found in the configured prompts dictionary "
                                 f"with keys {sorted(self.prompts)!r}")
            return self.prompts[prompt_name]
        if self.default_prompt_name is not None:
            return self.prompts.get(self.default_prompt_name)
        return None

    def save(self, path: str | Path | None, model_name: str | None = None, create_model_card: bool = True,
             train_datasets: list[str] | None = None, safe_serialization: bool = True) -> None:
        """Write a directory that reloads with ``local_files_only=True`` (ONNX files included); ``None`` writes nothing.

        ``model_name``, ``create_model_card``, ``train_datasets`` and ``safe_serialization`` are accepted
        for sentence-transformers code; no model card is written and weights are always safetensors.
        """
        if path is None:
            return
        target = Path(path)
        if target.resolve() != self.model_dir.resolve():
            import shutil

            shutil.copytree(self.model_dir, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".cache"))
        data = dict(self.config.raw)
        data.update({"model_type": self.model_kind, "prompts": self.prompts,
                     "default_prompt_name": self.default_prompt_name})
        data.update(self._extra_config())
        (target / MODEL_CONFIG_FILE).write_text(json.dumps(data, indent=2), encoding="utf-8")

    def save_pretrained(self, path: str | Path | None, model_name: str | None = None, create_model_card: bool = True,
                        train_datasets: list[str] | None = None, safe_serialization: bool = True) -> None:
        """:meth:`save`, called as sentence-transformers calls it."""
        self.save(path, model_name=model_name, create_model_card=create_model_card, train_datasets=train_datasets,
                  safe_serialization=safe_serialization)

    def _extra_config(self) -> dict[str, Any]:
        """Kind-specific keys written by ``save_pretrained``."""
        return {}

    def __repr__(self) -> str:
        names = ", ".join(type(m).__name__ for m in self.modules)
        return f"{type(self).__name__}(dir={str(self.model_dir)!r}, modules=[{names}])"

    # sentence-transformers' calling conventions: keywords, inputs, preprocess, pools

    @property
    def modules(self) -> list[Module]:
        """The modules in order."""
        return self.pipeline.modules

    def _pooling(self) -> Pooling | None:
        return next((m for m in self.modules if isinstance(m, Pooling)), None)

    def set_pooling_include_prompt(self, include_prompt: bool) -> None:
        """Set ``include_prompt`` of the first Pooling module, if there is one (INSTRUCTOR-style models)."""
        pooling = self._pooling()
        if pooling is not None:
            pooling.include_prompt = bool(include_prompt)

    def _worker_state(self) -> dict[str, Any]:
        """Settings changed after loading that pool workers apply to their own copy."""
        pooling = self._pooling()
        return {"max_seq_length": self.max_seq_length,
                "include_prompt": None if pooling is None else pooling.include_prompt}

    def _apply_worker_state(self, state: dict[str, Any]) -> None:
        if isinstance(state["max_seq_length"], int) and state["max_seq_length"] != self.max_seq_length:
            self.max_seq_length = state["max_seq_length"]
        if state["include_prompt"] is not None:
            self.set_pooling_include_prompt(state["include_prompt"])

    extra_init_kwargs: ClassVar[tuple[str, ...]] = ()
    """The kind's own constructor keywords (for the unknown-keyword error message)."""

    @classmethod
    def accepted_init_kwargs(cls) -> list[str]:
        """Every constructor keyword: sentence-transformers' (torch-only ones accepted and ignored) and onnx-st's."""
        own = ["device", "prompts", "default_prompt_name", "cache_folder", "revision", "local_files_only", "token",
               "backend", "model_kwargs", "options", "max_batch_tokens"]
        return sorted({*own, *IGNORED_INIT_KWARGS, "use_auth_token", "use_kernels", "kernel_config",
                       *cls.extra_init_kwargs})

    def _check_init_kwargs(self, unused: dict[str, Any], token: str | bool | None) -> str | bool | None:
        """Drop sentence-transformers' torch-only keywords; raise on unknown ones. Returns the token."""
        use_kernels, kernel_config = unused.pop("use_kernels", False), unused.pop("kernel_config", None)
        if use_kernels or kernel_config is not None:
            raise InputError("use_kernels and kernel_config require the torch backend")
        auth = unused.pop("use_auth_token", None)
        if auth is not None:
            if token is not None:
                raise InputError("Both `token` and `use_auth_token` are specified. Please only specify `token`.")
            token = auth
        for key in IGNORED_INIT_KWARGS & set(unused):
            if unused.pop(key) not in (None, False, {}, []):
                logger.info("%s(%s=...) is a torch-side option and has no effect in onnx-st", type(self).__name__, key)
        if unused:
            raise InputError(f"{type(self).__name__}() got unknown keyword arguments {sorted(unused)}; "
                             f"accepted: {self.accepted_init_kwargs()}")
        return token

    def get_max_seq_length(self) -> int | None:
        """Deprecated in sentence-transformers: the :attr:`max_seq_length` property."""
        return self.max_seq_length

    @contextmanager
    def _call_max_length(self, processing_kwargs: Any) -> Iterator[None]:
        """Within the block, the input module truncates at ``processing_kwargs``' ``max_length``, if any.

        The length is set on the shared tokenizer for the call: calls with different ``processing_kwargs``
        must not run concurrently on one model object (the server never passes them).
        """
        length = processing_max_length(processing_kwargs)
        if length is None:
            yield
            return
        previous = self.max_seq_length
        self.max_seq_length = length
        try:
            yield
        finally:
            self.max_seq_length = previous  # type: ignore[assignment]

    def _call_kwargs(self, method: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        """``task``, ``modality`` and ``processing_kwargs`` of an ``encode``/``predict`` call.

        Raises:
            InputError: keywords this model does not use (sentence-transformers raises ValueError there).
        """
        model_kwargs = self.get_model_kwargs()
        unknown = set(kwargs) - {*model_kwargs, "task", "processing_kwargs"}
        if unknown:
            name = type(self).__name__
            valid = (f"the valid additional keyword arguments are: {model_kwargs}." if model_kwargs
                     else "this model does not accept any additional keyword arguments.")
            raise InputError(f"{name}.{method}() has been called with additional keyword arguments that this model "
                             f"does not use: {sorted(unknown)}. As per {name}.get_model_kwargs(), {valid}")
        processing_max_length(kwargs.get("processing_kwargs"))  # validate before any work
        return {"task": kwargs.get("task"), "modality": kwargs.get("modality"),
                "processing_kwargs": kwargs.get("processing_kwargs")}

    @staticmethod
    def _legacy_inputs(inputs: Any, kwargs: dict[str, Any], *names: str) -> Any:
        """``inputs`` or the value of a renamed keyword (``sentences=``...), popped from ``kwargs``."""
        for name in names:
            if name in kwargs:
                value = kwargs.pop(name)
                if inputs is None:
                    inputs = value
        return inputs

    def _task_prompt_name(self, task: str, prompt_name: str | None, prompt: str | None) -> str | None:
        """``prompt_name``, or when neither it nor ``prompt`` is given the first of the task's
        :data:`TASK_PROMPT_NAMES` this model has (``encode_query`` / ``encode_document``)."""
        if prompt_name is None and prompt is None:
            return next((name for name in TASK_PROMPT_NAMES[task] if name in self.prompts), None)
        return prompt_name

    def _feature_rows(self, features: Mapping[str, Any]) -> list[dict[str, Any]]:
        """One dict per input of a batch's features, as sentence-transformers' ``output_value=None`` gives them:
        batch-first arrays split (still padded to the batch), other values carried as they are; ``task`` only
        when a Router is the input module, ``modality`` only when set."""
        items = {k: v for k, v in features.items() if k != "route"}
        if not isinstance(self.pipeline.input_module, Router):
            items.pop("task", None)
        if "modality" in items and items["modality"] is None:
            del items["modality"]
        n = len(features["input_ids"])
        return [{k: (v[i] if isinstance(v, np.ndarray) and v.ndim and len(v) == n else v) for k, v in items.items()}
                for i in range(n)]

    def get_model_kwargs(self) -> list[str]:
        """Extra keywords ``encode`` accepts for this model: ``task`` and ``modality`` with a Router."""
        return ["task", "modality"] if any(isinstance(m, Router) for m in self.modules) else []

    @property
    def modalities(self) -> list[str]:
        """Input modalities: ``["text"]``."""
        return ["text"]

    def supports(self, modality: Any) -> bool:
        """Whether ``modality`` is one this model reads (only ``"text"``)."""
        return modality in self.modalities

    def is_singular_input(self, inputs: Any) -> bool:
        """sentence-transformers' rule: lists, tuples, datasets Columns and string arrays are batches."""
        return not is_batch(inputs)

    def preprocess(self, inputs: Sequence[Any], prompt: str | None = None, task: str | None = None,
                   **kwargs: Any) -> dict[str, Any]:
        """Tokenized features of a batch, as the input module gives them (NumPy arrays)."""
        if not inputs:
            return {}
        items, _ = self._as_text_list(inputs)
        with self._call_max_length(kwargs.pop("processing_kwargs", None)):
            if isinstance(self.pipeline.input_module, Router):
                return self.pipeline.input_module.preprocess(items, prompt=prompt, task=task, **kwargs)
            if kwargs:
                raise InputError(f"preprocess() got unsupported keyword arguments {sorted(kwargs)}")
            return self.pipeline.input_module.preprocess(items, prompt=prompt, task=task)

    def tokenize(self, texts: Sequence[Any], **kwargs: Any) -> dict[str, Any]:
        """Deprecated in sentence-transformers (a warning logged once, as there): :meth:`preprocess`."""
        if not BaseModel._tokenize_warned:
            BaseModel._tokenize_warned = True
            logger.warning("The `tokenize` method is deprecated, please use `preprocess` instead.")
        return self.preprocess(inputs=texts, **kwargs)

    _tokenize_warned: ClassVar[bool] = False

    def start_multi_process_pool(self, target_devices: list[str] | None = None) -> MultiProcessPool:
        """Start worker processes, each with its own ONNX session (threads split between them).

        Args:
            target_devices: one entry per worker (``"cpu"``, ``"cuda:N"``); default: four CPU workers, as sentence-transformers.
        """
        return start_pool(self, target_devices)

    @staticmethod
    def stop_multi_process_pool(pool: MultiProcessPool) -> None:
        """Stop the workers of :meth:`start_multi_process_pool`."""
        stop_pool(pool)

    @staticmethod
    def _as_text_list(sentences: Any, what: str = "input", pairs: bool = True) -> tuple[list[Any], bool]:
        """Normalize one input or a batch to a list of texts (and ``(text, text)`` pairs when allowed);
        the flag says a single input was passed."""
        items, single = as_input_list(sentences, what)
        for i, item in enumerate(items):
            if isinstance(item, str):
                check_encodable(item, f"{what} #{i}")
                continue
            if pairs and isinstance(item, (tuple, list)) and len(item) == 2 and all(isinstance(t, str) for t in item):
                for side, text in enumerate(item):
                    check_encodable(text, f"{what} #{i}[{side}]")
                items[i] = (item[0], item[1])
                continue
            raise InputError(f"{what} #{i} must be a str{' or a (str, str) pair' if pairs else ''}, "
                             f"got {type(item).__name__}: {item!r:.80}")
        return items, single

    # The interface of every kind: what the CLI, the server, jobs, the Lambda handler and the exporter call.

    @property
    def kind(self) -> ModelKind:
        """The :class:`~onnx_st.kinds.ModelKind` of this model."""
        return get_kind(self.model_kind)

    @property
    def labels(self) -> list[str]:
        """The label of each score a model gives per input (a cross-encoder's ``id2label``); empty otherwise."""
        return []

    @abstractmethod
    def get_embedding_dimension(self) -> int | None:
        """Dimension of the vectors ``encode`` returns (``None``: the model embeds nothing, or cannot tell)."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """The kind's own entries of ``onnx-st info`` (dimension and similarity, or labels and activation)."""

    @abstractmethod
    def similarity_to_source(self, source: str, sentences: list[str]) -> np.ndarray:
        """One score per sentence against ``source`` (``onnx-st similarity``): the model's similarity of
        their embeddings, or a reranker's score of each ``(source, sentence)`` pair."""

    @abstractmethod
    def encode_json(self, texts: list[str], *, batch_size: int = 32, normalize: bool = False,
                    precision: str = "float32") -> list[Any]:
        """One JSON-ready row per text (``onnx-st encode``).

        Raises:
            InputError: the model does not embed texts (a reranker).
        """

    @abstractmethod
    def job_columns(self) -> tuple[OutputColumn, ...]:
        """The columns an ``onnx-st embed`` job writes for this model (:attr:`ModelKind.output_columns`)."""

    @abstractmethod
    def encode_job_batch(self, texts: Mapping[str, list[str]], *, batch_size: int, prompt_name: str | None,
                         normalize: bool) -> dict[str, np.ndarray]:
        """One job batch (``texts`` by :attr:`ModelKind.input_columns`) as NumPy results of :meth:`job_columns`.

        A column of lists comes as CSR arrays: ``indptr`` with ``indices``/``values`` (sparse), or
        ``vectors_indptr`` with ``vectors`` (a list of token vectors per row).
        """

    @abstractmethod
    def parity_outputs(self, inputs: Sequence[Any], batch_size: int = 32) -> np.ndarray:
        """The outputs parity records compare, as one float array: embeddings, dense vocabulary-wide rows,
        every document token vector as a row, or pair scores."""

    # the operations a server route may call (:attr:`ModelKind.server_operations`)

    def _no_operation(self, operation: str) -> InputError:
        return InputError(f"{type(self).__name__} ({self.kind.description}) has no {operation} operation")

    def serve_embed(self, texts: list[str], *, prompt_name: str | None, normalize: bool,
                    dimensions: int | None) -> list[np.ndarray]:
        """Dense embeddings (``embed``)."""
        raise self._no_operation("embed")

    def serve_embed_tokens(self, texts: list[str], *, prompt_name: str | None) -> list[np.ndarray]:
        """One vector per token of each text (``embed_all``)."""
        raise self._no_operation("embed_all")

    def serve_embed_sparse(self, texts: list[str], *, prompt_name: str | None) -> list[Any]:
        """Sparse embeddings, one :class:`~onnx_st.SparseVector` per text (``embed_sparse``)."""
        raise self._no_operation("embed_sparse")

    def serve_predict(self, pairs: list[tuple[str, str]], *, raw_scores: bool) -> list[np.ndarray]:
        """Scores of text pairs, the model's activation unless ``raw_scores`` (``predict``, ``rerank``)."""
        raise self._no_operation("predict")

    _inference: Callable[..., list[Any]]
    """One result per input, computed in this process (what a pool worker runs on its chunk)."""
