"""The module contract shared by every module: ``features -> features``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..options import RuntimeOptions

Features = dict[str, Any]


@runtime_checkable
class Module(Protocol):
    """A step after tokenization: reads some features and returns a new dict with more."""

    def forward(self, features: Features) -> Features:
        """Return a new features dict."""
        ...


@runtime_checkable
class InputModule(Module, Protocol):
    """The first module of a model: turns texts into features (tokenizes)."""

    def preprocess(self, texts: Sequence[Any], prompt: str | None = None, task: str | None = None) -> Features:
        """Tokenize one batch of texts (or pairs)."""
        ...


def text_length(item: Any) -> int:
    """Sort key of an input without a tokenizer: characters of a text, summed over a pair."""
    if isinstance(item, str):
        return len(item)
    return sum(len(part) for part in item)


@runtime_checkable
class TokenCounter(Protocol):
    """An input module that can count the tokens each input will take (for length-sorted batches)."""

    def token_lengths(self, texts: Sequence[Any], prompt: str | None = None, task: str | None = None) -> list[int]:
        """Tokens of each input after truncation, special tokens and prompt included."""
        ...


@dataclass(frozen=True)
class LoadContext:
    """What module loaders need beyond their own directory."""

    model_dir: Path
    options: RuntimeOptions
    default_task: str = "feature-extraction"
    dense_input_name: str = "sentence_embedding"  # what a Dense config without module_input_name reads
    transformer_defaults: dict[str, Any] = field(default_factory=dict)  # Transformer config keys a save lacks
    special_prefixes: tuple[str, ...] = ()  # prompt prefixes to tokenize as one special token (legacy ColBERT)


Loader = Callable[[Path, LoadContext], Module]


def embedding_dimension(modules: Sequence[Module]) -> int | None:
    """The output dimension of a module list: the last module that knows it."""
    for module in reversed(modules):
        dim = getattr(module, "embedding_dimension", None)
        if dim is not None:
            return int(dim)
    return None
