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

from .errors import InputError


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

    Args:
        raw: a tokenizer without truncation or padding.
        direction: ``right`` keeps the start of each side, ``left`` its end.

    Raises:
        InputError: ``max_length`` is shorter than the special tokens of a pair.
    """
    firsts = raw.encode_batch([a for a, _ in pairs], add_special_tokens=False)
    seconds = raw.encode_batch([b for _, b in pairs], add_special_tokens=False)
    limit = None
    if max_length is not None:
        limit = max_length - (raw.num_special_tokens_to_add(True) if add_special_tokens else 0)
        if limit < 0:
            raise InputError(f"max_length {max_length} is shorter than the special tokens of a pair")
    out = []
    for (a, b), full_a, full_b in zip(pairs, firsts, seconds):
        enc_a, enc_b = full_a, full_b
        if limit is not None:
            keep_a, keep_b = longest_first_lengths(len(full_a.ids), len(full_b.ids), limit)
            if keep_a < len(full_a.ids):
                enc_a = _cut(raw, a, full_a, keep_a, direction)
            if keep_b < len(full_b.ids):
                enc_b = _cut(raw, b, full_b, keep_b, direction)
        out.append(raw.post_process(enc_a, enc_b, add_special_tokens=add_special_tokens))
    return out
