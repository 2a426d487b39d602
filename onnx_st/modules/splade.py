"""SPLADE modules: SpladePooling over MLM logits, the fused memory-bounded MLM path, SparseStaticEmbedding."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from onnx_st._runtime.config import (
    check_init_keys,
    config_int,
    config_str,
    inside,
    read_json_value,
    read_module_config,
)
from onnx_st._runtime.tokenizer import TextTokenizer
from onnx_st._runtime.weights import load_safetensors
from onnx_st.errors import ConfigError, ModelNotFoundError, OnnxModelError
from onnx_st.modules.base import (
    Features,
    InputModule,
    LoadContext,
    Module,
    PreparedInputs,
    Rows,
    module_context,
    with_prompt,
)
from onnx_st.modules.transformer import Transformer
from onnx_st.options import DEFAULT_LOGITS_BUDGET_MIB, RuntimeOptions

POOLING_STRATEGIES = ("max", "sum")
ACTIVATIONS = ("relu", "log1p_relu")


def splade_pool(logits: np.ndarray, attention_mask: np.ndarray, strategy: str = "max",
                activation: str = "relu") -> np.ndarray:
    """``(batch, seq, vocab)`` MLM logits -> ``(batch, vocab)`` SPLADE weights; overwrites ``logits``.

    ``log1p(relu(x))`` (``relu``) or ``log1p(log1p(relu(x)))`` (``log1p_relu``) of every attended
    token, then max or sum over tokens, exactly as sentence-transformers' SpladePooling.
    """
    if strategy == "max":  # the activation is monotone: pool first, activate the (batch, vocab) result
        pooled = _max_over_attended(logits, attention_mask)
        np.maximum(pooled, 0.0, out=pooled)  # padded positions would add relu(0) = 0: the same result
        np.log1p(pooled, out=pooled)
        return np.log1p(pooled, out=pooled) if activation == "log1p_relu" else pooled
    logits[attention_mask == 0] = 0.0  # padded positions contribute log1p(relu(0)) = 0
    np.maximum(logits, 0.0, out=logits)
    np.log1p(logits, out=logits)
    if activation == "log1p_relu":
        np.log1p(logits, out=logits)
    return logits.sum(axis=1, dtype=np.float32)


def _max_over_attended(logits: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """``(batch, vocab)`` maximum of each row's attended positions (``-inf`` for a row with none).

    A row whose attended positions are one run (right or left padding) is reduced over that slice only:
    no write into the logits, and padding is never read.
    """
    attended = attention_mask != 0
    pooled = np.empty((logits.shape[0], logits.shape[2]), dtype=logits.dtype)
    for row, (keep, out) in enumerate(zip(attended, pooled)):
        where = np.flatnonzero(keep)
        if not len(where):
            out.fill(-np.inf)
        elif where[-1] - where[0] + 1 == len(where):
            np.max(logits[row, where[0]:where[-1] + 1], axis=0, out=out)
        else:
            np.max(logits[row], axis=0, where=keep[:, None], initial=-np.inf, out=out)
    return pooled


class SpladePooling(Module):
    """Activation and max/sum pooling of the ``token_embeddings`` (MLM logits) into ``sentence_embedding``."""

    config_keys = ("pooling_strategy", "activation_function", "embedding_dimension")
    module_input_name = "token_embeddings"

    def __init__(self, pooling_strategy: str = "max", activation_function: str = "relu",
                 embedding_dimension: int | None = None) -> None:
        if pooling_strategy not in POOLING_STRATEGIES:
            raise ConfigError(f"SpladePooling pooling_strategy must be one of {POOLING_STRATEGIES}, "
                              f"got {pooling_strategy!r}")
        if activation_function not in ACTIVATIONS:
            raise ConfigError(f"SpladePooling activation_function must be one of {ACTIVATIONS}, "
                              f"got {activation_function!r}")
        self.pooling_strategy = pooling_strategy
        self.activation_function = activation_function
        self.embedding_dimension = embedding_dimension

    def get_embedding_dimension(self) -> int | None:
        """The vocabulary size, when the config names it."""
        return self.embedding_dimension

    @classmethod
    def load(cls, directory: str | Path, ctx: LoadContext | None = None) -> SpladePooling:
        """Read ``config.json`` (``word_embedding_dimension`` is the old name of ``embedding_dimension``).

        Raises:
            ConfigError: a bad value, or a key that is not a SpladePooling parameter.
        """
        directory, ctx = module_context(directory, ctx)
        config = read_module_config(directory)
        path = directory / "config.json"
        check_init_keys(config, ("pooling_strategy", "activation_function", "embedding_dimension", "chunk_size",
                                 "word_embedding_dimension"), "SpladePooling", path)
        key = "embedding_dimension" if config.get("embedding_dimension") is not None else "word_embedding_dimension"
        return cls(config_str(config, "pooling_strategy", "max", path, POOLING_STRATEGIES),
                   config_str(config, "activation_function", "relu", path, ACTIVATIONS),
                   config_int(config, key, None, path))

    def forward(self, features: Features) -> Features:
        """Pool ``token_embeddings`` (consumed: the logits array is overwritten)."""
        logits, mask = features["token_embeddings"], features["attention_mask"]
        if logits.ndim != 3 or logits.shape[:2] != mask.shape or (
                self.embedding_dimension is not None and logits.shape[2] != self.embedding_dimension):
            raise OnnxModelError(f"SpladePooling expects MLM logits of shape {(*mask.shape, self.embedding_dimension)}, "
                                 f"the model gave {logits.shape}")
        pooled = splade_pool(features["token_embeddings"], features["attention_mask"], self.pooling_strategy,
                             self.activation_function)
        out = {k: v for k, v in features.items() if k != "token_embeddings"}
        return {**out, "sentence_embedding": pooled}

    def __repr__(self) -> str:
        return f"SpladePooling({self.pooling_strategy!r}, {self.activation_function!r})"


class SpladeMLM(InputModule):
    """A fill-mask Transformer fused with its SpladePooling, run in sub-batches under a memory budget.

    The ``(rows, seq, vocab)`` float32 logits of one ONNX run stay below ``logits_budget_mib`` (one row
    at least), and each sub-batch is pooled before the next runs, so peak memory does not grow with
    ``batch_size``. ONNX Runtime holds about one more logits-sized buffer while it runs (the head's
    MatMul before its bias Add), so a run adds up to about twice the budget.
    """

    def __init__(self, transformer: Transformer, pooling: SpladePooling,
                 logits_budget_mib: float = DEFAULT_LOGITS_BUDGET_MIB) -> None:
        width, vocab = transformer.get_embedding_dimension(), pooling.embedding_dimension
        if width is not None and vocab is not None and width != vocab:
            raise OnnxModelError(f"The MLM Transformer gives logits over {width} tokens, the SpladePooling config "
                                 f"expects {vocab}")
        self.transformer = transformer
        self.pooling = pooling
        self.logits_budget_mib = logits_budget_mib
        self.tokenizer = transformer.tokenizer
        self.embedding_dimension = pooling.embedding_dimension or transformer.get_embedding_dimension()

    def get_embedding_dimension(self) -> int | None:
        """The vocabulary size."""
        return self.embedding_dimension

    def submodules(self) -> list[Module]:
        """The Transformer and the SpladePooling it fuses."""
        return [self.transformer, self.pooling]

    def apply_options(self, options: RuntimeOptions) -> None:
        """Take ``logits_budget_mib`` (and pass ``max_batch_tokens`` on to the Transformer)."""
        self.logits_budget_mib = options.logits_budget_mib
        super().apply_options(options)

    @property
    def max_seq_length(self) -> int | None:
        """Truncation length in tokens."""
        return self.transformer.max_seq_length

    @max_seq_length.setter
    def max_seq_length(self, value: int | None) -> None:
        self.transformer.max_seq_length = value

    def plan_runs(self, attention_mask: np.ndarray) -> list[tuple[int, int, int]]:
        """``(start, stop, width)`` of each ONNX run: consecutive rows whose ``(rows, width, vocab)`` float32
        logits fit the budget, ``width`` being their last attended position + 1 (trailing padding dropped).

        Dropping right padding leaves positions unchanged; left-padded rows keep their full width.
        """
        batch, seq_len = attention_mask.shape
        ends = seq_len - np.argmax(attention_mask[:, ::-1] > 0, axis=1)
        budget = self.logits_budget_mib * 2**20 / (4 * (self.embedding_dimension or 32_000))  # in tokens
        runs: list[tuple[int, int, int]] = []
        start = 0
        while start < batch:
            stop, width = start + 1, int(ends[start])
            while stop < batch and (stop + 1 - start) * max(width, int(ends[stop])) <= budget:
                width = max(width, int(ends[stop]))
                stop += 1
            runs.append((start, stop, max(width, 1)))
            start = stop
        return runs

    def preprocess(self, texts: Sequence[Any], prompt: str | None = None, task: str | None = None) -> Features:
        """Tokenize as the Transformer does."""
        return self.transformer.preprocess(texts, prompt=prompt, task=task)

    def count_tokens(self, texts: Sequence[Any], prompt: str | None = None, task: str | None = None) -> list[int]:
        """Token counts, as the Transformer counts them."""
        return self.transformer.count_tokens(texts, prompt=prompt, task=task)

    def prepare(self, texts: Sequence[Any], prompt: str | None = None, task: str | None = None) -> PreparedInputs:
        """Tokenize a call's texts once, as the Transformer does."""
        return self.transformer.prepare(texts, prompt=prompt, task=task)

    def collate(self, prepared: PreparedInputs, rows: Rows) -> Features:
        """One padded batch, as the Transformer makes it."""
        return self.transformer.collate(prepared, rows)

    def forward(self, features: Features) -> Features:
        """Run the graph and pool, sub-batch by sub-batch; adds ``sentence_embedding`` (batch, vocab)."""
        mask = features["attention_mask"]
        batch, seq_len = mask.shape
        parts: list[np.ndarray] = []
        for start, stop, width in self.plan_runs(mask):
            sub = {k: _rows(v, batch, seq_len, start, stop, width) for k, v in features.items()}
            parts.append(self.pooling.forward(self.transformer.forward(sub))["sentence_embedding"])
        pooled = np.concatenate(parts) if parts else np.zeros((0, self.embedding_dimension or 0), np.float32)
        return {**features, "sentence_embedding": pooled}

    def __repr__(self) -> str:
        return f"SpladeMLM({self.pooling!r}, logits_budget_mib={self.logits_budget_mib})"


def _rows(value: Any, batch: int, seq_len: int, start: int, stop: int, width: int) -> Any:
    """Rows ``start:stop`` (and the first ``width`` positions) of a per-text array; other values as they are."""
    if not isinstance(value, np.ndarray) or value.ndim == 0 or len(value) != batch:
        return value
    return value[start:stop, :width] if value.ndim >= 2 and value.shape[1] == seq_len else value[start:stop]


def fuse_splade(modules: Sequence[Module], logits_budget_mib: float = DEFAULT_LOGITS_BUDGET_MIB) -> list[Module]:
    """One chain as it loads: each fill-mask Transformer followed by SpladePooling becomes a :class:`SpladeMLM`."""
    out: list[Module] = []
    i = 0
    while i < len(modules):
        module = modules[i]
        nxt = modules[i + 1] if i + 1 < len(modules) else None
        if isinstance(module, Transformer) and module.task == "fill-mask" and isinstance(nxt, SpladePooling) \
                and module.module_output_name == nxt.module_input_name:
            out.append(SpladeMLM(module, nxt, logits_budget_mib))
            i += 2
            continue
        out.append(module)
        i += 1
    return out


class SparseStaticEmbedding(InputModule):
    """Inference-free sparse encoding: each token present in the text gets its static (IDF) weight.

    Tokenized without special tokens; no ONNX graph.
    """

    tokenizer: TextTokenizer

    def __init__(self, tokenizer: TextTokenizer, weight: np.ndarray) -> None:
        weight = np.asarray(weight, dtype=np.float32)
        if weight.ndim != 1 and not (weight.ndim == 2 and 1 in weight.shape):
            raise ConfigError(f"SparseStaticEmbedding weight must be a vector, got shape {weight.shape}")
        if weight.size < tokenizer.vocab_size:
            raise ConfigError(f"SparseStaticEmbedding weight has {weight.size} entries for a vocabulary of "
                              f"{tokenizer.vocab_size} tokens")
        self.tokenizer = tokenizer
        self.weight = weight.reshape(-1)
        self.embedding_dimension = int(self.weight.shape[0])
        self._max_seq_length = tokenizer.max_length

    @property
    def max_seq_length(self) -> int | None:
        """The tokenizer's ``model_max_length``, or the value set.

        As in sentence-transformers, setting it records the value (a Router sets every route's) while
        tokenization keeps truncating at the tokenizer's ``model_max_length``.
        """
        return self._max_seq_length

    @max_seq_length.setter
    def max_seq_length(self, value: int | None) -> None:
        self._max_seq_length = value

    def get_embedding_dimension(self) -> int:
        """The vocabulary size."""
        return self.embedding_dimension

    @classmethod
    def load(cls, directory: str | Path, ctx: LoadContext | None = None) -> SparseStaticEmbedding:
        """Read ``tokenizer.json`` and the weights (``model.safetensors`` or an IDF JSON named by ``path``).

        Raises:
            ConfigError: a config key that is not a SparseStaticEmbedding parameter (``frozen``, ``path``).
        """
        directory, ctx = module_context(directory, ctx)
        # the module's config.json is not a model config: the limit is tokenizer_config's model_max_length
        tokenizer = TextTokenizer.from_dir(directory, add_special_tokens=False)
        config = read_module_config(directory)
        check_init_keys(config, ("frozen", "path"), "SparseStaticEmbedding", directory / "config.json")
        path = config_str(config, "path", None, directory / "config.json")
        if path is not None and path.endswith(".json"):
            file = inside(directory, path, "IDF file 'path'", directory / "config.json")
            return cls(tokenizer, _idf_from_json(file, tokenizer))
        tensors = load_safetensors(directory / "model.safetensors")
        if "weight" not in tensors:
            raise ConfigError(f"{directory}/model.safetensors has no 'weight' tensor; found {sorted(tensors)}")
        return cls(tokenizer, tensors["weight"])

    def preprocess(self, texts: Sequence[Any], prompt: str | None = None, task: str | None = None) -> Features:
        """Token ids without special tokens, padded to the longest text."""
        return dict(self.tokenizer(with_prompt(texts, prompt)))

    def forward(self, features: Features) -> Features:
        """Weight of every attended token, once per token; times an earlier ``sentence_embedding`` if any."""
        ids, mask = features["input_ids"], features["attention_mask"]
        presence = np.zeros((len(ids), self.embedding_dimension), dtype=np.float32)
        rows = np.broadcast_to(np.arange(len(ids))[:, None], ids.shape)
        attended = mask > 0
        presence[rows[attended], ids[attended]] = 1.0
        embeddings = presence * self.weight
        if "sentence_embedding" in features:
            embeddings = embeddings * features["sentence_embedding"]
        return {**features, "sentence_embedding": embeddings}

    def __repr__(self) -> str:
        return f"SparseStaticEmbedding(dim={self.embedding_dimension})"


def _idf_from_json(file: Path, tokenizer: TextTokenizer) -> np.ndarray:
    """Token -> weight JSON into a vocabulary-sized vector; unknown tokens land on the unknown token, as in
    sentence-transformers."""
    if not file.is_file():
        raise ModelNotFoundError(f"SparseStaticEmbedding IDF file not found: {file}")
    idf = read_json_value(file)
    if not isinstance(idf, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in idf.values()):
        raise ConfigError(f"{file} must hold a JSON object of token -> finite number")
    backend = tokenizer.raw_backend
    unk = getattr(backend.model, "unk_token", None)
    unk_id = backend.token_to_id(unk) if isinstance(unk, str) else None
    weight = np.zeros(tokenizer.vocab_size, dtype=np.float32)
    for token, value in idf.items():
        token_id = backend.token_to_id(token)
        token_id = unk_id if token_id is None else token_id
        if token_id is not None:
            weight[token_id] = float(value)
    return weight
