"""Model-side work of the server: token limits and the operations a batch runs.

An operation is a frozen, hashable dataclass: requests with equal operations (same kind of call,
same options) are merged into one model call by the batcher, which calls ``op.run(model, items)``
in its worker thread. The truncation side is an option of the operation, applied for that call
only (:func:`onnx_st._runtime.tokenizer.truncating_from`); the shared tokenizer is never changed.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tokenizers import Tokenizer

from onnx_st._runtime.tokenizer import TextTokenizer, truncating_from
from onnx_st.base.model import BaseModel
from onnx_st.errors import InputError
from onnx_st.server.errors import ApiError

Item = str | tuple[str, str]
Side = Literal["right", "left"]


class TokenLimit:
    """What the server admits: tokens counted by the model's :class:`TextTokenizer`, at most ``max_length`` each.

    Args:
        model: a loaded model; ``max_length`` is its ``max_seq_length`` (``None``: no limit).
    """

    def __init__(self, model: BaseModel) -> None:
        tokenizer = model.pipeline.input_module.tokenizer
        if tokenizer is None and isinstance(model.tokenizer, Tokenizer):  # a Router whose routes hold the tokenizer
            tokenizer = TextTokenizer(Tokenizer.from_str(model.tokenizer.to_str()), None)
        self.tokenizer: TextTokenizer | None = tokenizer
        self.max_length: int | None = model.max_seq_length

    @property
    def raw_tokenizer(self) -> Tokenizer | None:
        """The ``tokenizers.Tokenizer`` that encodes, without truncation or padding."""
        return None if self.tokenizer is None else self.tokenizer.raw_backend

    @property
    def add_special_tokens(self) -> bool:
        """Whether the model's tokenizer adds special tokens."""
        return True if self.tokenizer is None else self.tokenizer.add_special_tokens

    def encode(self, texts: Sequence[str], add_special_tokens: bool | None = None) -> list[Any]:
        """``tokenizers`` encodings of texts (422 ``tokenizer`` when they cannot be tokenized)."""
        raw = self.raw_tokenizer
        if raw is None:
            raise ApiError(422, "This model has no tokenizer to tokenize with", "tokenizer")
        special = self.add_special_tokens if add_special_tokens is None else add_special_tokens
        try:
            return raw.encode_batch(list(texts), add_special_tokens=special)
        except Exception as exc:  # tokenizers raises plain exceptions for unencodable text
            raise ApiError(422, f"Tokenization error: {exc}", "tokenizer") from exc

    def count(self, items: Sequence[Item], max_length: int | None = None) -> list[int]:
        """Tokens of each item, special tokens included, truncated at ``max_length`` (``None``: whole items,
        in memory of a piece of a text)."""
        if self.tokenizer is None:
            return [sum(len(part.split()) for part in ((i,) if isinstance(i, str) else i)) + 2 for i in items]
        try:
            return self.tokenizer.count_tokens(items, max_length)
        except InputError as exc:
            raise ApiError(422, f"Tokenization error: {exc.__cause__ or exc}", "tokenizer") from exc

    def check(self, items: Sequence[Item], truncate: bool) -> list[int]:
        """Tokens each item takes after truncation; without ``truncate``, too long an item is a 422."""
        limit = self.max_length
        counts = self.count(items, limit if truncate and limit is not None else None)
        if limit is None:
            return counts
        if not truncate:
            for n in counts:
                if n > limit:
                    raise ApiError(422, f"Input validation error: `inputs` must have less than {limit} tokens. "
                                        f"Given: {n}", "validation")
        return [min(n, limit) for n in counts]


class Operation(ABC):
    """One kind of model call with its options; equal operations share a batch."""

    direction: Side

    @abstractmethod
    def call(self, model: BaseModel, items: list[Any]) -> Sequence[Any]:
        """One result per item."""

    def run(self, model: BaseModel, items: list[Any]) -> Sequence[Any]:
        """:meth:`call` truncating from this operation's side."""
        with truncating_from(self.direction):
            return self.call(model, items)


@dataclass(frozen=True)
class Embed(Operation):
    """Dense sentence embeddings (:meth:`BaseModel.serve_embed`)."""

    prompt_name: str | None = None
    normalize: bool = False
    dimensions: int | None = None
    direction: Side = "right"

    def call(self, model: BaseModel, items: list[Any]) -> Sequence[Any]:
        return model.serve_embed(items, prompt_name=self.prompt_name, normalize=self.normalize,
                                 dimensions=self.dimensions)


@dataclass(frozen=True)
class EmbedTokens(Operation):
    """One vector per token (:meth:`BaseModel.serve_embed_tokens`; a multi-vector model's vectors)."""

    prompt_name: str | None = None
    direction: Side = "right"

    def call(self, model: BaseModel, items: list[Any]) -> Sequence[Any]:
        return model.serve_embed_tokens(items, prompt_name=self.prompt_name)


@dataclass(frozen=True)
class EmbedSparse(Operation):
    """Sparse embeddings (:meth:`BaseModel.serve_embed_sparse`)."""

    prompt_name: str | None = None
    direction: Side = "right"

    def call(self, model: BaseModel, items: list[Any]) -> Sequence[Any]:
        return model.serve_embed_sparse(items, prompt_name=self.prompt_name)


@dataclass(frozen=True)
class Predict(Operation):
    """Cross-encoder scores of pairs (:meth:`BaseModel.serve_predict`; the model's activation unless ``raw_scores``)."""

    raw_scores: bool = False
    direction: Side = "right"

    def call(self, model: BaseModel, items: list[Any]) -> Sequence[Any]:
        return model.serve_predict(items, raw_scores=self.raw_scores)


def side(direction: str) -> Side:
    """``Right``/``left`` (any case) as an operation's side; anything else is a 422."""
    value = direction.lower()
    if value not in ("right", "left"):
        raise ApiError(422, f"truncation_direction must be 'right' or 'left', got {direction!r}", "validation")
    return value  # type: ignore[return-value]


def check_prompt(model: BaseModel, prompt_name: str | None) -> None:
    """A ``prompt_name`` the model does not have is a 422 before anything is queued."""
    if prompt_name is None or prompt_name in model.prompts:
        return
    # text-embeddings-inference's wording, which its clients parse for the prompt names
    if not model.prompts:
        raise ApiError(422, f"`default-prompt-name` is set to `{prompt_name}` but no prompts were found in the "
                            "Sentence Transformers configuration", "validation")
    raise ApiError(422, f"`default-prompt-name` is set to `{prompt_name}` but it was not found in the Sentence "
                        f"Transformers prompts. Available prompts: {json.dumps(list(model.prompts))}", "validation")


def prompt_text(model: BaseModel, prompt_name: str | None) -> str:
    """The text ``encode`` prepends for ``prompt_name`` (the default prompt when ``None``)."""
    resolved = model._resolve_prompt(None, prompt_name)
    return resolved or ""
