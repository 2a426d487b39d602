"""Text pairs truncated longest-first in memory linear in their length.

``tokenizers`` truncates a pair by cutting each side into overflow pieces and then pairing every
piece of one side with every piece of the other, so two long texts take memory in
``len(a) x len(b)`` before anything is dropped (two 20,000-word texts: gigabytes). Here each side is
tokenized once without truncation, the kept lengths are computed with the same longest-first rule,
each side's text is cut just after the kept words and re-tokenized, and the special tokens are added
by the tokenizer's own post-processor. The kept ids are checked against the full tokenization, so
the result equals what ``tokenizers`` (and so sentence-transformers) gives, pair for pair.
"""

from __future__ import annotations

from collections.abc import Sequence

from tokenizers import Encoding, Tokenizer

from onnx_st.errors import InputError


def longest_first_lengths(n_a: int, n_b: int, limit: int) -> tuple[int, int]:
    """Tokens kept of each side under ``tokenizers``' ``longest_first`` rule (``limit``: without special tokens)."""
    if n_a + n_b <= limit:
        return n_a, n_b
    swap = n_a > n_b
    short, long = (n_b, n_a) if swap else (n_a, n_b)
    long = short if short > limit else max(short, limit - short)
    if short + long > limit:
        short = limit // 2
        long = short + limit % 2
    return (long, short) if swap else (short, long)


_CHARS_PER_TOKEN = 8
"""Texts longer than this many characters per token kept are tokenized on a prefix (or suffix) first."""


def _complete(encoding: Encoding, keep: int, direction: str) -> bool:
    """Whether ``encoding`` holds more than ``keep`` tokens and the word of the last kept one is complete."""
    words, n = encoding.word_ids, len(encoding.ids)
    if n <= keep or keep == 0:
        return n > keep
    edge = keep - 1 if direction == "right" else n - keep
    rest = range(edge + 1, n) if direction == "right" else range(edge - 1, -1, -1)
    return any(words[i] is None or words[i] != words[edge] for i in rest)


def _kept(encoding: Encoding, keep: int, direction: str) -> list[int]:
    return encoding.ids[:keep] if direction == "right" else encoding.ids[len(encoding.ids) - keep:]


def _piece(text: str, size: int, direction: str) -> str:
    return text[:size] if direction == "right" else text[len(text) - size:]


def encode_capped(raw: Tokenizer, texts: Sequence[str], keep: int | None,
                  direction: str) -> list[tuple[Encoding, str]]:
    """Encodings (no special tokens) exact in their ``keep`` kept tokens and in whether they hold more.

    Each comes with the text its offsets refer to. A text far longer than ``keep`` tokens is tokenized
    on a prefix (``right``) or suffix (``left``) that ends words past the kept tokens, so a 2 MB text
    costs what its kept part costs; the kept ids are checked against a piece twice as long, else the
    whole text is tokenized.
    """
    if keep is None:
        return list(zip(raw.encode_batch(list(texts), add_special_tokens=False), texts))
    budget = _CHARS_PER_TOKEN * (keep + 16)
    encoded = raw.encode_batch([t if len(t) <= 2 * budget else "" for t in texts], add_special_tokens=False)
    out = list(zip(encoded, texts))
    for i, text in enumerate(texts):
        size = budget
        while len(text) > 2 * size:
            piece = _piece(text, size, direction)
            first, second = raw.encode_batch([piece, _piece(text, 2 * size, direction)], add_special_tokens=False)
            if _complete(first, keep, direction) and _kept(first, keep, direction) == _kept(second, keep, direction):
                out[i] = (first, piece)
                break
            size *= 4
        else:
            if len(text) > 2 * budget:
                out[i] = (raw.encode(text, add_special_tokens=False), text)
    return out


def length_in_pieces(raw: Tokenizer, text: str, chunk: int = 65536) -> int:
    """Tokens of ``text`` (no special tokens), tokenized in pieces split before a space: memory of one piece.

    The primitive :meth:`onnx_st._runtime.tokenizer.TextTokenizer.count_tokens` counts untruncated texts with.
    """
    pieces, start = [], 0
    while len(text) - start > chunk:
        split = text.rfind(" ", start + 1, start + chunk)
        if split <= start:
            split = text.find(" ", start + chunk)
            if split < 0:
                break
        pieces.append(text[start:split])
        start = split
    pieces.append(text[start:])
    return sum(len(e.ids) for e in raw.encode_batch(pieces, add_special_tokens=False))


def _cut(raw: Tokenizer, text: str, full: Encoding, keep: int, direction: str) -> Encoding:
    """``full`` truncated to ``keep`` tokens, without overflow pieces: the text is cut after the kept words."""
    n, words, offsets = len(full.ids), full.word_ids, full.offsets
    if keep == 0:
        full.truncate(0, direction=direction)
        return full
    if direction == "left":
        start = n - keep
        k = start - 1
        while k >= 0 and words[k] is not None and words[k] == words[start]:
            k -= 1
        piece = text[offsets[k][1]:] if k >= 0 else text
        expected = full.ids[start:]
    else:
        j = keep
        while j < n and words[j] is not None and words[j] == words[keep - 1]:
            j += 1
        piece = text[:offsets[j][0]] if j < n else text
        expected = full.ids[:keep]
    encoding = raw.encode(piece, add_special_tokens=False) if piece is not text else full
    encoding.truncate(keep, direction=direction)
    if encoding.ids != expected:  # a tokenizer whose words depend on what follows: keep the full text
        full.truncate(keep, direction=direction)
        return full
    return encoding


def encode_pairs(raw: Tokenizer, pairs: Sequence[tuple[str, str]], max_length: int | None, direction: str,
                 add_special_tokens: bool = True) -> list[Encoding]:
    """Pair encodings truncated longest-first to ``max_length`` tokens (special tokens included), unpadded.

    Each side is tokenized once (long ones on a piece, :func:`encode_capped`); lengths beyond ``max_length``
    only tell that a side is truncated, which is all ``longest_first`` asks of them.

    Args:
        raw: a tokenizer without truncation or padding.
        direction: ``right`` keeps the start of each side, ``left`` its end.

    Raises:
        InputError: ``max_length`` is shorter than the special tokens of a pair.
    """
    limit = None
    if max_length is not None:
        limit = max_length - (raw.num_special_tokens_to_add(True) if add_special_tokens else 0)
        if limit < 0:
            raise InputError(f"max_length {max_length} is shorter than the special tokens of a pair")
    firsts = encode_capped(raw, [a for a, _ in pairs], limit, direction)
    seconds = encode_capped(raw, [b for _, b in pairs], limit, direction)
    out = []
    for (full_a, a), (full_b, b), (text_a, text_b) in zip(firsts, seconds, pairs):
        enc_a, enc_b = full_a, full_b
        if limit is not None:
            n_a, n_b = len(full_a.ids), len(full_b.ids)
            if limit % 2 and n_a > limit and n_b > limit and (a is not text_a or b is not text_b):
                # both truncated to halves: the longer side keeps the odd token, so the whole lengths decide
                n_a = length_in_pieces(raw, text_a) if a is not text_a else n_a
                n_b = length_in_pieces(raw, text_b) if b is not text_b else n_b
            keep_a, keep_b = longest_first_lengths(n_a, n_b, limit)
            if keep_a < len(full_a.ids):
                enc_a = _cut(raw, a, full_a, keep_a, direction)
            if keep_b < len(full_b.ids):
                enc_b = _cut(raw, b, full_b, keep_b, direction)
        out.append(raw.post_process(enc_a, enc_b, add_special_tokens=add_special_tokens))
    return out
