"""The sparse embedding model: ``SparseEncoder`` (SPLADE and inference-free SPLADE)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from onnx_st._runtime.config import HFConfig
from onnx_st._runtime.similarity_name import SimilarityNamed, check_similarity_fn_name
from onnx_st.base.model import BaseModel, OutputColumn, for_task
from onnx_st.base.pool import MultiProcessPool, run_in_pool
from onnx_st.errors import ConfigError, InputError, UnsupportedModuleError
from onnx_st.modules import Features, InputModule, LoadContext, Module, embedding_dimension
from onnx_st.modules.router import Router
from onnx_st.modules.splade import SpladeMLM, SpladePooling
from onnx_st.modules.transformer import Transformer
from onnx_st.sparse_embeddings import (
    SparseEmbeddings,
    SparseVector,
    as_sparse,
    check_max_active_dims,
    dense_rows_to_sparse,
    intersection,
    sparse_similarity,
    sparse_similarity_pairwise,
    sparsity,
    top_tokens,
)

Row = tuple[np.ndarray, np.ndarray]
logger = logging.getLogger("onnx_st")


class SparseEncoder(SimilarityNamed, BaseModel):
    """Sparse (vocabulary-sized) embeddings, equal to sentence-transformers' ``SparseEncoder``.

    ``encode`` returns :class:`~onnx_st.SparseEmbeddings` (indices and values per text) by default,
    a dense array with ``convert_to_sparse_tensor=False``. MLM logits are computed in sub-batches
    whose ``(rows, seq, vocab)`` float32 array stays under ``logits_budget_mib`` (default 64 MiB).

    Unlike sentence-transformers, an empty or whitespace-only text gives an empty vector (the MLM
    would otherwise score only its special tokens).

    Example:
        >>> model = SparseEncoder("splade-onnx")  # an exported SPLADE directory
        >>> emb = model.encode(["The weather is lovely today.", "It's so sunny outside!"])
        >>> emb.shape
        (2, 30522)
        >>> tokens = model.decode(emb[0], top_k=3)  # [(token, weight), ...], largest first
        >>> scores = model.similarity(emb, emb)  # (2, 2) dot products of the sparse entries
    """

    model_kind = "SparseEncoder"
    default_similarity_fn_name = "dot"
    default_task = "fill-mask"

    def __init__(self, model_name_or_path: str | Path | None = None, *, similarity_fn_name: str | None = None,
                 max_active_dims: int | None = None, **kwargs: Any) -> None:
        super().__init__(model_name_or_path, **kwargs)
        self._similarity_fn_name = check_similarity_fn_name(
            similarity_fn_name or self.config.similarity_fn_name or self.default_similarity_fn_name)
        saved = self.config.raw.get("max_active_dims")
        self.max_active_dims = check_max_active_dims(max_active_dims if max_active_dims is not None else saved)
        self.logits_budget_mib = self.options.logits_budget_mib
        self._vocab: list[str] | None = None
        self._splade_chunk_size: int | None = None
        self._init_kwargs.update(similarity_fn_name=self._similarity_fn_name, max_active_dims=self.max_active_dims)
        if not self.get_embedding_dimension():
            raise ConfigError(f"{self.model_dir}: cannot tell the output dimension (vocabulary size) of the modules "
                              f"{[type(m).__name__ for m in self.modules]}")

    extra_init_kwargs = ("similarity_fn_name", "max_active_dims", "logits_budget_mib")

    @property
    def splade_pooling_chunk_size(self) -> int | None:
        """sentence-transformers' SpladePooling chunk size (tokens per chunk), kept for code that sets it.

        onnx-st bounds the MLM logits by ``logits_budget_mib`` instead, which already pools each
        sub-batch before the next runs; the value does not change results (as in sentence-transformers).
        """
        if not self._has_splade():
            logger.warning("SpladePooling module not found. Cannot get chunk_size.")
        return self._splade_chunk_size

    @splade_pooling_chunk_size.setter
    def splade_pooling_chunk_size(self, value: int | None) -> None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InputError(f"splade_pooling_chunk_size must be a positive integer or None, got {value!r}")
        if not self._has_splade():
            logger.warning("SpladePooling module not found. Cannot set chunk_size.")
            return
        self._splade_chunk_size = value

    def _has_splade(self) -> bool:
        return any(isinstance(m, (SpladePooling, SpladeMLM)) for m in self.modules)

    def _option_overrides(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """``logits_budget_mib=`` is a runtime option."""
        return {"logits_budget_mib": kwargs.pop("logits_budget_mib")} if "logits_budget_mib" in kwargs else {}

    def _default_modules(self, ctx: LoadContext) -> list[Module]:
        """A bare ``*ForMaskedLM`` directory: Transformer (fill-mask) + SpladePooling(max, relu)."""
        if not any(a.endswith("ForMaskedLM") for a in HFConfig.read(ctx.model_dir).architectures):
            raise UnsupportedModuleError(f"{ctx.model_dir} has no modules.json and is not a *ForMaskedLM model; "
                                         "onnx-st runs SPLADE-style sparse models only")
        return [Transformer.load(ctx.model_dir, ctx), SpladePooling("max", "relu")]

    @property
    def logits_budget_mib(self) -> float:
        """Upper bound (MiB) of the MLM logits array of one ONNX run (at least one text per run)."""
        return self._logits_budget_mib

    @logits_budget_mib.setter
    def logits_budget_mib(self, value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise InputError(f"logits_budget_mib must be a positive number, got {value!r}")
        self._logits_budget_mib = float(value)
        self._apply_options(logits_budget_mib=float(value))

    def get_embedding_dimension(self) -> int | None:
        """Vocabulary size (the dimension of ``encode`` output)."""
        return embedding_dimension(self.modules)

    def get_sentence_embedding_dimension(self) -> int | None:
        """Deprecated in sentence-transformers (a FutureWarning, as there): :meth:`get_embedding_dimension`."""
        warnings.warn("The `get_sentence_embedding_dimension` method has been renamed to `get_embedding_dimension`.",
                      FutureWarning, stacklevel=2)
        return self.get_embedding_dimension()

    def _input_modules(self) -> list[Module]:
        first = self.pipeline.input_module
        return [chain[0] for chain in first.routes.values()] if isinstance(first, Router) else [first]

    @property
    def tokenizer(self) -> Any:
        """The ``tokenizers.Tokenizer`` used by ``decode`` (a Router's first route with one)."""
        for module in self._input_modules():
            if isinstance(module, InputModule) and module.tokenizer is not None:
                return module.tokenizer.backend
        return None

    @property
    def vocab(self) -> list[str]:
        """Token string of every output dimension."""
        dim = self.get_embedding_dimension() or 0
        if self._vocab is None or len(self._vocab) != dim:
            tok = self.tokenizer
            names = [tok.id_to_token(i) if tok is not None else None for i in range(dim)]
            self._vocab = [n if n is not None else f"[{i}]" for i, n in enumerate(names)]
        return self._vocab

    def encode(self, inputs: str | Sequence[str] | None = None, prompt_name: str | None = None,
               prompt: str | None = None, batch_size: int = 32, show_progress_bar: bool | None = None,
               convert_to_tensor: bool = True, convert_to_sparse_tensor: bool = True, save_to_cpu: bool = False,
               device: str | list[str] | None = None, max_active_dims: int | None = None,
               pool: MultiProcessPool | None = None, chunk_size: int | None = None, **kwargs: Any) -> Any:
        """Sparse embeddings of texts.

        Args:
            inputs: one text or a list of texts (``sentences=`` is accepted too).
            prompt_name, prompt: as in sentence-transformers (``prompt`` wins).
            batch_size: texts per batch (length-sorted); the MLM runs in sub-batches under the logits budget.
            convert_to_sparse_tensor: ``True`` -> :class:`SparseEmbeddings`; ``False`` -> dense float32 array.
            convert_to_tensor: ``False`` -> a list with one vector (sparse or dense) per text.
            max_active_dims: keep the k largest weights per text (default: the model's setting).
            pool, chunk_size: a pool from :meth:`start_multi_process_pool` (or ``device=[...]``) and texts per chunk.
            save_to_cpu: accepted for compatibility.
            **kwargs: ``task``/``modality`` (route of a Router model; ``encode_query`` passes ``task="query"``),
                ``processing_kwargs`` (``{"text": {"max_length": n}}``).

        Returns:
            ``SparseEmbeddings`` (n, vocab) / ``SparseVector`` for one string; dense ``(n, vocab)`` /
            ``(vocab,)`` arrays with ``convert_to_sparse_tensor=False``.

        Raises:
            InputError: non-string input, unknown prompt name or task, ``max_active_dims`` < 1,
                ``batch_size`` < 1, unknown keyword arguments.
        """
        inputs = self._legacy_inputs(inputs, kwargs, "sentences")
        call = self._call_kwargs("encode", kwargs)
        texts, single = self._as_text_list(inputs, "inputs")
        k = check_max_active_dims(max_active_dims if max_active_dims is not None else self.max_active_dims)
        args = {"prompt": self._resolve_prompt(prompt, prompt_name), "batch_size": batch_size,
                "max_active_dims": k, **call}
        if isinstance(self.pipeline.input_module, Router):  # a bad task fails even when nothing runs
            self.pipeline.input_module.resolve_route(call["task"], call["modality"] or "text")
        if pool is not None or (isinstance(device, list) and device):
            rows = run_in_pool(self, texts, args, pool=pool, devices=device, chunk_size=chunk_size,
                               show_progress_bar=show_progress_bar)
        else:
            rows = self._inference(texts, show_progress_bar=show_progress_bar, **args)
        dim = self.get_embedding_dimension() or 0
        vectors = [SparseVector(idx, val, dim, self.vocab) for idx, val in rows]
        if not convert_to_sparse_tensor:
            dense = SparseEmbeddings.from_rows(vectors, dim).to_dense()
            result: Any = list(dense) if not convert_to_tensor else dense
        else:
            result = vectors if not convert_to_tensor else SparseEmbeddings.from_rows(vectors, dim, self.vocab)
        return result[0] if single else result

    def _inference(self, texts: list[Any], *, prompt: str | None, batch_size: int, show_progress_bar: bool | None,
                   max_active_dims: int | None, task: str | None = None, modality: Any = None,
                   processing_kwargs: Any = None) -> list[Row]:
        """``(indices, values)`` of each text, in input order, computed in this process."""
        def collect(features: Features) -> list[Row]:
            return dense_rows_to_sparse(features["sentence_embedding"], max_active_dims)

        keep = [i for i, t in enumerate(texts) if not isinstance(t, str) or t.strip()]
        with self._call_max_length(processing_kwargs):
            computed = self.pipeline.map_batches([texts[i] for i in keep], collect, batch_size=batch_size,
                                                 prompt=prompt, task=task, show_progress_bar=show_progress_bar,
                                                 modality=modality)
        empty: Row = (np.zeros(0, np.int32), np.zeros(0, np.float32))
        rows: list[Row] = [empty] * len(texts)
        for i, row in zip(keep, computed):
            rows[i] = row
        return rows

    def _encode_for_task(self, task: str, inputs: str | Sequence[str] | None = None, prompt_name: str | None = None,
                         prompt: str | None = None, batch_size: int = 32, show_progress_bar: bool | None = None,
                         convert_to_tensor: bool = True, convert_to_sparse_tensor: bool = True,
                         save_to_cpu: bool = False, device: str | list[str] | None = None,
                         max_active_dims: int | None = None, pool: MultiProcessPool | None = None,
                         chunk_size: int | None = None, **kwargs: Any) -> Any:
        """``encode`` for ``task``, with its default prompt: what ``encode_query`` / ``encode_document`` run."""
        inputs = self._legacy_inputs(inputs, kwargs, "sentences")
        return self.encode(inputs=inputs, prompt_name=self._task_prompt_name(task, prompt_name, prompt),
                           prompt=prompt, batch_size=batch_size, show_progress_bar=show_progress_bar,
                           convert_to_tensor=convert_to_tensor, convert_to_sparse_tensor=convert_to_sparse_tensor,
                           save_to_cpu=save_to_cpu, device=device, max_active_dims=max_active_dims, pool=pool,
                           chunk_size=chunk_size, task=task, **kwargs)

    encode_query = for_task("query", _encode_for_task, "``encode`` with the ``query`` prompt and the ``query`` route.")
    encode_document = for_task("document", _encode_for_task,
                               "``encode`` with the ``document``/``passage``/``corpus`` prompt and the ``document`` "
                               "route.")

    def similarity(self, embeddings1: Any, embeddings2: Any) -> np.ndarray:
        """All-pairs ``(n1, n2)`` similarity with ``similarity_fn_name``, computed on the sparse entries only."""
        a, _ = as_sparse(embeddings1)
        b, _ = as_sparse(embeddings2)
        return sparse_similarity(a, b, self.similarity_fn_name)

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> np.ndarray:
        """Similarity of ``embeddings1[i]`` with ``embeddings2[i]``."""
        a, _ = as_sparse(embeddings1)
        b, _ = as_sparse(embeddings2)
        return sparse_similarity_pairwise(a, b, self.similarity_fn_name)

    @staticmethod
    def sparsity(embeddings: Any) -> dict[str, float]:
        """``{"active_dims": mean active dimensions, "sparsity_ratio": mean share of zeros}``."""
        return sparsity(as_sparse(embeddings)[0])

    def decode(self, embeddings: Any, top_k: int | None = None) -> list[Any]:
        """``(token, weight)`` pairs by descending weight: a list for one vector, a list per row for many.

        Raises:
            InputError: ``top_k`` not a positive integer.
        """
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k <= 0):
            raise InputError(f"top_k must be a positive integer, got {top_k!r}")
        matrix, single = as_sparse(embeddings)
        vocab = self.vocab
        out = []
        for row in matrix:
            ids, values = top_tokens(row, top_k)
            out.append([(vocab[int(i)], float(v)) for i, v in zip(ids, values)])
        return out[0] if single else out

    def intersection(self, embeddings_1: Any, embeddings_2: Any) -> Any:
        """Shared positive dimensions of one vector with each row of ``embeddings_2`` (element-wise product)."""
        a, single_a = as_sparse(embeddings_1)
        if not single_a:
            raise InputError(f"embeddings_1 must be a single vector, got {len(a)} rows")
        b, single_b = as_sparse(embeddings_2, self.vocab)
        result = intersection(a[0], b)
        return result[0] if single_b else result

    # the interface the CLI, the server, jobs and the exporter call (see BaseModel)

    def encode_json(self, texts: list[str], *, batch_size: int = 32, normalize: bool = False,
                    precision: str = "float32") -> list[Any]:
        rows = self.encode(texts, batch_size=batch_size)
        return [{"indices": row.indices.tolist(), "values": row.values.tolist()} for row in rows]

    def job_columns(self) -> tuple[OutputColumn, ...]:
        return OutputColumn("indices", "int32", nesting=1), OutputColumn("values", nesting=1)

    def encode_job_batch(self, texts: Mapping[str, list[str]], *, batch_size: int, prompt_name: str | None,
                         normalize: bool) -> dict[str, np.ndarray]:
        rows = self.encode(texts["text"], batch_size=batch_size, prompt_name=prompt_name, show_progress_bar=False)
        return {"indptr": rows.indptr, "indices": rows.indices, "values": rows.values}

    def parity_outputs(self, inputs: Sequence[Any], batch_size: int = 32) -> np.ndarray:
        return np.asarray(self.encode(list(inputs), batch_size=batch_size, convert_to_sparse_tensor=False))

    def serve_embed_sparse(self, texts: list[str], *, prompt_name: str | None) -> list[Any]:
        return self.encode(texts, prompt_name=prompt_name, convert_to_tensor=False)  # type: ignore[no-any-return]

    def _extra_config(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"similarity_fn_name": self.similarity_fn_name}
        if self.max_active_dims is not None:
            extra["max_active_dims"] = self.max_active_dims
        return extra
