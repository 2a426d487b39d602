"""Model-side work of the server: token counting and the operations a batch runs.

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

import numpy as np
from tokenizers import Tokenizer

from onnx_st._runtime.pairs import count_tokens, encode_capped
from onnx_st._runtime.tokenizer import TextTokenizer, truncating_from
from onnx_st.base.model import BaseModel
from onnx_st.server.errors import ApiError

Item = str | tuple[str, str]
Side = Literal["right", "left"]


def _text_tokenizer(model: BaseModel) -> TextTokenizer | None:
    """The input module's tokenizer, if it has one."""
    return model.pipeline.input_module.tokenizer


class TokenCounter:
    """Counts tokens as the model's tokenizer does, before truncation (with its unconfigured tokenizer).

    Pairs are counted side by side (never as ``tokenizers`` pairs, whose overflow grows with the
    product of the two lengths).

    Args:
        model: a loaded model; ``max_length`` is its ``max_seq_length`` (``None``: no limit).
    """

    def __init__(self, model: BaseModel) -> None:
        source = _text_tokenizer(model)
        self.tokenizer: Tokenizer | None = None
        if source is not None:
            self.tokenizer = source.raw_backend
        elif isinstance(model.tokenizer, Tokenizer):
            self.tokenizer = Tokenizer.from_str(model.tokenizer.to_str())
            self.tokenizer.no_truncation()
            self.tokenizer.no_padding()
        self.add_special_tokens = source.add_special_tokens if source is not None else True
        self.max_length: int | None = model.max_seq_length

    def encode(self, texts: Sequence[str], add_special_tokens: bool | None = None) -> list[Any]:
        """``tokenizers`` encodings of texts (422 ``tokenizer`` when they cannot be tokenized)."""
        if self.tokenizer is None:
            raise ApiError(422, "This model has no tokenizer to tokenize with", "tokenizer")
        special = self.add_special_tokens if add_special_tokens is None else add_special_tokens
        try:
            return self.tokenizer.encode_batch(list(texts), add_special_tokens=special)
        except Exception as exc:  # tokenizers raises plain exceptions for unencodable text
            raise ApiError(422, f"Tokenization error: {exc}", "tokenizer") from exc

    def _specials(self, pair: bool) -> int:
        assert self.tokenizer is not None
        return self.tokenizer.num_special_tokens_to_add(pair) if self.add_special_tokens else 0

    def _side_counts(self, texts: Sequence[str], cap: int | None) -> list[int]:
        """Tokens of each text without special tokens; with ``cap``, exact up to ``cap`` and above it when over."""
        assert self.tokenizer is not None
        try:
            if cap is not None:
                return [len(e.ids) for e, _ in encode_capped(self.tokenizer, texts, cap, "right")]
            return [count_tokens(self.tokenizer, t) for t in texts]
        except Exception as exc:  # tokenizers raises plain exceptions for unencodable text
            raise ApiError(422, f"Tokenization error: {exc}", "tokenizer") from exc

    def count(self, items: Sequence[Item], cap: int | None = None) -> list[int]:
        """Tokens of each item, special tokens included, without truncation; in memory of a piece of a text.

        With ``cap``, counts over ``cap`` are only known to be over it (all truncation needs).
        """
        if self.tokenizer is None:
            return [sum(len(part.split()) for part in ((i,) if isinstance(i, str) else i)) + 2 for i in items]
        if items and not isinstance(items[0], str):
            pairs = [(str(i[0]), str(i[1])) for i in items]
            firsts = self._side_counts([a for a, _ in pairs], cap)
            seconds = self._side_counts([b for _, b in pairs], cap)
            return [a + b + self._specials(True) for a, b in zip(firsts, seconds)]
        return [n + self._specials(False) for n in self._side_counts([str(i) for i in items], cap)]

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
    def call(self, model: Any, items: list[Any]) -> Sequence[Any]:
        """One result per item."""

    def run(self, model: BaseModel, items: list[Any]) -> Sequence[Any]:
        """:meth:`call` truncating from this operation's side."""
        with truncating_from(self.direction):
            return self.call(model, items)


@dataclass(frozen=True)
class Embed(Operation):
    """Dense sentence embeddings (``SentenceTransformer.encode``)."""

    prompt_name: str | None = None
    normalize: bool = False
    dimensions: int | None = None
    direction: Side = "right"

    def call(self, model: Any, items: list[Any]) -> Sequence[Any]:
        out = model.encode(items, prompt_name=self.prompt_name, normalize_embeddings=self.normalize,
                           truncate_dim=self.dimensions)
        return list(np.asarray(out, dtype=np.float32))


@dataclass(frozen=True)
class EmbedTokens(Operation):
    """One vector per token (``encode(output_value="token_embeddings")``; a multi-vector model's vectors)."""

    prompt_name: str | None = None
    direction: Side = "right"

    def call(self, model: Any, items: list[Any]) -> Sequence[Any]:
        from onnx_st.multi_vector.multi_vector_encoder import MultiVectorEncoder

        if isinstance(model, MultiVectorEncoder):  # queries for the ``query`` prompt, else documents
            encode = model.encode_query if self.prompt_name == "query" else model.encode_document
            return list(encode(items, prompt_name=self.prompt_name))
        return [np.asarray(t, dtype=np.float32)
                for t in model.encode(items, prompt_name=self.prompt_name, output_value="token_embeddings")]


@dataclass(frozen=True)
class EmbedSparse(Operation):
    """Sparse embeddings (``SparseEncoder.encode``)."""

    prompt_name: str | None = None
    direction: Side = "right"

    def call(self, model: Any, items: list[Any]) -> Sequence[Any]:
        return model.encode(items, prompt_name=self.prompt_name, convert_to_tensor=False)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Predict(Operation):
    """Cross-encoder scores of pairs (the model's activation unless ``raw_scores``)."""

    raw_scores: bool = False
    direction: Side = "right"

    def call(self, model: Any, items: list[Any]) -> Sequence[Any]:
        kwargs = {"activation_fn": "torch.nn.Identity"} if self.raw_scores else {}
        return list(np.asarray(model.predict(items, convert_to_numpy=True, **kwargs), dtype=np.float32))


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
