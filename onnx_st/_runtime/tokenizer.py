"""``tokenizer.json`` plus the directory's overrides, as sentence-transformers applies them.

sentence-transformers pads every batch to its longest text and truncates at ``max_seq_length``,
whatever fixed padding or truncation the ``tokenizer.json`` file carries; it lower-cases input
when the Transformer config says ``do_lower_case``. This module reproduces exactly that.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import AddedToken, Tokenizer, normalizers

from onnx_st._runtime.config import SIDES, HFConfig, config_str, read_json
from onnx_st._runtime.pairs import encode_capped, encode_pairs, length_in_pieces
from onnx_st.errors import ConfigError, InputError, ModelNotFoundError, foreign_errors

_HUGE = 10**20
_OWN: Any = object()
_CHUNK = 4096  # texts encoded at once by TextTokenizer.tokenize: their Encoding objects live only that long
_SIDE: ContextVar[str | None] = ContextVar("onnx_st_truncation_side", default=None)


@contextmanager
def truncating_from(side: str) -> Iterator[None]:
    """Within the block (this thread or task only), tokenizers truncate from ``side`` (``right``/``left``)."""
    if side not in ("right", "left"):
        raise InputError(f"truncation side must be 'right' or 'left', got {side!r}")
    token = _SIDE.set(side)
    try:
        yield
    finally:
        _SIDE.reset(token)


def _token_content(value: Any) -> str | None:
    """A special token entry of tokenizer_config.json is a string or ``{"content": ...}``."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def _has_lowercase(normalizer: dict[str, Any] | None) -> bool:
    """Whether a serialized normalizer already lower-cases."""
    if not normalizer:
        return False
    kind = normalizer.get("type")
    if kind == "Lowercase" or (kind == "BertNormalizer" and normalizer.get("lowercase")):
        return True
    return kind == "Sequence" and any(_has_lowercase(n) for n in normalizer.get("normalizers", []))


def resolve_max_length(st_max_seq_length: int | None, tokenizer_config: dict[str, Any],
                       hf_config: HFConfig) -> int | None:
    """The truncation length sentence-transformers uses for a Transformer module."""
    if st_max_seq_length is not None:
        return st_max_seq_length
    model_max = tokenizer_config.get("model_max_length")
    if isinstance(model_max, (int, float)) and not isinstance(model_max, bool) and not model_max >= 1:
        raise ConfigError(f"tokenizer_config.json: 'model_max_length' must be a positive number, got {model_max!r}")
    limit = int(model_max) if isinstance(model_max, (int, float)) and model_max < _HUGE else None
    max_pos = hf_config.max_position_embeddings
    if isinstance(max_pos, int) and max_pos > 0:
        limit = max_pos if limit is None else min(limit, max_pos)
    return limit


def check_texts(texts: Sequence[Any], what: str = "input") -> list[str]:
    """Check that every item is a ``str``; raise InputError naming the first that is not."""
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputError(f"{what} #{i} must be a str, got {type(text).__name__}: {text!r:.80}")
        check_encodable(text, f"{what} #{i}")
    return list(texts)


def check_encodable(text: str, what: str) -> None:
    """A text holding a lone surrogate (``"\\ud800"``) cannot be tokenized: InputError naming it."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InputError(f"{what} is not valid Unicode text ({exc.reason} at position {exc.start}): "
                             f"{text!r:.80}") from exc


@dataclass(frozen=True)
class Tokenized:
    """Token ids of many texts (or pairs), truncated but not padded, in two flat buffers.

    Row ``i`` is ``ids[offsets[i]:offsets[i + 1]]`` (and the same slice of ``type_ids``): eight bytes
    a token, whatever the number of texts, instead of one ``tokenizers.Encoding`` object each.
    """

    ids: np.ndarray  # int64, every row's ids one after the other
    type_ids: np.ndarray  # int64, aligned with ids
    offsets: np.ndarray  # int64, len(rows) + 1

    @property
    def lengths(self) -> np.ndarray:
        """Tokens of each row, special tokens included."""
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @classmethod
    def of(cls, encodings: Sequence[Any]) -> Tokenized:
        """Pack ``tokenizers.Encoding`` objects (unpadded: every attention mask is all ones)."""
        ids = [e.ids for e in encodings]
        types = [e.type_ids for e in encodings]
        offsets = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum([len(row) for row in ids], out=offsets[1:])
        total = int(offsets[-1])
        return cls(np.fromiter(chain.from_iterable(ids), np.int64, count=total),
                   np.fromiter(chain.from_iterable(types), np.int64, count=total), offsets)

    @classmethod
    def concat(cls, parts: Sequence[Tokenized]) -> Tokenized:
        """The rows of ``parts`` (at least one), one after the other."""
        if len(parts) == 1:
            return parts[0]
        starts = np.cumsum([0] + [int(p.offsets[-1]) for p in parts[:-1]])
        offsets = np.concatenate([np.zeros(1, np.int64)] + [p.offsets[1:] + s for p, s in zip(parts, starts)])
        return cls(np.concatenate([p.ids for p in parts]), np.concatenate([p.type_ids for p in parts]), offsets)


class TextTokenizer:
    """Tokenizes single texts or pairs into padded int64 arrays, the way sentence-transformers does.

    One ``tokenizers.Tokenizer`` without padding or truncation encodes everything; truncation and
    padding are applied here, so that a call can truncate from its own side and a text of megabytes
    costs what its kept tokens cost. :attr:`backend` is a copy configured like a Hugging Face
    tokenizer, made only when asked for (parsing a tokenizer takes a cold start's 15 ms).

    Args:
        tokenizer: a ``tokenizers.Tokenizer``; its padding and truncation settings are removed.
        max_length: truncation length in tokens (special tokens included); ``None`` for none.
        pad_id, pad_type_id, pad_token: the padding token.
        padding_side, truncation_side: ``"right"`` or ``"left"``.
        add_special_tokens: add ``[CLS]``/``[SEP]``-style tokens (off for sparse static embeddings).
    """

    def __init__(self, tokenizer: Tokenizer, max_length: int | None, *, pad_id: int = 0, pad_type_id: int = 0,
                 pad_token: str = "[PAD]", padding_side: str = "right", truncation_side: str = "right",
                 add_special_tokens: bool = True) -> None:
        tokenizer.no_padding()
        tokenizer.no_truncation()
        self._tokenizer = tokenizer
        self._max_length = max_length
        self._backend: Tokenizer | None = None
        self.add_special_tokens = add_special_tokens
        self._settings: dict[str, Any] = {"pad_id": pad_id, "pad_type_id": pad_type_id, "pad_token": pad_token,
                                          "padding_side": padding_side, "truncation_side": truncation_side,
                                          "add_special_tokens": add_special_tokens}
        self.special_tokens: dict[str, str] = {}
        self._special_ids = {i for i, tok in tokenizer.get_added_tokens_decoder().items() if tok.special}
        self._padding = (pad_id, pad_type_id, padding_side)
        self.pad_to_length: int | None = None  # pad every batch to this length (fixed query expansion)

    @property
    def max_length(self) -> int | None:
        """Truncation length in tokens, special tokens included (``None``: no truncation)."""
        return self._max_length

    @max_length.setter
    def max_length(self, value: int | None) -> None:
        self._max_length = value
        if self._backend is not None:
            self._configure(self._backend)

    @property
    def truncation_side(self) -> str:
        """``right`` or ``left``: where texts over :attr:`max_length` lose tokens (a call may override it)."""
        return str(self._settings["truncation_side"])

    def _configure(self, tokenizer: Tokenizer) -> None:
        """Give ``tokenizer`` this tokenizer's padding and truncation."""
        s = self._settings
        tokenizer.enable_padding(direction=s["padding_side"], pad_id=s["pad_id"], pad_type_id=s["pad_type_id"],
                                 pad_token=s["pad_token"], length=self.pad_to_length)
        if self._max_length is None:
            tokenizer.no_truncation()
        else:
            tokenizer.enable_truncation(self._max_length, strategy="longest_first", direction=s["truncation_side"])

    @classmethod
    def from_dir(cls, directory: Path, *, max_seq_length: int | None = None, do_lower_case: bool = False,
                 hf_config: HFConfig | None = None, add_special_tokens: bool = True) -> TextTokenizer:
        """Load ``tokenizer.json`` of ``directory`` with sentence-transformers' overrides.

        Raises:
            ModelNotFoundError: no ``tokenizer.json`` (slow-only tokenizers are not supported).
            ConfigError: the file cannot be parsed.
        """
        path = directory / "tokenizer.json"
        if not path.is_file():
            raise ModelNotFoundError(f"{directory} has no tokenizer.json; onnx-st needs a fast tokenizer file")
        with foreign_errors(ConfigError, f"Cannot read {path}"):
            tokenizer = Tokenizer.from_file(str(path))
        padding = tokenizer.padding or {}
        if do_lower_case and not _has_lowercase(read_json(path).get("normalizer")):
            current = tokenizer.normalizer
            parts = [normalizers.Lowercase()] + ([current] if current is not None else [])
            tokenizer.normalizer = normalizers.Sequence(parts)
        config_path = directory / "tokenizer_config.json"
        tok_config = read_json(config_path, required=False)
        special_map = read_json(directory / "special_tokens_map.json", required=False)
        max_length = resolve_max_length(max_seq_length, tok_config, hf_config or HFConfig.read(directory))
        padding_side = config_str(tok_config, "padding_side", "right", config_path, SIDES)
        truncation_side = config_str(tok_config, "truncation_side", "right", config_path, SIDES)
        pad_token = _token_content(tok_config.get("pad_token")) or _token_content(special_map.get("pad_token")) \
            or padding.get("pad_token")
        pad_id = tokenizer.token_to_id(pad_token) if pad_token else None
        if pad_id is None:
            pad_id = int(padding.get("pad_id", 0))
        result = cls(tokenizer, max_length, pad_id=pad_id, pad_type_id=int(padding.get("pad_type_id", 0)),
                     pad_token=pad_token or "[PAD]", padding_side=padding_side,
                     truncation_side=truncation_side,
                     add_special_tokens=add_special_tokens)
        for key in ("mask_token", "eos_token", "unk_token"):
            token = _token_content(tok_config.get(key)) or _token_content(special_map.get(key))
            if token is not None:
                result.special_tokens[key] = token
        return result

    def derive(self, max_length: int | None, pad_to_length: int | None = None) -> TextTokenizer:
        """A tokenizer with its own truncation length, padding every batch to ``pad_to_length`` when given.

        Both share the unconfigured ``tokenizers.Tokenizer`` (lengths live here, not in it), so per-task
        lengths never change this one and cost no second parse.
        """
        copy = TextTokenizer(self._tokenizer, max_length, **self._settings)
        copy.special_tokens = dict(self.special_tokens)
        copy.pad_to_length = pad_to_length
        return copy

    def register_prefix_token(self, prefix: str) -> None:
        """Tokenize a known prompt prefix (``[unused0] ``, ``[Q] ``) as one special token, as
        sentence-transformers does for legacy ColBERT checkpoints; unknown prefixes stay text."""
        if not prefix or not prefix.split():
            return
        for candidate in (prefix, prefix.split(None, 1)[0]):
            if self._tokenizer.token_to_id(candidate) is None:
                continue
            if self._tokenizer.encode(candidate, add_special_tokens=False).tokens != [candidate]:
                self._tokenizer.add_special_tokens([AddedToken(candidate, special=True, normalized=False)])
                token_id = self._tokenizer.token_to_id(candidate)
                if token_id is not None:
                    self._special_ids.add(token_id)
                self._backend = None  # a copy made before lacks the token
            return

    def token_id(self, token: str) -> int | None:
        """The id of one vocabulary or added token, ``None`` when it has none."""
        return self._tokenizer.token_to_id(token)

    @property
    def backend(self) -> Tokenizer:
        """A ``tokenizers.Tokenizer`` with this tokenizer's padding and truncation (a copy made on first use;
        changing it does not change how this tokenizer encodes)."""
        if self._backend is None:
            backend = Tokenizer.from_str(self._tokenizer.to_str())
            self._configure(backend)
            self._backend = backend
        return self._backend

    def __call__(self, texts: Sequence[str] | Sequence[tuple[str, str]]) -> dict[str, np.ndarray]:
        """Tokenize a batch (strings or ``(a, b)`` pairs), padded to its longest item.

        Pairs are truncated longest-first in memory linear in their length (:mod:`onnx_st._runtime.pairs`);
        within :func:`truncating_from`, both truncate from the side it names.
        """
        tokens = self.tokenize(texts)
        return self.pad(tokens, range(len(tokens)))

    def tokenize(self, texts: Sequence[str] | Sequence[tuple[str, str]]) -> Tokenized:
        """Tokenize and truncate every text (or pair) once, without padding; :meth:`pad` makes batches of it.

        Raises:
            InputError: a text cannot be tokenized (the cause is the tokenizer's error).
        """
        items = list(texts)
        with foreign_errors(InputError, "Cannot tokenize the input"):
            parts = [Tokenized.of(self._encode(items[i:i + _CHUNK])) for i in range(0, len(items), _CHUNK)]
        return Tokenized.concat(parts) if parts else Tokenized.of([])

    def _encode(self, items: list[Any]) -> list[Any]:
        """Encodings of a batch, truncated but not padded."""
        max_length = self._max_length
        direction = _SIDE.get() or self.truncation_side
        special = self.add_special_tokens
        pairs = [i for i, t in enumerate(items) if not isinstance(t, str)]
        if pairs and len(pairs) < len(items):  # a batch mixing texts and pairs: each part on its own path
            singles = [i for i, t in enumerate(items) if isinstance(t, str)]
            merged: list[Any] = [None] * len(items)
            for idx, part in ((pairs, self._encode([items[i] for i in pairs])),
                              (singles, self._encode([items[i] for i in singles]))):
                for i, encoding in zip(idx, part):
                    merged[i] = encoding
            return merged
        if pairs:
            return encode_pairs(self._tokenizer, items, max_length, direction, special)  # type: ignore[no-any-return]
        if max_length is None:
            return self._tokenizer.encode_batch(items, add_special_tokens=special)
        # truncated on the side of this call, long texts on a piece
        raw = self._tokenizer
        limit = max(max_length - (raw.num_special_tokens_to_add(False) if special else 0), 0)
        encodings = []
        for e, _ in encode_capped(raw, [str(t) for t in items], limit, direction):
            e.truncate(limit, direction=direction)
            encodings.append(raw.post_process(e, None, add_special_tokens=special))
        return encodings

    @property
    def raw_backend(self) -> Tokenizer:
        """The ``tokenizers.Tokenizer`` that encodes, without truncation or padding (never reconfigure it)."""
        return self._tokenizer

    def pad(self, tokens: Tokenized, rows: Iterable[int]) -> dict[str, np.ndarray]:
        """``input_ids``/``attention_mask``/``token_type_ids`` of ``rows`` of ``tokens``, padded to the longest
        (to :attr:`pad_to_length` at least, when set) on this tokenizer's padding side."""
        rows = np.fromiter(rows, np.int64)
        lengths = tokens.lengths[rows]
        width = int(lengths.max(initial=0))
        if self.pad_to_length is not None and len(rows):  # fixed-length padding (query expansion)
            width = max(width, self.pad_to_length)
        pad_id, pad_type_id, side = self._padding
        positions = np.arange(width)
        keep = positions >= (width - lengths)[:, None] if side == "left" else positions < lengths[:, None]
        starts = tokens.offsets[rows]
        flat = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(int(lengths.sum()))
        arrays = {"input_ids": np.full((len(rows), width), pad_id, dtype=np.int64),
                  "attention_mask": keep.astype(np.int64),
                  "token_type_ids": np.full((len(rows), width), pad_type_id, dtype=np.int64)}
        arrays["input_ids"][keep] = tokens.ids[flat]  # row after row, in order: as a boolean mask fills
        arrays["token_type_ids"][keep] = tokens.type_ids[flat]
        return arrays

    def prompt_length(self, prompt: str) -> int:
        """Tokens a prompt takes at the start of a text, without a trailing special token."""
        encoding = self._tokenizer.encode(prompt, add_special_tokens=False)
        if self._max_length is not None:
            encoding.truncate(max(self._max_length - self._tokenizer.num_special_tokens_to_add(False), 0),
                              direction=self.truncation_side)
        ids = self._tokenizer.post_process(encoding, None, add_special_tokens=True).ids
        return len(ids) - 1 if ids and ids[-1] in self._special_ids else len(ids)

    def count_tokens(self, texts: Sequence[Any], max_length: int | None = _OWN) -> list[int]:
        """Token count of each text (or pair) after truncation, special tokens included: the one token counter.

        A pair is counted side by side, each text only up to the length truncation keeps: memory follows
        what is kept, never the product of the two lengths or a text of megabytes.

        Args:
            max_length: truncation length (default: this tokenizer's); ``None`` counts whole texts, each
                tokenized in pieces (:func:`~onnx_st._runtime.pairs.length_in_pieces`).

        Raises:
            InputError: a text cannot be tokenized (the cause is the tokenizer's error).
        """
        items = list(texts)
        if not items:
            return []
        raw, length = self._tokenizer, self._max_length if max_length is _OWN else max_length
        with foreign_errors(InputError, "Cannot tokenize the input"):
            pairs = [i for i, t in enumerate(items) if not isinstance(t, str)]
            counts = [0] * len(items)
            for is_pair, idx in ((False, [i for i, t in enumerate(items) if isinstance(t, str)]), (True, pairs)):
                if not idx:
                    continue
                specials = raw.num_special_tokens_to_add(is_pair) if self.add_special_tokens else 0
                budget = None if length is None else max(length - specials, 0)
                sides = [[str(items[i][k]) for i in idx] for k in (0, 1)] if is_pair else [[items[i] for i in idx]]
                if budget is None:
                    side_counts = [[length_in_pieces(raw, text) for text in side] for side in sides]
                else:
                    side_counts = [[len(e.ids) for e, _ in encode_capped(raw, side, budget, "right")]
                                   for side in sides]
                for i, n in zip(idx, map(sum, zip(*side_counts))):
                    counts[i] = (n if budget is None else min(n, budget)) + specials
        return counts

    def decode_id(self, token_id: int) -> str:
        """The vocabulary string of one token id."""
        token = self._tokenizer.id_to_token(int(token_id))
        if token is None:
            raise InputError(f"Token id {token_id} is outside the vocabulary")
        return token

    @property
    def vocab_size(self) -> int:
        """Size of the vocabulary, added tokens included."""
        return self._tokenizer.get_vocab_size(with_added_tokens=True)
