"""Deterministic English texts of varied length for parity tests and benchmarks.

Sentences come from the docstrings of a fixed list of standard-library modules (present on every
machine); long texts join consecutive sentences, so many exceed 128 and 256 tokens.
"""

from __future__ import annotations

import importlib
import inspect
import random
import re

_MODULES = ("json", "os", "re", "collections", "itertools", "functools", "pathlib", "argparse", "logging",
            "typing", "unittest", "email.message", "http.client", "urllib.parse", "textwrap", "string",
            "datetime", "decimal", "fractions", "statistics", "random", "subprocess", "threading", "asyncio",
            "shutil", "tempfile", "zipfile", "tarfile", "csv", "sqlite3", "heapq", "bisect", "contextlib",
            "dataclasses", "enum", "inspect", "pickle", "socket", "ssl", "struct", "codecs", "difflib")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def stdlib_sentences() -> list[str]:
    """Every sentence of 4 words or more found in the docstrings of the fixed module list, in order."""
    sentences: list[str] = []
    seen: set[str] = set()
    for name in _MODULES:
        module = importlib.import_module(name)
        docs = [inspect.getdoc(module) or ""]
        for attr in sorted(vars(module)):
            if not attr.startswith("_"):
                docs.append(inspect.getdoc(getattr(module, attr)) or "")
        for doc in docs:
            text = " ".join(doc.split())
            for sentence in _SENTENCE_END.split(text):
                if len(sentence.split()) >= 4 and sentence not in seen:
                    seen.add(sentence)
                    sentences.append(sentence)
    return sentences


def sample_texts(n: int, *, seed: int = 0, long_fraction: float = 0.3,
                 long_words: tuple[int, int] = (150, 450)) -> list[str]:
    """``n`` texts: mostly single sentences, ``long_fraction`` of them ``long_words`` words long.

    The same arguments give the same texts on every machine with the same Python version.
    """
    sentences = stdlib_sentences()
    rng = random.Random(seed)
    texts: list[str] = []
    while len(texts) < n:
        start = rng.randrange(len(sentences))
        if rng.random() < long_fraction:
            words: list[str] = []
            target = rng.randint(*long_words)
            i = start
            while len(words) < target:
                words += sentences[i % len(sentences)].split()
                i += 1
            texts.append(" ".join(words[:target]))
        else:
            texts.append(sentences[start])
    return texts


def sample_pairs(n: int, *, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` (query, document) pairs: a short query and a document of varied length, some long."""
    queries = sample_texts(n, seed=seed + 1, long_fraction=0.0)
    documents = sample_texts(n, seed=seed + 2, long_fraction=0.4)
    return list(zip((" ".join(q.split()[:12]) for q in queries), documents))


def benchmark_sentences(n: int, *, seed: int = 0, min_words: int = 4, max_words: int = 120) -> list[str]:
    """``n`` English texts of ``min_words`` to ``max_words`` words, joined from consecutive docstring sentences."""
    sentences = stdlib_sentences()
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        target = rng.randint(min_words, max_words)
        i, words = rng.randrange(len(sentences)), list[str]()
        while len(words) < target:
            words += sentences[i % len(sentences)].split()
            i += 1
        texts.append(" ".join(words[:target]))
    return texts
