"""The module contract, as sentence-transformers' own ``Module`` and ``InputModule``: ``features -> features``.

Every module declares what other code may ask of it: ``forward``, ``get_embedding_dimension()``,
the feature it writes (``module_output_name``), its ``config_keys`` and the modules it holds
(``submodules()``: a Router's routes, a fused SPLADE head's parts). Budgets and fusions are decided
by the loaders from ``LoadContext.options``; nothing walks the tree afterwards to rewrite it.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from onnx_st._runtime.tokenizer import TextTokenizer, Tokenized
from onnx_st.options import RuntimeOptions

Features = dict[str, Any]
Rows = Sequence[int] | np.ndarray  # positions of a batch's inputs within a call


class Module(ABC):
    """A step after tokenization: reads some features and returns a new dict with more."""

    config_keys: ClassVar[tuple[str, ...]] = ()
    config_file_name: ClassVar[str] = "config.json"
    #: the feature this module reads, when it reads one (checked against what the modules before it write)
    module_input_name: str | None = None
    #: the feature this module writes (``sentence_embedding``, ``token_embeddings``, ``scores``...)
    module_output_name: str = "sentence_embedding"

    @abstractmethod
    def forward(self, features: Features) -> Features:
        """Return a new features dict."""

    def get_embedding_dimension(self) -> int | None:
        """Size of the last axis of ``module_output_name`` (``None``: this module does not set it)."""
        return None

    def submodules(self) -> list[Module]:
        """Modules this one holds and runs (a Router's routes, a fused head's parts)."""
        return []

    def apply_options(self, options: RuntimeOptions) -> None:
        """Take new run budgets (``max_batch_tokens``, ``logits_budget_mib``); passed on to submodules."""
        for module in self.submodules():
            module.apply_options(options)

    def get_config_dict(self) -> dict[str, Any]:
        """The values of ``config_keys``, as sentence-transformers saves them."""
        return {key: getattr(self, key) for key in self.config_keys}

    def save(self, output_path: str | Path) -> None:
        """Write ``config_file_name`` with :meth:`get_config_dict` into ``output_path``."""
        path = Path(output_path)
        path.mkdir(parents=True, exist_ok=True)
        (path / self.config_file_name).write_text(json.dumps(self.get_config_dict(), indent=4), encoding="utf-8")


@dataclass(frozen=True)
class PreparedInputs:
    """The inputs of one call, made ready for batching: each input's sort key (its tokens after truncation,
    or its characters without a tokenizer) and, when the input module tokenizes, every input's tokens,
    tokenized once for the sort and the batches alike."""

    items: Sequence[Any]
    prompt: str | None
    task: str | None
    lengths: np.ndarray
    tokens: Tokenized | None = None


class InputModule(Module):
    """The first module of a model: turns texts into features with its one :class:`TextTokenizer`."""

    tokenizer: TextTokenizer | None = None

    @abstractmethod
    def preprocess(self, texts: Sequence[Any], prompt: str | None = None, task: str | None = None) -> Features:
        """Tokenize one batch of texts (or pairs)."""

    def prepare(self, texts: Sequence[Any], prompt: str | None = None, task: str | None = None) -> PreparedInputs:
        """Tokenize every input of a call once (characters as sort keys when the module has no tokenizer)."""
        if self.tokenizer is None:
            return PreparedInputs(texts, prompt, task, np.array([text_length(t) for t in texts], dtype=np.int64))
        tokens = self.tokenizer.tokenize(with_prompt(texts, prompt))
        return PreparedInputs(texts, prompt, task, tokens.lengths, tokens)

    def collate(self, prepared: PreparedInputs, rows: Rows) -> Features:
        """The features of one batch: ``rows`` of a call's prepared inputs, padded to the longest."""
        if prepared.tokens is None or self.tokenizer is None:
            return self.preprocess([prepared.items[i] for i in rows], prompt=prepared.prompt, task=prepared.task)
        return dict(self.tokenizer.pad(prepared.tokens, rows))

    def count_tokens(self, texts: Sequence[Any], prompt: str | None = None, task: str | None = None) -> list[int]:
        """Tokens each input takes after truncation, special tokens and prompt included (characters when
        the module has no tokenizer)."""
        if self.tokenizer is None:
            return [text_length(t) for t in texts]
        return self.tokenizer.count_tokens(with_prompt(texts, prompt))

    @property
    def max_seq_length(self) -> int | None:
        """Truncation length in tokens (``None``: no truncation)."""
        return None if self.tokenizer is None else self.tokenizer.max_length


def text_length(item: Any) -> int:
    """Sort key of an input without a tokenizer: characters of a text, summed over a pair."""
    if isinstance(item, str):
        return len(item)
    return sum(len(part) for part in item)


def with_prompt(texts: Sequence[Any], prompt: str | None) -> list[Any]:
    """``texts`` with ``prompt`` prepended to each text (to the first text of a pair)."""
    if not prompt:
        return list(texts)
    return [(prompt + t[0], t[1]) if isinstance(t, tuple) else prompt + t for t in texts]


@dataclass(frozen=True)
class LoadContext:
    """What module loaders need beyond their own directory."""

    model_dir: Path
    options: RuntimeOptions
    default_task: str = "feature-extraction"
    dense_input_name: str = "sentence_embedding"  # what a Dense config without module_input_name reads
    transformer_defaults: dict[str, Any] = field(default_factory=dict)  # Transformer config keys a save lacks
    special_prefixes: tuple[str, ...] = ()  # prompt prefixes to tokenize as one special token (legacy ColBERT)

    @classmethod
    def standalone(cls, directory: str | Path) -> LoadContext:
        """The defaults of a module loaded on its own (``Dense.load(path)``), with no model around it."""
        return cls(Path(directory), RuntimeOptions())


def module_context(directory: str | Path, ctx: LoadContext | None) -> tuple[Path, LoadContext]:
    """A loader's folder as a Path and its context (:meth:`LoadContext.standalone` when none is given)."""
    path = Path(directory)
    return path, ctx if ctx is not None else LoadContext.standalone(path)


Loader = Callable[[Path, LoadContext], Module]


def walk(modules: Sequence[Module]) -> Iterator[Module]:
    """Every module of a list and, depth first, every module they hold."""
    for module in modules:
        yield module
        yield from walk(module.submodules())


def embedding_dimension(modules: Sequence[Module]) -> int | None:
    """The output dimension of a module list: the last module that declares one."""
    for module in reversed(modules):
        dim = module.get_embedding_dimension()
        if dim is not None:
            return dim
    return None
