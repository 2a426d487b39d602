"""Pair truncation: equal to ``tokenizers``' longest_first on every tokenizer family, in bounded memory."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

import onnx_st._runtime.pairs as pairs_module
from onnx_st._runtime.pairs import length_in_pieces
from onnx_st._runtime.tokenizer import TextTokenizer, truncating_from

from .conftest import ROOT, fixture_dir

_WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dogs", "playing", "unbelievable",
          "антидисестаблишментарианизм", "東京都", "café", "naïve", ",", ".", "!", "?"]


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(_WORDS) + rng.choice(["", "", "s", "ing", "-", "'s"]) for _ in range(n)) + \
        rng.choice(["", " ", "  "])


def _corpus() -> list[str]:
    rng = random.Random(1)
    return [_text(rng, 50) for _ in range(100)]


def _byte_level_bpe() -> Tokenizer:
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(_corpus(), trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>", "<pad>", "</s>"],
                                                           initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    return tok


def _unigram() -> Tokenizer:
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.train_from_iterator(_corpus(), trainers.UnigramTrainer(vocab_size=200, unk_token="<unk>",
                                                               special_tokens=["<s>", "<pad>", "</s>", "<unk>"]))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> </s> $B:1 </s>:1",
                                                       special_tokens=[("<s>", 0), ("</s>", 2)])
    return tok


def _wordpiece() -> Tokenizer:
    return Tokenizer.from_file(str(fixture_dir("cross-1label") / "tokenizer.json"))


@pytest.mark.parametrize("make", [_wordpiece, _byte_level_bpe, _unigram])
@pytest.mark.parametrize("side", ["right", "left"])
def test_pairs_equal_longest_first(make: object, side: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pairs_module, "_CHARS_PER_TOKEN", 2)  # most long texts go through encode_capped
    base = make()  # type: ignore[operator]
    rng = random.Random(7)
    for max_length in (7, 16, 33):  # odd and even numbers of tokens left for the texts
        ref = Tokenizer.from_str(base.to_str())
        ref.enable_truncation(max_length, strategy="longest_first", direction=side)
        ref.enable_padding(pad_id=1, pad_token="<pad>")
        mine = TextTokenizer(Tokenizer.from_str(base.to_str()), max_length, pad_id=1, pad_token="<pad>",
                             truncation_side=side)
        # one side up to 150 words (tokenized on a piece, encode_capped); the reference tokenizer's own
        # overflow grows with the product of the two lengths, so the other side stays short
        short = 12 if max_length < 10 else 40
        pairs = [(_text(rng, rng.randint(0, short)), _text(rng, rng.randint(0, short))) for _ in range(30)]
        pairs += [(_text(rng, rng.randint(80, 120)), _text(rng, rng.randint(0, short))) for _ in range(6)]
        pairs += [(_text(rng, rng.randint(0, short)), _text(rng, rng.randint(80, 120))) for _ in range(6)]
        expected, got = ref.encode_batch(pairs), mine(pairs)
        for key, attr in (("input_ids", "ids"), ("token_type_ids", "type_ids"), ("attention_mask", "attention_mask")):
            np.testing.assert_array_equal(got[key], np.array([getattr(e, attr) for e in expected]))
        singles = [a for a, _ in pairs]
        np.testing.assert_array_equal(mine(singles)["input_ids"], [e.ids for e in ref.encode_batch(singles)])
        other = "left" if side == "right" else "right"  # a call-local side leaves the shared tokenizer alone
        ref.enable_truncation(max_length, strategy="longest_first", direction=other)
        with truncating_from(other):
            got_singles, got_pairs = mine(singles), mine(pairs)
        np.testing.assert_array_equal(got_singles["input_ids"], [e.ids for e in ref.encode_batch(singles)])
        np.testing.assert_array_equal(got_pairs["input_ids"], [e.ids for e in ref.encode_batch(pairs)])
        assert mine.backend.truncation["direction"] == side


def test_token_count_on_pieces() -> None:
    raw = _wordpiece()
    rng = random.Random(3)
    for _ in range(20):
        text = _text(rng, rng.randint(0, 300))
        assert length_in_pieces(raw, text, chunk=50) == len(raw.encode(text, add_special_tokens=False).ids)


def test_long_pairs_in_bounded_memory() -> None:
    """Two 20,000-word texts: tokenizers alone needs gigabytes; a 600 MiB address space is enough here."""
    script = textwrap.dedent(f"""
        import json, resource
        resource.setrlimit(resource.RLIMIT_AS, (600 << 20, 600 << 20))
        import onnx_st
        model = onnx_st.CrossEncoder({str(fixture_dir("cross-1label"))!r})
        text = ("lorem ipsum dolor sit amet consectetur adipiscing elit " * 2500).strip()
        alone = float(model.predict((text[:200], text[:300])))
        # batch_size=1: more pairs than a batch, so they are counted and sorted first, in bounded memory too
        print(json.dumps([model.predict([(text, text), (text[:200], text[:300])], batch_size=1).tolist(), alone]))
    """)
    done = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    scores, alone = json.loads(done.stdout)
    assert abs(scores[1] - alone) < 1e-6
