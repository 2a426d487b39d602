"""Modules in order, run over length-sorted batches with an optional progress bar."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np

from .errors import ConfigError, InputError
from .modules import Features, InputModule, Module
from .modules.base import text_length
from .modules.router import Router

T = TypeVar("T")
logger = logging.getLogger("onnx_st")


def default_show_progress_bar() -> bool:
    """sentence-transformers' default: a bar when the library logs at INFO or DEBUG."""
    return logger.getEffectiveLevel() in (logging.INFO, logging.DEBUG)


def _progress(iterable: Sequence[int], show: bool, total: int) -> Iterator[int] | Sequence[int]:
    if not show:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm comes with huggingface_hub; without it, no bar
        return iterable
    return tqdm(iterable, desc="Batches", total=total)


class Pipeline:
    """The input module (tokenizer side) followed by the other modules."""

    def __init__(self, modules: Sequence[Module], *, task_feature: bool = False) -> None:
        if not modules or not isinstance(modules[0], InputModule):
            raise ConfigError("The first module must tokenize its input (Transformer, StaticEmbedding, Router)")
        self.modules = list(modules)
        self.input_module: InputModule = modules[0]  # type: ignore[assignment]
        self.task_feature = task_feature

    def preprocess(self, texts: Sequence[Any], prompt: str | None = None, task: str | None = None,
                   modality: Any = None) -> Features:
        """Tokenize one batch; the call's ``task`` and ``modality`` ride along for modules that read them
        (Routers after the input module, ``task_feature`` pipelines)."""
        if isinstance(self.input_module, Router):
            features = self.input_module.preprocess(texts, prompt=prompt, task=task, modality=modality)
        else:
            features = self.input_module.preprocess(texts, prompt=prompt, task=task)
        if self.task_feature or any(isinstance(m, Router) for m in self.modules[1:]):
            features = {**features, "task": task, "modality": modality}
        return features

    def __call__(self, texts: Sequence[Any], prompt: str | None = None, task: str | None = None,
                 modality: Any = None) -> Features:
        """Run one batch through every module."""
        features = self.preprocess(texts, prompt=prompt, task=task, modality=modality)
        for module in self.modules:
            features = module.forward(features)
        return features

    def lengths(self, items: Sequence[Any], batch_size: int, prompt: str | None = None,
                task: str | None = None) -> list[int]:
        """Sort keys of ``items``: their token counts when there is more than one batch to form.

        sentence-transformers sorts by characters; tokens per character vary (code, numbers, other
        scripts), and sorting by tokens leaves less padding in each batch: on mixed English text and
        code, about a third fewer positions computed than sorting by characters.
        """
        if len(items) > batch_size:
            return self.input_module.count_tokens(items, prompt=prompt, task=task)
        return [text_length(item) for item in items]

    def map_batches(self, items: Sequence[Any], collect: Callable[[Features], Sequence[T]], *, batch_size: int = 32,
                    prompt: str | None = None, task: str | None = None,
                    show_progress_bar: bool | None = None, modality: Any = None) -> list[T]:
        """Run ``items`` in batches of similar length and return ``collect``'s per-item results in input order.

        Raises:
            InputError: ``batch_size`` below 1.
        """
        if not isinstance(batch_size, int) or batch_size < 1:
            raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
        order = np.argsort([-n for n in self.lengths(items, batch_size, prompt, task)], kind="stable")
        show = default_show_progress_bar() if show_progress_bar is None else bool(show_progress_bar)
        starts = range(0, len(items), batch_size)
        results: list[Any] = [None] * len(items)
        for start in _progress(starts, show, len(starts)):
            idx = order[start:start + batch_size]
            outputs = collect(self([items[i] for i in idx], prompt=prompt, task=task, modality=modality))
            for i, out in zip(idx, outputs):
                results[i] = out
        return results
