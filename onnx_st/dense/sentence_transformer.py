"""The dense embedding model: ``SentenceTransformer`` (alias ``Encoder``)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import numpy as np

from onnx_st._runtime.config import HFConfig
from onnx_st._runtime.similarity_name import SimilarityNamed, check_similarity_fn_name
from onnx_st.base.model import BaseModel, OutputColumn, for_task
from onnx_st.base.pool import MultiProcessPool, run_in_pool
from onnx_st.errors import InputError
from onnx_st.functional import PAIRWISE, SIMILARITY, normalize
from onnx_st.modules import Features, LoadContext, Module, embedding_dimension
from onnx_st.modules.pooling import Pooling
from onnx_st.modules.transformer import Transformer
from onnx_st.quantization import check_precision, quantize_embeddings

OutputValue = Literal["sentence_embedding", "token_embeddings"] | None


class SentenceTransformer(SimilarityNamed, BaseModel):
    """Dense embeddings from a sentence-transformers model directory, equal to sentence-transformers.

    Construct as in sentence-transformers (``SentenceTransformer(path, backend="onnx", model_kwargs=...)``)
    or with :meth:`from_dir` / :meth:`from_pretrained`.

    Example:
        >>> model = SentenceTransformer("all-minilm-l6-v2-onnx")
        >>> model.encode(["The weather is lovely today."]).shape
        (1, 384)
    """

    def __init__(self, model_name_or_path: str | None = None, *, truncate_dim: int | None = None,
                 similarity_fn_name: str | None = None, **kwargs: Any) -> None:
        super().__init__(model_name_or_path, **kwargs)
        self.truncate_dim = truncate_dim if truncate_dim is not None else self.config.truncate_dim
        name = similarity_fn_name or self.config.similarity_fn_name
        self._similarity_fn_name = None if name is None else check_similarity_fn_name(name)
        self._init_kwargs.update(truncate_dim=self.truncate_dim, similarity_fn_name=self._similarity_fn_name)

    extra_init_kwargs = ("truncate_dim", "similarity_fn_name")

    def _default_modules(self, ctx: LoadContext) -> list[Module]:
        transformer = Transformer.load(ctx.model_dir, ctx)
        causal = any(a.endswith("ForCausalLM") for a in HFConfig.read(ctx.model_dir).architectures)
        dim = transformer.get_embedding_dimension() or 0
        return [transformer, Pooling(dim, ("lasttoken",) if causal else ("mean",))]

    def get_embedding_dimension(self) -> int | None:
        """Dimension of ``encode`` output (after ``truncate_dim``)."""
        dim = embedding_dimension(self.modules)
        if self.truncate_dim is not None:
            return self.truncate_dim if dim is None else min(dim, self.truncate_dim)
        return dim

    def get_sentence_embedding_dimension(self) -> int | None:
        """Deprecated in sentence-transformers (a FutureWarning, as there): :meth:`get_embedding_dimension`."""
        warnings.warn("The `get_sentence_embedding_dimension` method has been renamed to `get_embedding_dimension`.",
                      FutureWarning, stacklevel=2)
        return self.get_embedding_dimension()

    @contextmanager
    def truncate_sentence_embeddings(self, truncate_dim: int | None) -> Iterator[None]:
        """Deprecated in sentence-transformers (a FutureWarning, as there): :meth:`truncate_embeddings`."""
        warnings.warn("The `truncate_sentence_embeddings` method has been renamed to `truncate_embeddings`.",
                      FutureWarning, stacklevel=3)
        with self.truncate_embeddings(truncate_dim):
            yield

    @contextmanager
    def truncate_embeddings(self, truncate_dim: int | None) -> Iterator[None]:
        """Within the block, ``encode`` truncates embeddings to ``truncate_dim``."""
        previous, self.truncate_dim = self.truncate_dim, truncate_dim
        try:
            yield
        finally:
            self.truncate_dim = previous

    def encode(self, inputs: str | list[str] | None = None, prompt_name: str | None = None,
               prompt: str | None = None, batch_size: int = 32, show_progress_bar: bool | None = None,
               output_value: OutputValue = "sentence_embedding", precision: str | None = "float32",
               convert_to_numpy: bool = True, convert_to_tensor: bool = False, device: str | list[str] | None = None,
               normalize_embeddings: bool = False, truncate_dim: int | None = None,
               pool: MultiProcessPool | None = None, chunk_size: int | None = None, **kwargs: Any) -> Any:
        """Embed texts (or ``(text, text)`` pairs, tokenized as one sequence).

        Args:
            inputs: one text or a batch (list, tuple, datasets Column, string array); ``sentences=`` works too.
            prompt_name: key of the directory's ``prompts``; ``prompt``: a literal prompt (wins).
            batch_size: texts per ONNX run; texts are sorted by length first.
            output_value: ``"sentence_embedding"``, ``"token_embeddings"`` (one array per text) or
                ``None`` (a dict of every feature per text).
            precision: ``float32`` (or ``None``), ``int8``, ``uint8``, ``binary`` or ``ubinary``.
            normalize_embeddings: L2-normalize (after ``truncate_dim``).
            truncate_dim: keep the first dimensions (Matryoshka models); more than the dimension keeps all.
            pool, chunk_size: a pool from :meth:`start_multi_process_pool` (or ``device=[...]`` for a
                temporary one) and the texts per chunk sent to a worker.
            convert_to_tensor: one array (NumPy); ``convert_to_numpy=False``: a list of 1-D arrays.
            **kwargs: ``task`` and ``modality`` (Router models), ``processing_kwargs``
                (``{"text": {"max_length": n}}`` truncates this call at ``n`` tokens).

        Returns:
            ``(n, dim)`` array (``(dim,)`` for one string; ``(0, dim)`` for an empty list), or lists for
            ``token_embeddings`` / ``None``.

        Raises:
            InputError: non-string input, unknown prompt name, precision or keyword, bad ``truncate_dim``.
        """
        inputs = self._legacy_inputs(inputs, kwargs, "sentences")
        call = self._call_kwargs("encode", kwargs)
        texts, single = self._as_text_list(inputs, "inputs")
        precision = check_precision("float32" if precision is None else precision)
        truncate_dim = truncate_dim if truncate_dim is not None else self.truncate_dim
        if truncate_dim is not None and (isinstance(truncate_dim, bool) or not isinstance(truncate_dim, int)
                                         or truncate_dim < 1):
            raise InputError(f"truncate_dim must be a positive integer, got {truncate_dim!r}")
        if output_value not in ("sentence_embedding", "token_embeddings", None):
            raise InputError(f"output_value must be 'sentence_embedding', 'token_embeddings' or None, "
                             f"got {output_value!r}")
        args = {"prompt": self._resolve_prompt(prompt, prompt_name), "batch_size": batch_size,
                "output_value": output_value, "normalize_embeddings": normalize_embeddings,
                "truncate_dim": truncate_dim, **call}
        if pool is not None or (isinstance(device, list) and device):
            rows = run_in_pool(self, texts, args, pool=pool, devices=device, chunk_size=chunk_size,
                               show_progress_bar=show_progress_bar)
        else:
            rows = self._inference(texts, show_progress_bar=show_progress_bar, **args)
        if output_value != "sentence_embedding":
            return rows[0] if single else rows
        full_dim = embedding_dimension(self.modules) or 0
        dim = min(truncate_dim, full_dim) if truncate_dim is not None and full_dim else (truncate_dim or full_dim)
        embeddings = np.stack(rows).astype(np.float32, copy=False) if rows else np.zeros((0, dim), np.float32)
        if precision != "float32":
            embeddings = quantize_embeddings(embeddings, precision)  # type: ignore[arg-type]
        result: Any = embeddings if convert_to_numpy or convert_to_tensor else list(embeddings)
        return result[0] if single else result

    def _inference(self, texts: list[Any], *, prompt: str | None, batch_size: int, show_progress_bar: bool | None,
                   output_value: OutputValue, normalize_embeddings: bool, truncate_dim: int | None,
                   task: str | None = None, modality: Any = None, processing_kwargs: Any = None) -> list[Any]:
        """One result per text, in input order, computed in this process."""
        def collect(features: Features) -> list[Any]:
            if truncate_dim is not None and "sentence_embedding" in features:
                features = {**features, "sentence_embedding": features["sentence_embedding"][..., :truncate_dim]}
            if output_value == "token_embeddings":
                return _token_embeddings(features)
            if output_value is None:
                return self._feature_rows(features)
            emb = features["sentence_embedding"]
            return list(normalize(emb) if normalize_embeddings else emb)

        with self._call_max_length(processing_kwargs):
            return self.pipeline.map_batches(texts, collect, batch_size=batch_size, prompt=prompt, task=task,
                                             show_progress_bar=show_progress_bar, modality=modality)

    def encode_multi_process(self, sentences: list[str], pool: MultiProcessPool, prompt_name: str | None = None,
                             prompt: str | None = None, batch_size: int = 32, chunk_size: int | None = None,
                             show_progress_bar: bool | None = None, precision: str = "float32",
                             normalize_embeddings: bool = False, truncate_dim: int | None = None) -> np.ndarray:
        """Deprecated in sentence-transformers (a DeprecationWarning, as there): ``encode(..., pool=pool)``."""
        warnings.warn("The `encode_multi_process` method has been deprecated, and its functionality has been "
                      "integrated into `encode`. You can now call `encode` with the same parameters to achieve "
                      "multi-process encoding.", DeprecationWarning, stacklevel=2)
        return self.encode(sentences, prompt_name=prompt_name, prompt=prompt, batch_size=batch_size,  # type: ignore[no-any-return]
                           show_progress_bar=show_progress_bar, output_value="sentence_embedding", precision=precision,
                           convert_to_numpy=True, convert_to_tensor=False, normalize_embeddings=normalize_embeddings,
                           truncate_dim=truncate_dim, pool=pool, chunk_size=chunk_size)

    def _encode_for_task(self, task: str, inputs: str | list[str] | None = None, prompt_name: str | None = None,
                         prompt: str | None = None, batch_size: int = 32, show_progress_bar: bool | None = None,
                         output_value: OutputValue = "sentence_embedding", precision: str | None = "float32",
                         convert_to_numpy: bool = True, convert_to_tensor: bool = False,
                         device: str | list[str] | None = None, normalize_embeddings: bool = False,
                         truncate_dim: int | None = None, pool: MultiProcessPool | None = None,
                         chunk_size: int | None = None, **kwargs: Any) -> Any:
        """``encode`` for ``task``, with its default prompt: what ``encode_query`` / ``encode_document`` run."""
        inputs = self._legacy_inputs(inputs, kwargs, "sentences")
        return self.encode(inputs=inputs, prompt_name=self._task_prompt_name(task, prompt_name, prompt),
                           prompt=prompt, batch_size=batch_size, show_progress_bar=show_progress_bar,
                           output_value=output_value, precision=precision, convert_to_numpy=convert_to_numpy,
                           convert_to_tensor=convert_to_tensor, device=device,
                           normalize_embeddings=normalize_embeddings, truncate_dim=truncate_dim, pool=pool,
                           chunk_size=chunk_size, task=task, **kwargs)

    encode_query = for_task("query", _encode_for_task,
                            "``encode`` with the ``query`` prompt (when the directory has one) and the ``query`` route.")
    encode_document = for_task("document", _encode_for_task,
                               "``encode`` with the ``document``/``passage``/``corpus`` prompt and the ``document`` "
                               "route.")

    def similarity(self, embeddings1: np.ndarray, embeddings2: np.ndarray) -> np.ndarray:
        """All-pairs similarity matrix with the model's ``similarity_fn_name``."""
        return SIMILARITY[self.similarity_fn_name](embeddings1, embeddings2)

    def similarity_pairwise(self, embeddings1: np.ndarray, embeddings2: np.ndarray) -> np.ndarray:
        """Similarity of ``embeddings1[i]`` with ``embeddings2[i]``."""
        return PAIRWISE[self.similarity_fn_name](embeddings1, embeddings2)

    # the interface the CLI, the server, jobs and the exporter call (see BaseModel)

    def encode_json(self, texts: list[str], *, batch_size: int = 32, normalize: bool = False,
                    precision: str = "float32") -> list[Any]:
        embeddings = self.encode(texts, normalize_embeddings=normalize, precision=precision, batch_size=batch_size)
        return embeddings.tolist()  # type: ignore[no-any-return]

    def job_columns(self) -> tuple[OutputColumn, ...]:
        return (OutputColumn("embedding", nesting=1, width=int(self.get_embedding_dimension() or 0)),)

    def encode_job_batch(self, texts: Mapping[str, list[str]], *, batch_size: int, prompt_name: str | None,
                         normalize: bool) -> dict[str, np.ndarray]:
        emb = self.encode(texts["text"], normalize_embeddings=normalize, batch_size=batch_size,
                          prompt_name=prompt_name, show_progress_bar=False)
        return {"embedding": np.asarray(emb, dtype=np.float32)}

    def parity_outputs(self, inputs: Sequence[Any], batch_size: int = 32) -> np.ndarray:
        return np.asarray(self.encode(list(inputs), batch_size=batch_size))

    def serve_embed(self, texts: list[str], *, prompt_name: str | None, normalize: bool,
                    dimensions: int | None) -> list[np.ndarray]:
        out = self.encode(texts, prompt_name=prompt_name, normalize_embeddings=normalize, truncate_dim=dimensions)
        return list(np.asarray(out, dtype=np.float32))

    def serve_embed_tokens(self, texts: list[str], *, prompt_name: str | None) -> list[np.ndarray]:
        return [np.asarray(t, dtype=np.float32)
                for t in self.encode(texts, prompt_name=prompt_name, output_value="token_embeddings")]

    def _extra_config(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"similarity_fn_name": self.similarity_fn_name}
        if self.truncate_dim is not None:
            extra["truncate_dim"] = self.truncate_dim
        return extra


def _token_embeddings(features: Features) -> list[np.ndarray]:
    """Per-text token embeddings of the attended positions (padding on either side dropped, as
    sentence-transformers 6.3 selects them).

    Raises:
        InputError: the model has no token embeddings (a ``StaticEmbedding`` pools as it embeds).
    """
    if "token_embeddings" not in features:
        raise InputError("output_value='token_embeddings': this model's first module gives no token embeddings "
                         "(a StaticEmbedding returns sentence embeddings only)")
    return [tokens[mask.astype(bool)] for tokens, mask in zip(features["token_embeddings"], features["attention_mask"])]

Encoder = SentenceTransformer
