"""The reranker: ``CrossEncoder`` (alias ``Reranker``), scoring text pairs like sentence-transformers."""

from __future__ import annotations

import functools
import importlib.util
import inspect
import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from onnx_st._runtime.config import HFConfig
from onnx_st.base.model import BaseModel, OutputColumn
from onnx_st.base.pool import MultiProcessPool, run_in_pool
from onnx_st.errors import ConfigError, ConfigModuleNotFoundError, InputError, UnsupportedModuleError
from onnx_st.functional import ACTIVATIONS, activation, softmax
from onnx_st.modules import Features, LoadContext, Module
from onnx_st.modules.transformer import Transformer

logger = logging.getLogger("onnx_st")

Activation = Callable[[np.ndarray], np.ndarray]


# torch modules an activation class path may name (torch.nn.modules' submodules): a path into any other
# torch module cannot be imported by sentence-transformers either
_TORCH_MODULES = frozenset({"torch", "torch.nn", "torch.nn.modules", "torch.nn.functional", *(
    f"torch.nn.modules.{name}" for name in (
        "activation", "adaptive", "batchnorm", "channelshuffle", "container", "conv", "distance", "dropout",
        "flatten", "fold", "instancenorm", "lazy", "linear", "loss", "module", "normalization", "padding",
        "pixelshuffle", "pooling", "rnn", "sparse", "transformer", "upsampling", "utils"))})


def _check_importable(path: str, trust_remote_code: bool) -> None:
    """Raise as sentence-transformers' import of an activation path does when its module does not exist.

    Nothing is imported: torch paths are checked against torch's module names, other paths (read only
    with ``trust_remote_code``) by whether their top-level package is installed.

    Raises:
        ConfigModuleNotFoundError: a ModuleNotFoundError (and a ConfigError) naming the missing module.
    """
    module = path.rpartition(".")[0]
    if path.startswith("torch."):
        if module not in _TORCH_MODULES:
            raise ConfigModuleNotFoundError(f"No module named {module!r} (activation function {path!r})")
    elif trust_remote_code and (not module or importlib.util.find_spec(module.split(".")[0]) is None):
        raise ConfigModuleNotFoundError(f"No module named {(module or path)!r} (activation function {path!r})")


_POSITIONAL_ARGS = ("num_labels", "max_length", "activation_fn", "device", "cache_folder", "trust_remote_code",
                    "revision", "local_files_only", "token", "model_kwargs", "tokenizer_kwargs", "config_kwargs",
                    "model_card_data", "backend")
"""The constructor's positional parameters after ``model_name_or_path``, in sentence-transformers' order
(a deprecated way to pass them: each logs a warning)."""

_RENAMED_INIT_KWARGS = {"model_name": "model_name_or_path", "automodel_args": "model_kwargs",
                        "tokenizer_args": "processor_kwargs", "tokenizer_kwargs": "processor_kwargs",
                        "config_args": "config_kwargs", "cache_dir": "cache_folder",
                        "default_activation_function": "activation_fn"}
"""Deprecated constructor keywords and their new names."""

_renamed_warned: set[str] = set()


def _legacy_init_kwargs(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The constructor's keywords, with positional arguments named and deprecated names renamed, each
    logging sentence-transformers' warning (a renamed keyword once per process, as there).

    A keyword given both ways keeps the keyword's value; positional arguments past the last name are dropped.
    """
    for name, value in zip(_POSITIONAL_ARGS, args):
        logger.warning("Passing `%s` as a positional argument to CrossEncoder is deprecated. Please pass `%s` as a "
                       "keyword argument instead.", name, name)
        kwargs.setdefault(name, value)
    for old, new in _RENAMED_INIT_KWARGS.items():
        if old in kwargs:
            value = kwargs.pop(old)
            if old not in _renamed_warned:
                _renamed_warned.add(old)
                logger.warning("The CrossEncoder `%s` argument was renamed and is now deprecated. Please use `%s` "
                               "instead.", old, new)
            kwargs.setdefault(new, value)
    if "classifier_dropout" in kwargs:
        logger.warning("The CrossEncoder `classifier_dropout` argument is deprecated. Please use "
                       "`config_kwargs={'classifier_dropout': %s}` instead.", kwargs.pop("classifier_dropout"))
    return kwargs


def _torch_path(name: str) -> str:
    """The dotted path sentence-transformers saves for a torch activation class name."""
    return f"torch.nn.modules.{'linear' if name == 'Identity' else 'activation'}.{name}"


_RANK_IGNORED = {
    "num_workers": "",
    "apply_softmax": ", as `rank` only supports models with `num_labels=1`",
    "convert_to_numpy": ", as `rank` always returns Python floats",
    "convert_to_tensor": ", as `rank` always returns Python floats",
}
"""Keywords ``rank`` drops with sentence-transformers' warning (why each has no effect)."""


class CrossEncoder(BaseModel):
    """Scores ``(query, document)`` pairs from a sentence-transformers cross-encoder directory.

    Construct as in sentence-transformers (``CrossEncoder(path, backend="onnx")``) or with
    :meth:`from_dir` / :meth:`from_pretrained`. Reads both the sentence-transformers 6 layout
    (``modules.json``) and older directories without it.

    Arguments after ``model_name_or_path`` may still be passed by position in sentence-transformers' order
    (``num_labels``, ``max_length``, ``activation_fn``, ``device``...), each logging its deprecation warning.

    Args:
        num_labels: checked against the directory's classifier when given.
        max_length: truncation length in tokens, replacing the directory's.
        activation_fn: a ``torch.nn`` activation (instance or dotted path) or a NumPy callable;
            default: the directory's, else sigmoid for one label and identity otherwise.

    Example:
        >>> model = CrossEncoder("cross-encoder-onnx")
        >>> model.predict([("How old is Paris?", "Paris was founded in the 3rd century BC.")]).shape
        (1,)
    """

    model_kind = "CrossEncoder"
    default_task = "sequence-classification"
    default_prompt_names = ()  # sentence-transformers' CrossEncoder has no default prompts

    extra_init_kwargs = ("num_labels", "max_length", "activation_fn", "keep_in_fp32_modules", "model_name",
                         "automodel_args", "tokenizer_args", "config_args", "cache_dir", "default_activation_function",
                         "classifier_dropout")

    def __init__(self, model_name_or_path: str | None = None, *args: Any, num_labels: int | None = None,
                 max_length: int | None = None, activation_fn: Any = None, **kwargs: Any) -> None:
        given = {"num_labels": num_labels, "max_length": max_length, "activation_fn": activation_fn}
        kwargs = _legacy_init_kwargs(args, {**{k: v for k, v in given.items() if v is not None}, **kwargs})
        model_name_or_path = self._legacy_inputs(model_name_or_path, kwargs, "model_name_or_path")
        num_labels, max_length = kwargs.pop("num_labels", None), kwargs.pop("max_length", None)
        activation_fn = kwargs.pop("activation_fn", None)
        kwargs.pop("keep_in_fp32_modules", None)  # torch-only
        self.trust_remote_code = bool(kwargs.get("trust_remote_code", False))
        if model_name_or_path is None:
            raise InputError("CrossEncoder needs model_name_or_path (a directory or a Hub repo id)")
        super().__init__(model_name_or_path, **kwargs)
        if not any(m.module_output_name == "scores" for m in self.modules):
            raise ConfigError(f"{self.model_dir} is not a cross-encoder: no module outputs 'scores' "
                              "(export it with transformer_task 'sequence-classification')")
        if num_labels is not None and num_labels != self.num_labels:
            raise InputError(f"num_labels={num_labels} does not match the model's {self.num_labels} labels")
        if max_length is not None:
            self.max_seq_length = max_length
        self.activation_fn_name, self.activation_fn = (
            _resolve(activation_fn) if activation_fn is not None else self._default_activation())
        self._init_kwargs.update(max_length=self.max_seq_length,
                                 activation_fn=self.activation_fn_name if self.activation_fn_name.startswith("torch.")
                                 else self.activation_fn)

    def get_default_activation_fn(self) -> Activation:
        """The activation the directory configures (sigmoid for one label, identity otherwise, when none)."""
        return self._default_activation()[1]

    @property
    def default_activation_function(self) -> Activation:
        """Deprecated in sentence-transformers (a DeprecationWarning, as there): :attr:`activation_fn`."""
        warnings.warn("The `default_activation_function` property was renamed and is now deprecated. "
                      "Please use `activation_fn` instead.", DeprecationWarning, stacklevel=2)
        return self.activation_fn

    def _default_modules(self, ctx: LoadContext) -> list[Module]:
        if any(a.endswith("ForCausalLM") for a in HFConfig.read(ctx.model_dir).architectures):
            raise UnsupportedModuleError(f"{ctx.model_dir} is a generative (causal LM) reranker; onnx-st runs "
                                         "sequence-classification cross-encoders only")
        return [Transformer.load(ctx.model_dir, ctx)]

    @property
    def _hf_config(self) -> HFConfig:
        first = self.pipeline.input_module
        return first.hf_config if isinstance(first, Transformer) else HFConfig.read(self.model_dir)

    @property
    def num_labels(self) -> int:
        """Scores per pair: the classifier's labels (or a final Dense writing ``scores``)."""
        for module in reversed(self.modules):
            dim = module.get_embedding_dimension()
            if module.module_output_name == "scores" and dim is not None:
                return dim
            if isinstance(module, Transformer):
                return module.hf_config.num_labels
        return 1

    @property
    def max_seq_length(self) -> int | None:
        """Truncation length of a pair in tokens (special tokens included)."""
        return self.pipeline.input_module.max_seq_length

    @max_seq_length.setter
    def max_seq_length(self, value: int | None) -> None:
        module = self.pipeline.input_module
        limit = self._hf_config.max_position_embeddings
        if not isinstance(value, int) or isinstance(value, bool) or value < 4 or (limit and value > limit):
            raise InputError(f"max_length must be an integer from 4 to {limit or 'the model limit'}, got {value!r}")
        if not isinstance(module, Transformer):
            raise InputError("This model's input module has no tokenizer to truncate with")
        module.max_seq_length = value

    @property
    def max_length(self) -> int | None:
        """Deprecated in sentence-transformers (a DeprecationWarning, as there): :attr:`max_seq_length`."""
        warnings.warn("The `max_length` property was renamed and is now deprecated. Please use `max_seq_length` "
                      "instead.", DeprecationWarning, stacklevel=2)
        return self.max_seq_length

    @max_length.setter
    def max_length(self, value: int | None) -> None:
        warnings.warn("The `max_length` property was renamed and is now deprecated. Please use `max_seq_length` "
                      "instead.", DeprecationWarning, stacklevel=2)
        self.max_seq_length = value

    def _default_activation(self) -> tuple[str, Activation]:
        """sentence-transformers' order: config_sentence_transformers.json, config.json, then by label count.

        Raises:
            ConfigModuleNotFoundError: a path whose module does not exist (sentence-transformers' ModuleNotFoundError).
            ConfigError: a torch activation onnx-st does not implement.
        """
        hf = self._hf_config
        legacy = hf.raw.get("sbert_ce_default_activation_function")
        for path in (self.config.activation_fn, hf.st_activation_fn, legacy):
            if not path:
                continue
            _check_importable(str(path), self.trust_remote_code)
            if not str(path).startswith("torch."):
                logger.warning("Activation %r is not a torch activation; using the default instead", path)
                continue
            try:
                return _resolve(str(path))
            except InputError as exc:
                raise ConfigError(f"{self.model_dir}: {exc}") from exc
        return _resolve(_torch_path("Sigmoid" if self.num_labels == 1 else "Identity"))

    def predict(self, inputs: Any = None, prompt_name: str | None = None, prompt: str | None = None,
                batch_size: int = 32, show_progress_bar: bool | None = None, activation_fn: Any = None,
                apply_softmax: bool | None = False, convert_to_numpy: bool = True, convert_to_tensor: bool = False,
                device: str | list[str] | None = None, pool: MultiProcessPool | None = None,
                chunk_size: int | None = None, **kwargs: Any) -> Any:
        """Score text pairs.

        Args:
            inputs: one ``(text, text)`` pair or a batch of pairs (list, datasets Column...); ``sentences=`` works too.
            prompt_name, prompt: a prompt prepended to the first text of each pair.
            batch_size: pairs per ONNX run; pairs are sorted by length first.
            activation_fn: overrides the model's activation for this call (``activation_fct=`` works too;
                given both, ``activation_fn`` wins with a warning).
            apply_softmax: softmax over labels (models with several labels).
            convert_to_numpy: ``False`` gives a list of per-pair results.
            convert_to_tensor: accepted for compatibility; results are NumPy.
            pool, chunk_size: a pool from :meth:`start_multi_process_pool` (or ``device=[...]``) and pairs per chunk.
            **kwargs: ``processing_kwargs`` (``{"text": {"max_length": n}}``), ``task``.

        Returns:
            ``(n,)`` for one label, ``(n, num_labels)`` otherwise; one pair gives a scalar (one label)
            or a ``(num_labels,)`` array; an empty list gives ``(0,)``.

        Raises:
            InputError: a pair that is not two strings, bad ``batch_size`` or unknown arguments.
        """
        inputs = self._legacy_inputs(inputs, kwargs, "sentences", "sentence_pairs", "sentences_pairs")
        if "activation_fct" in kwargs:
            legacy = kwargs.pop("activation_fct")
            logger.warning("The `activation_fct` argument was renamed and is now deprecated. "
                           "Please use `activation_fn` instead.")
            activation_fn = legacy if activation_fn is None else activation_fn
        kwargs.pop("num_workers", None)
        call = self._call_kwargs("predict", kwargs)
        pairs, single = _as_pairs(inputs)
        fn = self.activation_fn if activation_fn is None else _resolve(activation_fn)[1]
        args = {"prompt": self._resolve_prompt(prompt, prompt_name), "batch_size": batch_size, **call}
        if pool is not None or (isinstance(device, list) and device):
            rows = run_in_pool(self, pairs, args, pool=pool, devices=device, chunk_size=chunk_size,
                               show_progress_bar=show_progress_bar)
        else:
            rows = self._inference(pairs, show_progress_bar=show_progress_bar, **args)
        if not rows:
            return np.zeros((0,), dtype=np.float32) if convert_to_numpy or convert_to_tensor else []
        scores = np.asarray(fn(np.stack(rows).astype(np.float32, copy=False)), dtype=np.float32)
        if self.num_labels == 1 and scores.ndim > 1:
            scores = scores.squeeze(-1)
        if apply_softmax and scores.ndim > 1:
            scores = softmax(scores, axis=1)
        result: Any = scores if convert_to_numpy or convert_to_tensor else list(scores)
        return result[0] if single else result

    def _inference(self, pairs: list[tuple[str, str]], *, prompt: str | None, batch_size: int,
                   show_progress_bar: bool | None, task: str | None = None, modality: Any = None,
                   processing_kwargs: Any = None) -> list[np.ndarray]:
        """Raw scores (before the activation) of each pair, in input order, computed in this process."""
        def collect(features: Features) -> list[np.ndarray]:
            return list(features["scores"])

        with self._call_max_length(processing_kwargs):
            return self.pipeline.map_batches(pairs, collect, batch_size=batch_size, prompt=prompt, task=task,
                                             show_progress_bar=show_progress_bar, modality=modality)

    def rank(self, query: str, documents: Sequence[str], top_k: int | None = None, return_documents: bool = False,
             prompt_name: str | None = None, prompt: str | None = None, batch_size: int = 32,
             show_progress_bar: bool | None = None, activation_fn: Any = None, device: str | list[str] | None = None,
             pool: MultiProcessPool | None = None, chunk_size: int | None = None,
             **kwargs: Any) -> list[dict[str, Any]]:
        """Score ``query`` against each document and sort best first (arguments in sentence-transformers' order).

        Returns:
            ``[{"corpus_id": int, "score": float[, "text": str]}, ...]``, at most ``top_k`` long
            (ties keep document order); an empty document list gives ``[]``.

        Raises:
            InputError: a model with several labels, non-string query or documents, ``top_k`` below 1.
        """
        if "activation_fct" in kwargs:
            legacy = kwargs.pop("activation_fct")
            logger.warning("The `activation_fct` argument was renamed and is now deprecated. "
                           "Please use `activation_fn` instead.")
            activation_fn = legacy if activation_fn is None else activation_fn
        for ignored, why in _RANK_IGNORED.items():
            if ignored in kwargs:
                kwargs.pop(ignored)
                logger.warning("The CrossEncoder.rank `%s` argument is deprecated and has no effect%s. It will be "
                               "removed in a future version.", ignored, why)
        if kwargs:
            raise InputError(f"rank() got unsupported keyword arguments {sorted(kwargs)}")
        if self.num_labels != 1:
            raise InputError("CrossEncoder.rank() only works for models with num_labels=1. "
                             "Consider using CrossEncoder.predict() with input pairs instead.")
        if not isinstance(query, str):
            raise InputError(f"query must be a str, got {type(query).__name__}")
        if isinstance(documents, str):
            raise InputError("documents must be a list of str, not a single str")
        docs, _ = self._as_text_list(documents, "documents", pairs=False)
        if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
            raise InputError(f"top_k must be a positive integer or None, got {top_k!r}")
        scores = self.predict(inputs=[[query, doc] for doc in docs], prompt_name=prompt_name, prompt=prompt,
                              batch_size=batch_size, show_progress_bar=show_progress_bar, activation_fn=activation_fn,
                              convert_to_tensor=True, device=device, pool=pool, chunk_size=chunk_size).tolist()
        results: list[dict[str, Any]] = []
        for i, score in enumerate(scores):
            results.append({"corpus_id": i, "score": score, **({"text": docs[i]} if return_documents else {})})
        results.sort(key=lambda r: r["score"], reverse=True)
        return results[:top_k]

    # the interface the CLI, the server, jobs and the exporter call (see BaseModel)

    @property
    def labels(self) -> list[str]:
        """The label of each score: ``config.json``'s ``id2label``, else ``LABEL_i``."""
        id2label = self._hf_config.id2label
        return [id2label.get(i, f"LABEL_{i}") for i in range(self.num_labels)]

    def get_embedding_dimension(self) -> int | None:
        """``None``: a reranker scores pairs and embeds nothing."""
        return None

    def describe(self) -> dict[str, Any]:
        return {"num_labels": self.num_labels, "activation_fn": self.activation_fn_name}

    def similarity_to_source(self, source: str, sentences: list[str]) -> np.ndarray:
        return np.asarray(self.predict([(source, s) for s in sentences]))

    def encode_json(self, texts: list[str], *, batch_size: int = 32, normalize: bool = False,
                    precision: str = "float32") -> list[Any]:
        raise InputError("A CrossEncoder scores text pairs and does not embed texts: use predict()")

    def job_columns(self) -> tuple[OutputColumn, ...]:
        labels = self.num_labels
        return (OutputColumn("score") if labels == 1 else OutputColumn("score", nesting=1, width=labels),)

    def encode_job_batch(self, texts: Mapping[str, list[str]], *, batch_size: int, prompt_name: str | None,
                         normalize: bool) -> dict[str, np.ndarray]:
        pairs = list(zip(texts["query"], texts["document"]))
        labels = self.num_labels
        if not pairs:
            return {"score": np.zeros((0,) if labels == 1 else (0, labels), np.float32)}
        scores = self.predict(pairs, batch_size=batch_size, prompt_name=prompt_name, show_progress_bar=False)
        return {"score": np.asarray(scores, dtype=np.float32)}

    def parity_outputs(self, inputs: Sequence[Any], batch_size: int = 32) -> np.ndarray:
        return np.asarray(self.predict(list(inputs), batch_size=batch_size))

    def serve_predict(self, pairs: list[tuple[str, str]], *, raw_scores: bool) -> list[np.ndarray]:
        activation = "torch.nn.Identity" if raw_scores else None
        return list(np.asarray(self.predict(pairs, convert_to_numpy=True, activation_fn=activation), dtype=np.float32))

    def _extra_config(self) -> dict[str, Any]:
        fn = self.activation_fn
        if not self.activation_fn_name.startswith("torch.") and (
                inspect.isroutine(fn) or isinstance(fn, functools.partial)):
            logger.warning("Saving activation function %r: plain functions can't be restored from the "
                           "configuration, so loading with default settings will use the default activation "
                           "function. Please use a `torch.nn.Module` instead, e.g. `torch.nn.Identity()` instead "
                           "of `lambda x: x`.", fn)
        return {"activation_fn": self.activation_fn_name}


def _resolve(fn: Any) -> tuple[str, Activation]:
    """A dotted torch path, a ``torch.nn`` activation instance or a NumPy callable -> ``(name, function)``."""
    if isinstance(fn, str):
        name = fn.rsplit(".", 1)[-1]
        if name not in ACTIVATIONS:
            raise InputError(f"Unsupported activation {fn!r}; supported: {sorted(ACTIVATIONS)}")
        return _torch_path(name), activation(name)
    kind = type(fn)
    if kind.__module__.startswith("torch.") and kind.__name__ in ACTIVATIONS:
        return _torch_path(kind.__name__), activation(kind.__name__)
    if not callable(fn):
        raise InputError(f"activation_fn must be callable or a torch activation path, got {type(fn).__name__}")
    return f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', kind.__qualname__)}", fn


def _as_pairs(inputs: Any) -> tuple[list[tuple[str, str]], bool]:
    """Normalize one pair or a list of pairs to a list of string tuples; the flag says one pair was given."""
    if isinstance(inputs, np.ndarray) or type(inputs).__module__.startswith("datasets."):
        inputs = list(inputs.tolist() if isinstance(inputs, np.ndarray) else inputs)
    if isinstance(inputs, str) or not isinstance(inputs, (list, tuple)):
        raise InputError(f"inputs must be a (text, text) pair or a list of pairs, got {type(inputs).__name__}")
    single = len(inputs) > 0 and not isinstance(inputs[0], (list, tuple))
    pairs = [inputs] if single else inputs
    out: list[tuple[str, str]] = []
    for i, pair in enumerate(pairs):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2 or not all(isinstance(t, str) for t in pair):
            raise InputError(f"pair #{i} must be two strings, got {pair!r:.120}")
        out.append((pair[0], pair[1]))
    return out, single


Reranker = CrossEncoder
