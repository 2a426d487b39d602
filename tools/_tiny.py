"""Tiny deterministic building blocks for fixtures: corpus, WordPiece tokenizer, small BERT models."""

from __future__ import annotations

import functools
import string
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import (
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    BertModel,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

from exporter import _deps  # noqa: F401  (raises ImportError with the install command without the export extra)

SPECIAL_TOKENS: list[str] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB_SIZE = 600
MAX_SEQ_LENGTH = 64

CORPUS: list[str] = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "A man is eating food while sitting at a small wooden table.",
    "A woman is playing the violin in front of a large audience.",
    "The weather today is sunny with a light breeze from the west.",
    "It is raining heavily in the city and the streets are flooded.",
    "Children are playing football in the park after school.",
    "The capital of France is Paris, a city famous for its museums.",
    "Berlin is the capital and largest city of Germany.",
    "The Eiffel Tower was completed in 1889 for the world fair.",
    "Machine learning models learn patterns from large amounts of data.",
    "Neural networks are trained with gradient descent and backpropagation.",
    "Sentence embeddings map texts to vectors in a semantic space.",
    "Semantic search finds documents that are similar in meaning to a query.",
    "A cross encoder scores a query and a document together.",
    "Sparse retrieval uses weights over the vocabulary of a tokenizer.",
    "The library exports transformer models to the ONNX format.",
    "Python is a popular programming language for data science.",
    "The cat sleeps on the warm windowsill all afternoon.",
    "My dog loves to chase the ball across the garden.",
    "She reads a book about the history of ancient Rome.",
    "He drives to work every morning before the traffic starts.",
    "The train to London leaves the station at eight o'clock.",
    "We bought fresh bread, cheese and apples at the market.",
    "The doctor said that regular exercise improves your health.",
    "Drinking enough water every day is important for the body.",
    "The movie was long, but the ending was surprisingly good.",
    "They are planning a trip to the mountains next summer.",
    "The company reported strong profits in the third quarter.",
    "Stock markets fell sharply after the announcement.",
    "The new phone has a better camera and a faster processor.",
    "Please remember to turn off the lights when you leave.",
    "What is the best way to learn a new language quickly?",
    "How many people live in the largest city of the world?",
    "Where can I find a good restaurant near the central station?",
    "Why is the sky blue during the day and red at sunset?",
    "Who wrote the famous novel about a white whale?",
    "The ocean covers more than seventy percent of the planet.",
    "Scientists discovered a new species of frog in the rainforest.",
    "The museum opens at nine and closes at five on weekdays.",
    "Music, art and literature are important parts of culture.",
    "The teacher explained the problem with a simple example.",
    "Students study mathematics, physics, chemistry and biology.",
    "The recipe needs two eggs, some flour, sugar and butter.",
    "Coffee and tea are the most popular drinks in the morning.",
    "The garden is full of roses, tulips and sunflowers in spring.",
    "Winter nights are cold and long in the northern countries.",
    "The river flows through the valley into the sea.",
    "A bird is singing in the tree outside my window.",
    "The computer crashed and I lost all of my unsaved work.",
    "Open source software is developed by communities of volunteers.",
    "The search engine returns a ranked list of relevant pages.",
    "Questions and answers help users find useful information.",
    "Good documentation makes a project easier to understand and use.",
    "The runtime reads the tokenizer, the pooling config and the graph.",
    "Numbers like 42, 3.14 and 2024 appear in many texts.",
    "Emails, names and dates are common in business documents.",
    "The hotel room had a view of the beach and the harbor.",
    "Our team won the final match after a difficult season.",
    "The president gave a speech about the economy and jobs.",
    "Farmers grow wheat, corn and rice in the fertile fields.",
    "The bridge was closed because of the storm last night.",
    "Electric cars are becoming more common on our roads.",
    "The baby laughed when the puppy licked her hand.",
    "Reading every day improves vocabulary and writing skills.",
    "The spacecraft landed safely on the surface of the moon.",
    "Friends gathered around the fire to tell stories and sing.",
    "The painter used bright colors to show the joy of summer.",
    "An apple a day keeps the doctor away, as the saying goes.",
    "The small village is quiet, peaceful and very friendly.",
    "Check the results carefully before you publish the report.",
]


@functools.lru_cache(maxsize=1)
def learned_vocab() -> tuple[str, ...]:
    """The fixture vocabulary (learned once per process)."""
    return tuple(_learn_wordpiece_vocab(CORPUS, VOCAB_SIZE))


def _learn_wordpiece_vocab(texts: list[str], vocab_size: int) -> list[str]:
    """Learn a WordPiece vocabulary by greedy pair merges with lexicographic tie-breaking.

    The ``tokenizers`` trainer breaks ties between equally frequent pairs in hash order, which
    differs from one process to the next; this learner applies the same BPE-style merge procedure
    deterministically so that rebuilt fixtures are byte-identical.
    """
    pre = pre_tokenizers.BertPreTokenizer()
    norm = normalizers.BertNormalizer(lowercase=True)
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(word for word, _ in pre.pre_tokenize_str(norm.normalize_str(text)))
    alphabet = sorted(set(string.ascii_letters + string.digits + string.punctuation) | set("".join(counts)))
    vocab = list(SPECIAL_TOKENS) + alphabet + [f"##{c}" for c in alphabet]
    known = set(vocab)
    words = {w: [w[0]] + [f"##{c}" for c in w[1:]] for w in sorted(counts)}
    while len(vocab) < vocab_size:
        pairs: Counter[tuple[str, str]] = Counter()
        for word, pieces in words.items():
            for a, b in zip(pieces, pieces[1:], strict=False):
                pairs[(a, b)] += counts[word]
        if not pairs:
            break
        (a, b), _ = min(pairs.items(), key=lambda item: (-item[1], item[0]))
        merged = a + b[2:]
        for word, pieces in words.items():
            i, out = 0, []
            while i < len(pieces):
                if i + 1 < len(pieces) and pieces[i] == a and pieces[i + 1] == b:
                    out.append(merged)
                    i += 2
                else:
                    out.append(pieces[i])
                    i += 1
            words[word] = out
        if merged not in known:
            known.add(merged)
            vocab.append(merged)
    return vocab


def build_tokenizer(lowercase: bool = True) -> Tokenizer:
    """WordPiece tokenizer over the learned vocabulary, BERT normalization and [CLS]/[SEP] templates."""
    vocab = learned_vocab()
    tokenizer = Tokenizer(
        models.WordPiece(vocab={tok: i for i, tok in enumerate(vocab)}, unk_token="[UNK]", max_input_chars_per_word=100)
    )
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lowercase
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return tokenizer


def bert_config(**overrides: Any) -> BertConfig:
    """Config of the tiny BERT used by every fixture."""
    params: dict[str, Any] = {
        "vocab_size": VOCAB_SIZE,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": 128,
        "type_vocab_size": 2,
        "initializer_range": 0.2,
        "pad_token_id": SPECIAL_TOKENS.index("[PAD]"),
    }
    params.update(overrides)
    return BertConfig(**params)


def hf_tokenizer(
    lowercase: bool = True, model_max_length: int = MAX_SEQ_LENGTH, type_ids: bool = True
) -> PreTrainedTokenizerFast:
    """The tiny tokenizer wrapped for ``transformers`` (settings go to tokenizer_config.json).

    A generic ``TokenizersBackend`` only returns ``token_type_ids`` (so that sentence-transformers
    feeds them to BERT) when ``model_input_names`` lists them, as BERT tokenizers do.
    """
    names = ["input_ids", "token_type_ids", "attention_mask"] if type_ids else ["input_ids", "attention_mask"]
    return PreTrainedTokenizerFast(
        tokenizer_object=build_tokenizer(lowercase=lowercase),
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=model_max_length,
        model_input_names=names,
    )


def save_tiny_hf_model(
    out_dir: Path,
    *,
    head: str = "base",
    seed: int = 0,
    num_labels: int = 1,
    lowercase: bool = True,
    model_max_length: int = MAX_SEQ_LENGTH,
    type_ids: bool = True,
) -> Path:
    """Save a seeded tiny BERT (``base``, ``mlm`` or ``cls`` head) plus tokenizer with ``save_pretrained``."""
    torch.manual_seed(seed)
    model: PreTrainedModel
    if head == "base":
        model = BertModel(bert_config())
    elif head == "mlm":
        model = BertForMaskedLM(bert_config())
        # A negative vocabulary bias keeps SPLADE outputs sparse (about 15% active terms), as in trained models.
        with torch.no_grad():
            model.cls.predictions.bias.fill_(-2.0)
    elif head == "cls":
        model = BertForSequenceClassification(bert_config(num_labels=num_labels))
    else:
        raise ValueError(f"unknown head {head!r}")
    model.eval()
    model.save_pretrained(out_dir, safe_serialization=True)
    hf_tokenizer(lowercase=lowercase, model_max_length=model_max_length, type_ids=type_ids).save_pretrained(out_dir)
    return out_dir
