"""The late-interaction (ColBERT-style) model: ``MultiVectorEncoder``, one vector per token, MaxSim scores."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from onnx_st._runtime.config import MULTI_VECTOR_SIMILARITY_FN_NAMES
from onnx_st.base.model import BaseModel, OutputColumn, for_task
from onnx_st.base.pipeline import Pipeline
from onnx_st.base.pool import MultiProcessPool, run_in_pool
from onnx_st.errors import InputError
from onnx_st.functional import normalize
from onnx_st.maxsim import maxsim, maxsim_pairwise
from onnx_st.modules import Features, LoadContext, Module, embedding_dimension
from onnx_st.modules.multi_vector_mask import MultiVectorMask
from onnx_st.modules.token_pooling import HierarchicalTokenPooling
from onnx_st.multi_vector.legacy import (
    LegacyLayout,
    legacy_modules,
    legacy_prompts,
    read_layout,
    token_level_tail,
    write_native_layout,
)

OutputValue = Literal["token_embeddings"] | None
logger = logging.getLogger("onnx_st")


class MultiVectorEncoder(BaseModel):
    """Token-level embeddings from a sentence-transformers ``MultiVectorEncoder`` directory, equal to
    sentence-transformers 6.3: ``encode_query`` / ``encode_document`` return one ``(tokens, dim)``
    float32 array per text (the tokens its ``MultiVectorMask`` keeps), ``similarity`` scores with MaxSim.

    Reads the native layout (``modules.json`` with ``Dense``, ``MultiVectorMask``, ``Normalize`` on
    ``token_embeddings``), PyLate saves and Stanford ColBERT directories (``artifact.metadata``).

    Example:
        >>> model = MultiVectorEncoder("colbert-onnx")  # an exported directory
        >>> queries = model.encode_query(["What is the capital of France?"])
        >>> documents = model.encode_document(["Paris is the capital of France.", "Berlin is in Germany."])
        >>> queries[0].shape  # (tokens, 128)
        (10, 128)
        >>> model.similarity(queries, documents).shape
        (1, 2)
    """

    model_kind = "MultiVectorEncoder"
    dense_input_name = "token_embeddings"
    task_feature = True

    def __init__(self, model_name_or_path: str | Path, *, similarity_fn_name: str | None = None,
                 token_pooling: HierarchicalTokenPooling | None = None, truncate_dim: int | None = None,
                 **kwargs: Any) -> None:
        user_prompts = kwargs.get("prompts")
        self.layout = LegacyLayout()
        super().__init__(model_name_or_path, **kwargs)
        if self.layout.kind == "pylate":
            self.pipeline = Pipeline([*self.modules, *token_level_tail(self.layout)], task_feature=True,
                                     parallel_runs=self.options.parallel_runs)
        self.prompts = self._merge_prompts({**legacy_prompts(self.layout, self.config.prompts), **(user_prompts or {})})
        self._similarity_fn_name = "maxsim"
        self._saved_similarity: str | None = None  # written by save_pretrained, null until chosen
        name = similarity_fn_name or self.config.similarity_fn_name
        if name is not None:
            self.similarity_fn_name = name
        if token_pooling is not None and not isinstance(token_pooling, HierarchicalTokenPooling):
            raise InputError("token_pooling must be a BaseTokenPooling module or None.")
        self.token_pooling = token_pooling  # the default of every encode call; not saved, as sentence-transformers
        self.truncate_dim = truncate_dim if truncate_dim is not None else self.config.truncate_dim
        _check_truncate_dim(self.truncate_dim)
        self._init_kwargs.update(similarity_fn_name=self._saved_similarity, truncate_dim=self.truncate_dim,
                                 token_pooling=token_pooling)
        tokenizer = getattr(self.pipeline.input_module, "tokenizer", None)
        for module in self.modules:
            if isinstance(module, MultiVectorMask) and tokenizer is not None:
                module.resolve_with_tokenizer(tokenizer)

    def _load_context(self, ctx: LoadContext) -> LoadContext:
        self.layout = read_layout(self.model_files, self.config.raw)
        return replace(ctx, transformer_defaults=self.layout.transformer_defaults,
                       special_prefixes=tuple(self.layout.prefixes.values()))

    def _default_modules(self, ctx: LoadContext) -> list[Module]:
        return legacy_modules(ctx, self.layout)

    @property
    def similarity_fn_name(self) -> str:
        """``maxsim`` (default) or ``meanmaxsim`` (MaxSim divided by the query's token count)."""
        return self._similarity_fn_name

    @similarity_fn_name.setter
    def similarity_fn_name(self, value: str) -> None:
        if value not in MULTI_VECTOR_SIMILARITY_FN_NAMES:
            raise InputError(f"MultiVectorEncoder only supports {MULTI_VECTOR_SIMILARITY_FN_NAMES}, got {value!r}")
        self._similarity_fn_name = self._saved_similarity = value

    extra_init_kwargs = ("similarity_fn_name", "token_pooling", "truncate_dim")

    def get_embedding_dimension(self) -> int | None:
        """Dimension of each token vector (after ``truncate_dim``)."""
        dim = embedding_dimension(self.modules)
        if self.truncate_dim is not None:
            return self.truncate_dim if dim is None else min(dim, self.truncate_dim)
        return dim

    def encode(self, inputs: str | list[str] | None = None, prompt_name: str | None = None,
               prompt: str | None = None, batch_size: int = 32, show_progress_bar: bool | None = None,
               output_value: OutputValue = "token_embeddings", convert_to_numpy: bool = False,
               device: str | list[str] | None = None, normalize_embeddings: bool = False,
               token_pooling: HierarchicalTokenPooling | None = None, truncate_dim: int | None = None,
               pool: MultiProcessPool | None = None, chunk_size: int | None = None, task: str | None = None,
               **kwargs: Any) -> Any:
        """Embed texts as token vectors.

        Args:
            inputs: one text or a list of texts (``sentences=`` works too).
            prompt_name: key of the directory's ``prompts``; ``prompt``: a literal prompt (wins).
            batch_size: texts per ONNX run; texts are sorted by length first.
            output_value: ``"token_embeddings"`` (one ``(tokens, dim)`` array per text, the tokens the
                mask keeps) or ``None`` (a dict of every feature per text, padded to its batch).
            normalize_embeddings: L2-normalize each token vector (before ``token_pooling``).
            token_pooling: a :class:`~onnx_st.modules.token_pooling.HierarchicalTokenPooling` applied to
                this call's outputs (on top of one the model holds, which logs a warning once); default: the
                constructor's.
            truncate_dim: keep the first dimensions of each token vector, then L2-normalize it again (after
                ``token_pooling``); default: the model's ``truncate_dim``.
            pool, chunk_size: a pool from :meth:`start_multi_process_pool` (or ``device=[...]``) and texts per chunk.
            task: ``"query"`` or ``"document"`` (set by ``encode_query`` / ``encode_document``).
            convert_to_numpy, device: accepted for compatibility; results are NumPy.
            **kwargs: ``processing_kwargs`` (``{"text": {"max_length": n}}`` truncates this call at ``n`` tokens).

        Returns:
            A list of float32 arrays (one array for one string).

        Raises:
            InputError: non-string input, unknown prompt name, bad ``output_value``, ``truncate_dim`` or keyword.
        """
        inputs = self._legacy_inputs(inputs, kwargs, "sentences")
        unused = set(kwargs) - {*self.get_model_kwargs(), "task", "processing_kwargs"}
        if "convert_to_tensor" in unused:
            raise InputError(
                f"{type(self).__name__}.encode() has no `convert_to_tensor`: it stacks embeddings into one tensor on "
                "the other model types, and multi-vector embeddings are variable-length, so there is nothing to "
                "stack. Encoding already returns a list of tensors. Drop the argument, or pass "
                "`convert_to_numpy=True` for a list of arrays.")
        if unused:
            raise InputError(f"{type(self).__name__}.encode() has been called with additional keyword arguments "
                             f"that this model does not use: {sorted(unused)}.")
        if output_value not in ("token_embeddings", None):
            raise InputError(f"output_value must be 'token_embeddings' or None, got {output_value!r}")
        if token_pooling is not None and not isinstance(token_pooling, HierarchicalTokenPooling):
            raise InputError(f"token_pooling must be a HierarchicalTokenPooling, got {type(token_pooling).__name__}")
        truncate_dim = truncate_dim if truncate_dim is not None else self.truncate_dim
        _check_truncate_dim(truncate_dim)
        token_pooling = token_pooling if token_pooling is not None else self.token_pooling
        texts, single = self._as_text_list(inputs, "inputs")
        if texts and token_pooling is not None and token_pooling.applies_to(task):
            self._warn_compounding()
        args: dict[str, Any] = {"prompt": self._resolve_prompt(prompt, prompt_name), "batch_size": batch_size,
                                "output_value": output_value, "normalize_embeddings": normalize_embeddings,
                                "token_pooling": token_pooling, "truncate_dim": truncate_dim, "task": task,
                                "processing_kwargs": kwargs.get("processing_kwargs")}
        if pool is not None or (isinstance(device, list) and device):
            rows = run_in_pool(self, texts, args, pool=pool, devices=device, chunk_size=chunk_size,
                               show_progress_bar=show_progress_bar)
        else:
            rows = self._inference(texts, show_progress_bar=show_progress_bar, **args)
        if output_value is not None:
            rows = [np.ascontiguousarray(row, dtype=np.float32) for row in rows]
        return rows[0] if single else rows

    _compounding_warned: ClassVar[bool] = False

    def _warn_compounding(self) -> None:
        """Once per process, as sentence-transformers: a call's ``token_pooling`` pools on top of the model's own."""
        if not MultiVectorEncoder._compounding_warned and any(
                isinstance(m, HierarchicalTokenPooling) for m in self.modules):
            MultiVectorEncoder._compounding_warned = True
            logger.warning("This model already includes token pooling in its pipeline. The additional "
                           "`token_pooling` pools further on top of it (compounding).")

    def _inference(self, texts: list[Any], *, prompt: str | None, batch_size: int, show_progress_bar: bool | None,
                   output_value: OutputValue, normalize_embeddings: bool,
                   token_pooling: HierarchicalTokenPooling | None, truncate_dim: int | None, task: str | None,
                   processing_kwargs: Any = None) -> list[Any]:
        """One result per text, in input order, computed in this process."""
        def collect(features: Features) -> list[Any]:
            if output_value is None:
                if token_pooling is not None:
                    features = token_pooling.forward(features)
                if truncate_dim is not None:
                    features = {**features,
                                "token_embeddings": normalize(features["token_embeddings"][..., :truncate_dim])}
                return self._feature_rows(features)
            rows = [tokens[mask] for tokens, mask in
                    zip(features["token_embeddings"], features["attention_mask"].astype(bool))]
            if normalize_embeddings:
                rows = [normalize(row) for row in rows]
            if token_pooling is not None:
                rows = token_pooling.pool(rows, task)
            if truncate_dim is not None:
                rows = [normalize(row[..., :truncate_dim]) for row in rows]
            return rows

        with self._call_max_length(processing_kwargs):
            return self.pipeline.map_batches(texts, collect, batch_size=batch_size, prompt=prompt, task=task,
                                             show_progress_bar=show_progress_bar, modality="text")

    def get_model_kwargs(self) -> list[str]:
        """Extra keywords ``encode`` accepts: ``task`` (the token-level modules read it), ``modality`` with a Router."""
        return sorted({"task", *super().get_model_kwargs()})

    def _encode_for_task(self, task: str, inputs: str | list[str] | None = None, prompt_name: str | None = None,
                         prompt: str | None = None, batch_size: int = 32, show_progress_bar: bool | None = None,
                         output_value: OutputValue = "token_embeddings", convert_to_numpy: bool = False,
                         device: str | list[str] | None = None, normalize_embeddings: bool = False,
                         token_pooling: HierarchicalTokenPooling | None = None, truncate_dim: int | None = None,
                         pool: MultiProcessPool | None = None, chunk_size: int | None = None, **kwargs: Any) -> Any:
        """``encode`` for ``task``, with its default prompt: what ``encode_query`` / ``encode_document`` run."""
        inputs = self._legacy_inputs(inputs, kwargs, "sentences")
        return self.encode(inputs=inputs, prompt_name=self._task_prompt_name(task, prompt_name, prompt),
                           prompt=prompt, batch_size=batch_size, show_progress_bar=show_progress_bar,
                           output_value=output_value, convert_to_numpy=convert_to_numpy, device=device,
                           normalize_embeddings=normalize_embeddings, token_pooling=token_pooling,
                           truncate_dim=truncate_dim, pool=pool, chunk_size=chunk_size, task=task, **kwargs)

    encode_query = for_task("query", _encode_for_task,
                            "``encode`` with the ``query`` prompt, query length and query expansion.")
    encode_document = for_task("document", _encode_for_task,
                               "``encode`` with the ``document``/``passage``/``corpus`` prompt, document length and "
                               "skiplist.")

    def similarity(self, embeddings1: Any, embeddings2: Any, *, chunk_elements: int | None = None) -> np.ndarray:
        """``(len(embeddings1), len(embeddings2))`` MaxSim (or MeanMaxSim) scores, queries first."""
        return maxsim(embeddings1, embeddings2, length_normalize=self.similarity_fn_name == "meanmaxsim",
                      chunk_elements=chunk_elements)

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> np.ndarray:
        """MaxSim (or MeanMaxSim) of ``embeddings1[i]`` with ``embeddings2[i]``."""
        return maxsim_pairwise(embeddings1, embeddings2, length_normalize=self.similarity_fn_name == "meanmaxsim")

    # the interface the CLI, the server, jobs and the exporter call (see BaseModel)

    def describe(self) -> dict[str, Any]:
        return {"embedding_dimension": self.get_embedding_dimension(), "similarity_fn_name": self.similarity_fn_name}

    def similarity_to_source(self, source: str, sentences: list[str]) -> np.ndarray:
        """MaxSim of ``source`` as a query against ``sentences`` as documents."""
        return self.similarity(self.encode_query([source]), self.encode_document(sentences))[0]

    def encode_json(self, texts: list[str], *, batch_size: int = 32, normalize: bool = False,
                    precision: str = "float32") -> list[Any]:
        return [v.tolist() for v in self.encode(texts, batch_size=batch_size)]

    def job_columns(self) -> tuple[OutputColumn, ...]:
        return (OutputColumn("embeddings", nesting=2, width=int(self.get_embedding_dimension() or 0)),)

    def encode_job_batch(self, texts: Mapping[str, list[str]], *, batch_size: int, prompt_name: str | None,
                         normalize: bool) -> dict[str, np.ndarray]:
        """Rows encoded as documents, as queries when ``prompt_name`` is ``query``."""
        encode = self.encode_query if prompt_name == "query" else self.encode_document
        rows = encode(texts["text"], normalize_embeddings=normalize, batch_size=batch_size, prompt_name=prompt_name,
                      show_progress_bar=False)
        dim = int(self.get_embedding_dimension() or 0)
        indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
        vectors = np.concatenate(rows) if rows else np.zeros((0, dim), np.float32)
        return {"vectors_indptr": indptr, "vectors": vectors.astype(np.float32, copy=False)}

    def parity_outputs(self, inputs: Sequence[Any], batch_size: int = 32) -> np.ndarray:
        return np.concatenate(self.encode_document(list(inputs), batch_size=batch_size))

    def serve_embed_tokens(self, texts: list[str], *, prompt_name: str | None) -> list[np.ndarray]:
        """Queries for the ``query`` prompt, else documents."""
        encode = self.encode_query if prompt_name == "query" else self.encode_document
        return list(encode(texts, prompt_name=prompt_name))

    def save(self, path: str | Path | None, model_name: str | None = None, create_model_card: bool = True,
             train_datasets: list[str] | None = None, safe_serialization: bool = True) -> None:
        """Write a directory that reloads here and in sentence-transformers (legacy layouts saved as native)."""
        super().save(path, model_name, create_model_card, train_datasets, safe_serialization)
        if path is not None and self.layout.kind != "native":
            write_native_layout(Path(path), self.modules)

    def _extra_config(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"similarity_fn_name": self._saved_similarity}
        if self.truncate_dim is not None:
            extra["truncate_dim"] = self.truncate_dim
        return extra


def _check_truncate_dim(truncate_dim: Any) -> None:
    if truncate_dim is not None and (isinstance(truncate_dim, bool) or not isinstance(truncate_dim, int)
                                     or truncate_dim < 1):
        raise InputError(f"truncate_dim must be a positive integer, got {truncate_dim!r}")

