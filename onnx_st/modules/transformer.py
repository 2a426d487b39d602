"""The Transformer module: tokenizer plus the ONNX graph that replaces the torch model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from onnx_st._runtime.config import HFConfig, TransformerConfig
from onnx_st._runtime.session import OnnxSession, resolve_onnx_file
from onnx_st._runtime.tokenizer import TextTokenizer
from onnx_st.errors import ConfigError, OnnxModelError
from onnx_st.modules.base import Features, InputModule, LoadContext, PreparedInputs, Rows, module_context, with_prompt
from onnx_st.modules.query_expansion import QueryExpansion
from onnx_st.options import DEFAULT_MAX_BATCH_TOKENS, RuntimeOptions

_OUTPUT_NAMES = {
    "feature-extraction": ("last_hidden_state", "token_embeddings"),
    "fill-mask": ("logits",),
    "sequence-classification": ("logits",),
}
_OUTPUT_RANKS = {"feature-extraction": 3, "fill-mask": 3, "sequence-classification": 2}
GRAPH_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_FEATURE_NAMES = {"feature-extraction": "token_embeddings", "fill-mask": "token_embeddings",
                  "sequence-classification": "scores"}


class Transformer(InputModule):
    """Tokenizes texts and runs the exported transformer graph.

    Writes ``token_embeddings`` (feature-extraction, fill-mask) or ``scores`` (sequence-classification).
    """

    config_keys = ("max_seq_length", "do_lower_case", "transformer_task")
    config_file_name = "sentence_bert_config.json"
    tokenizer: TextTokenizer

    def __init__(self, tokenizer: TextTokenizer, session: OnnxSession, config: TransformerConfig,
                 hf_config: HFConfig, max_batch_tokens: int | None = DEFAULT_MAX_BATCH_TOKENS) -> None:
        if config.transformer_task not in _OUTPUT_NAMES:
            raise ConfigError(f"transformer_task {config.transformer_task!r} is not supported; "
                              f"supported: {sorted(_OUTPUT_NAMES)}")
        self.tokenizer = tokenizer
        self.session = session
        self.config = config
        self.hf_config = hf_config
        self.task = config.transformer_task
        self.graph_output = session.pick_output(_OUTPUT_NAMES[self.task], rank=_OUTPUT_RANKS[self.task])
        self.module_output_name = config.module_output_name or _FEATURE_NAMES[self.task]
        self.max_batch_tokens = max_batch_tokens
        self.graph_width = self._check_graph()
        self.query_expansion = QueryExpansion.parse(config.query_expansion)
        self._task_tokenizers = self._build_task_tokenizers()
        self.expansion_id = self._expansion_token_id()


    def _check_graph(self) -> int | None:
        """Check the graph's inputs and output against the configs; return its output width when fixed.

        Raises:
            OnnxModelError: an input onnx-st cannot feed, an output of the wrong rank, or a width that is
                not the config's ``hidden_size`` / ``vocab_size`` / label count.
        """
        path = self.session.path
        extra = [n for n in self.session.input_names if n not in GRAPH_INPUTS]
        if extra or "input_ids" not in self.session.input_names:
            raise OnnxModelError(f"{path}: the graph's inputs are {list(self.session.input_names)}; onnx-st feeds "
                                 f"{list(GRAPH_INPUTS)} and needs input_ids")
        shape = self.session.output_shapes.get(self.graph_output)
        rank = _OUTPUT_RANKS[self.task]
        if shape is not None and len(shape) != rank:
            raise OnnxModelError(f"{path}: output {self.graph_output!r} has rank {len(shape)} (shape {list(shape)}); "
                                 f"a {self.task} graph must output rank {rank}")
        width = shape[-1] if shape else None
        if not isinstance(width, int) or width < 1:
            return None
        expected = self.config_dimension()
        if expected is not None and expected != width:
            raise OnnxModelError(f"{path}: output {self.graph_output!r} has width {width}, the model's config.json "
                                 f"says {expected}")
        return width

    def config_dimension(self) -> int | None:
        """The output width ``config.json`` implies: hidden size (``word_embed_proj_dim`` first, as OPT projects
        its output to it), vocabulary size or labels."""
        if self.task == "feature-extraction":
            projected = self.hf_config.raw.get("word_embed_proj_dim")
            if isinstance(projected, int) and not isinstance(projected, bool):
                return projected
            return self.hf_config.hidden_size
        if self.task == "fill-mask":
            return self.hf_config.vocab_size
        return self.hf_config.num_labels

    @property
    def transformer_task(self) -> str:
        """``feature-extraction``, ``fill-mask`` or ``sequence-classification``."""
        return self.task

    @property
    def do_lower_case(self) -> bool:
        """Whether texts are lower-cased before tokenizing."""
        return self.config.do_lower_case

    def get_embedding_dimension(self) -> int | None:
        """Hidden size (feature-extraction), vocabulary size (fill-mask) or labels (sequence-classification)."""
        return self.graph_width or self.config_dimension()

    def apply_options(self, options: RuntimeOptions) -> None:
        """Take ``max_batch_tokens``."""
        self.max_batch_tokens = options.max_batch_tokens

    def _build_task_tokenizers(self) -> dict[str, TextTokenizer]:
        """Own tokenizers for ``query_length`` / ``document_length`` / query expansion (sentence-transformers 6)."""
        tokenizers: dict[str, TextTokenizer] = {}
        expansion, cfg = self.query_expansion, self.config
        limit = self.hf_config.max_position_embeddings
        for key, length in (("query_length", cfg.query_length), ("document_length", cfg.document_length),
                            ("query_expansion['length']", expansion.length if expansion else None)):
            if limit and length is not None and length > limit:  # the graph has no positions past the limit
                raise ConfigError(f"{key}={length} is beyond the model's {limit} positions (max_position_embeddings)")
        if expansion is not None:
            if cfg.query_length is not None and cfg.query_length < expansion.length:
                raise ConfigError(f"query_length={cfg.query_length} is smaller than query_expansion['length']="
                                  f"{expansion.length}")
            pad_to = expansion.length if expansion.strategy == "fixed" else None
            tokenizers["query"] = self.tokenizer.derive(
                expansion.query_max_length(cfg.query_length, self.tokenizer.max_length), pad_to)
        elif cfg.query_length is not None:
            tokenizers["query"] = self.tokenizer.derive(cfg.query_length)
        if cfg.document_length is not None:
            tokenizers["document"] = self.tokenizer.derive(cfg.document_length)
        return tokenizers

    def _expansion_token_id(self) -> int | None:
        """The expansion token's id: the configured token, else the mask token, else the end-of-sequence token."""
        if self.query_expansion is None:
            return None
        names = self.tokenizer.special_tokens
        token = self.query_expansion.token
        if token is not None:
            token_id = self.tokenizer.token_id(token)
            if token_id is None:
                raise ConfigError(f"query_expansion token {token!r} is not in the tokenizer's vocabulary")
            return token_id
        for key in ("mask_token", "eos_token"):
            if key in names and self.tokenizer.token_id(names[key]) is not None:
                return self.tokenizer.token_id(names[key])
        return None

    def tokenizer_for(self, task: str | None) -> TextTokenizer:
        """The tokenizer of a task: its own length (and fixed padding) when the config sets one."""
        return self._task_tokenizers.get(task or "", self.tokenizer)

    @classmethod
    def load(cls, directory: str | Path, ctx: LoadContext | None = None) -> Transformer:
        """Load ``sentence_bert_config.json``, ``tokenizer.json``, ``config.json`` and the ONNX file."""
        directory, ctx = module_context(directory, ctx)
        config = TransformerConfig.read(directory, default_task=ctx.default_task, defaults=ctx.transformer_defaults)
        hf_config = HFConfig.read(directory)
        tokenizer = TextTokenizer.from_dir(directory, max_seq_length=config.max_seq_length,
                                           do_lower_case=config.do_lower_case, hf_config=hf_config)
        for prefix in ctx.special_prefixes:
            tokenizer.register_prefix_token(prefix)
        session = OnnxSession(resolve_onnx_file(directory, ctx.options.file_name), ctx.options)
        return cls(tokenizer, session, config, hf_config, ctx.options.max_batch_tokens)

    @property
    def max_seq_length(self) -> int | None:
        """Truncation length in tokens."""
        return self.tokenizer.max_length

    @max_seq_length.setter
    def max_seq_length(self, value: int | None) -> None:
        self.tokenizer.max_length = value

    def preprocess(self, texts: Sequence[Any], prompt: str | None = None, task: str | None = None) -> Features:
        """Tokenize texts (or ``(a, b)`` pairs), the prompt prepended to each text (first text of a pair)."""
        return self.collate(self.prepare(texts, prompt, task), range(len(texts)))

    def prepare(self, texts: Sequence[Any], prompt: str | None = None, task: str | None = None) -> PreparedInputs:
        """Tokenize every text of a call once, with the tokenizer of its task."""
        tokens = self.tokenizer_for(task).tokenize(with_prompt(texts, prompt))
        return PreparedInputs(texts, prompt, task, tokens.lengths, tokens)

    def collate(self, prepared: PreparedInputs, rows: Rows) -> Features:
        """One batch of prepared texts, padded, with query expansion, ``modality`` and ``prompt_length``."""
        task, prompt, tokens = prepared.task, prepared.prompt, prepared.tokens
        tokenizer = self.tokenizer_for(task)
        if tokens is None:  # prepared without tokens: tokenize these rows now
            tokens = tokenizer.tokenize(with_prompt([prepared.items[i] for i in rows], prompt))
            rows = range(len(tokens))
        features: Features = dict(tokenizer.pad(tokens, rows))
        if task == "query" and self.query_expansion is not None and len(rows):
            features = self.query_expansion.apply(features, self.expansion_id)
        features["modality"] = "text"  # as sentence-transformers' Transformer marks its features
        if prompt:
            features["prompt_length"] = self.tokenizer.prompt_length(prompt)
        return features

    def count_tokens(self, texts: Sequence[Any], prompt: str | None = None, task: str | None = None) -> list[int]:
        """Tokens each text (or pair) takes after truncation, the prompt and special tokens included."""
        return self.tokenizer_for(task).count_tokens(with_prompt(texts, prompt))

    def row_runs(self, batch: int, seq_len: int) -> list[tuple[int, int]]:
        """``(start, stop)`` row ranges of the ONNX runs of one batch: at most ``max_batch_tokens`` tokens each."""
        rows = batch if not self.max_batch_tokens else max(1, self.max_batch_tokens // max(seq_len, 1))
        return [(start, min(start + rows, batch)) for start in range(0, batch, rows)] or [(0, 0)]

    def forward(self, features: Features) -> Features:
        """Run the graph (in runs of at most ``max_batch_tokens`` tokens) and add its output under
        ``token_embeddings`` or ``scores``."""
        batch, seq_len = np.shape(features["input_ids"])[:2]
        runs = self.row_runs(batch, seq_len)
        if len(runs) == 1:
            output = self._run(features, batch, seq_len)
        else:
            output = np.concatenate([self._run({
                k: v[start:stop] if isinstance(v, np.ndarray) and v.ndim >= 1 and len(v) == batch else v
                for k, v in features.items()}, stop - start, seq_len) for start, stop in runs])
        if output.dtype != np.float32:  # fp16 exports: pool and score in float32
            output = output.astype(np.float32)
        return {**features, self.module_output_name: output}

    def _run(self, feeds: Features, rows: int, seq_len: int) -> np.ndarray:
        """One ONNX run, its output checked against its inputs: never a silently broadcast vector.

        Raises:
            OnnxModelError: the output's rank, batch or sequence size is not the inputs'.
        """
        output = self.session.run(self.graph_output, feeds)
        rank = _OUTPUT_RANKS[self.task]
        width = self.graph_width
        if output.ndim != rank or output.shape[0] != rows or (rank == 3 and output.shape[1] != seq_len) or (
                width is not None and output.shape[-1] != width):
            last: int | str = width if width is not None else "width"
            expected = (rows, seq_len, last) if rank == 3 else (rows, last)
            raise OnnxModelError(f"{self.session.path}: for inputs of shape ({rows}, {seq_len}) output "
                                 f"{self.graph_output!r} should have shape {expected}, got {output.shape}")
        return output
