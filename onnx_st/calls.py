"""sentence-transformers' calling conventions shared by the front classes: keywords, inputs, preprocess, pools."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from .compat import IGNORED_INIT_KWARGS, as_input_list, is_batch, processing_max_length
from .errors import InputError
from .modules import Module
from .modules.pooling import Pooling
from .modules.router import Router
from .pipeline import Pipeline
from .pool import MultiProcessPool, start_pool, stop_pool
from .tokenizer import check_encodable

logger = logging.getLogger("onnx_st")


class SentenceTransformersCalls:
    """Methods that take and check arguments the way sentence-transformers 6.2 does (mixed into BaseModel)."""

    pipeline: Pipeline
    max_seq_length: Any

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
        return sorted({*own, *IGNORED_INIT_KWARGS, "use_auth_token", *cls.extra_init_kwargs})

    def _check_init_kwargs(self, unused: dict[str, Any], token: str | bool | None) -> str | bool | None:
        """Drop sentence-transformers' torch-only keywords; raise on unknown ones. Returns the token."""
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
        allowed = {*self.get_model_kwargs(), "task", "processing_kwargs"}
        unknown = set(kwargs) - allowed
        if unknown:
            raise InputError(f"{type(self).__name__}.{method}() got unsupported keyword arguments {sorted(unknown)} "
                             f"that this model does not use; valid: {sorted(allowed)}")
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
        """Deprecated in sentence-transformers: :meth:`preprocess`."""
        return self.preprocess(texts, **kwargs)

    def start_multi_process_pool(self, target_devices: list[str] | None = None) -> MultiProcessPool:
        """Start worker processes, each with its own ONNX session (threads split between them).

        Args:
            target_devices: one entry per worker (``"cpu"``, ``"cuda:N"``); default: four CPU workers, as sentence-transformers.
        """
        return start_pool(self, target_devices)  # type: ignore[arg-type]  # mixed into BaseModel only

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

