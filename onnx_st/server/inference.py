"""Model-side work of the server: token counting, truncation checks and the batched model calls."""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from ..model import BaseModel
from ..tokenizer import TextTokenizer
from .errors import ApiError

Item = str | tuple[str, str]


def _text_tokenizer(model: BaseModel) -> TextTokenizer | None:
    """The input module's tokenizer, if it has one."""
    return model.pipeline.input_module.tokenizer


class TokenCounter:
    """Counts tokens as the model's tokenizer does, before truncation, on a private copy.

    Args:
        model: a loaded model; ``max_length`` is its ``max_seq_length`` (``None``: no limit).
    """

    def __init__(self, model: BaseModel) -> None:
        source = _text_tokenizer(model)
        backend = source.backend if source is not None else model.tokenizer
        self.tokenizer: Tokenizer | None = None
        if isinstance(backend, Tokenizer):
            self.tokenizer = Tokenizer.from_str(backend.to_str())
            self.tokenizer.no_truncation()
            self.tokenizer.no_padding()
        self.add_special_tokens = source.add_special_tokens if source is not None else True
        self.max_length: int | None = model.max_seq_length

    def encode(self, items: Sequence[Item], add_special_tokens: bool | None = None) -> list[Any]:
        """``tokenizers`` encodings of texts or pairs (422 ``tokenizer`` when they cannot be tokenized)."""
        if self.tokenizer is None:
            raise ApiError(422, "This model has no tokenizer to tokenize with", "tokenizer")
        special = self.add_special_tokens if add_special_tokens is None else add_special_tokens
        try:
            return self.tokenizer.encode_batch(list(items), add_special_tokens=special)
        except Exception as exc:  # tokenizers raises plain exceptions for unencodable text
            raise ApiError(422, f"Tokenization error: {exc}", "tokenizer") from exc

    def count(self, items: Sequence[Item]) -> list[int]:
        """Tokens of each item, special tokens included, without truncation."""
        if self.tokenizer is None:
            return [sum(len(part.split()) for part in ((i,) if isinstance(i, str) else i)) + 2 for i in items]
        return [len(e.ids) for e in self.encode(items)]

    def check(self, items: Sequence[Item], truncate: bool) -> int:
        """Tokens the items take after truncation; without ``truncate``, too long an item is a 422."""
        counts = self.count(items)
        limit = self.max_length
        if limit is None:
            return sum(counts)
        if not truncate:
            for n in counts:
                if n > limit:
                    raise ApiError(422, f"Input validation error: `inputs` must have less than {limit} tokens. "
                                        f"Given: {n}", "validation")
        return sum(min(n, limit) for n in counts)


@contextmanager
def truncation_side(model: BaseModel, direction: str) -> Iterator[None]:
    """Within the block, the model truncates from ``direction`` (``left`` or ``right``)."""
    source = _text_tokenizer(model)
    backend = source.backend if source is not None else None
    params = backend.truncation if backend is not None else None
    if not params or params.get("direction") == direction:
        yield
        return
    assert backend is not None
    backend.enable_truncation(params["max_length"], stride=params["stride"], strategy=params["strategy"],
                              direction=direction)
    try:
        yield
    finally:
        backend.enable_truncation(params["max_length"], stride=params["stride"], strategy=params["strategy"],
                                  direction=params["direction"])


def embed_key(prompt_name: str | None, normalize: bool, dimensions: int | None, direction: str) -> Hashable:
    """Batch key of dense embeddings."""
    return ("embed", prompt_name, bool(normalize), dimensions, direction)


def sparse_key(prompt_name: str | None, direction: str) -> Hashable:
    """Batch key of sparse embeddings."""
    return ("sparse", prompt_name, direction)


def token_vectors_key(prompt_name: str | None, direction: str) -> Hashable:
    """Batch key of token vectors (``/embed_all``)."""
    return ("embed_all", prompt_name, direction)


def token_vectors(model: BaseModel, items: list[Any], prompt_name: str | None) -> list[np.ndarray]:
    """Token vectors per text: a multi-vector model's (queries for the ``query`` prompt, else documents),
    or a dense model's token embeddings."""
    from ..multi_vector import MultiVectorEncoder

    if isinstance(model, MultiVectorEncoder):
        encode = model.encode_query if prompt_name == "query" else model.encode_document
        return list(encode(items, prompt_name=prompt_name))
    return [np.asarray(t, dtype=np.float32) for t in
            model.encode(items, prompt_name=prompt_name, output_value="token_embeddings")]  # type: ignore


def predict_key(raw_scores: bool, direction: str) -> Hashable:
    """Batch key of cross-encoder scores."""
    return ("predict", bool(raw_scores), direction)


def make_runner(model: BaseModel) -> Any:
    """``run(key, items) -> results`` for :class:`~onnx_st.server.batcher.MicroBatcher` (one result per item)."""

    def run(key: Hashable, items: list[Any]) -> Sequence[Any]:
        assert isinstance(key, tuple)
        op, *options = key
        with truncation_side(model, options[-1]):
            if op == "embed":
                prompt_name, normalize, dimensions, _ = options
                out = model.encode(items, prompt_name=prompt_name, normalize_embeddings=normalize,  # type: ignore
                                   truncate_dim=dimensions)
                return list(np.asarray(out, dtype=np.float32))
            if op == "embed_all":
                return token_vectors(model, items, options[0])
            if op == "sparse":
                return model.encode(items, prompt_name=options[0], convert_to_tensor=False)  # type: ignore
            if op == "predict":
                kwargs = {"activation_fn": "torch.nn.Identity"} if options[0] else {}
                scores = model.predict(items, convert_to_numpy=True, **kwargs)  # type: ignore[attr-defined]
                return list(np.asarray(scores, dtype=np.float32))
        raise ValueError(f"unknown operation {op!r}")

    return run


def check_prompt(model: BaseModel, prompt_name: str | None) -> None:
    """A ``prompt_name`` the model does not have is a 422 before anything is queued."""
    if prompt_name is not None and prompt_name not in model.prompts:
        raise ApiError(422, f"Prompt name {prompt_name!r} not found in the model's prompts "
                            f"{sorted(model.prompts)}", "validation")


def prompt_text(model: BaseModel, prompt_name: str | None) -> str:
    """The text ``encode`` prepends for ``prompt_name`` (the default prompt when ``None``)."""
    resolved = model._resolve_prompt(None, prompt_name)
    return resolved or ""
