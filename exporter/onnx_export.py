"""Export the Hugging Face model inside one sentence-transformers ``Transformer`` module to ONNX."""

from __future__ import annotations

import inspect
import logging
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from sentence_transformers.base.modules.transformer import Transformer
from torch import nn

from . import _deps  # noqa: F401  (raises ImportError with the install command without the export extra)

logger = logging.getLogger(__name__)

ONNX_SUBDIR = "onnx"
ONNX_FILE = "model.onnx"
TASK_OUTPUT_NAMES: dict[str, str] = {
    "feature-extraction": "last_hidden_state",
    "fill-mask": "logits",
    "sequence-classification": "logits",
}
_CANDIDATE_INPUTS: tuple[str, ...] = ("input_ids", "attention_mask", "token_type_ids")
_DUMMY_TEXTS: tuple[str, ...] = ("A short text.", "A somewhat longer text, with punctuation and more words in it!")
# (batch, sequence) shapes checked after export: both differ from the dummy input's (2, n).
_SWEEP_SHAPES: tuple[tuple[int, int], ...] = ((1, 1), (1, 300), (3, 2), (3, 33), (3, 129))


class ExportError(RuntimeError):
    """Raised when no exporter produced a graph that matches the PyTorch model."""


@dataclass(frozen=True)
class GraphSpec:
    """Names of the inputs and the output of an exported graph."""

    task: str
    input_names: tuple[str, ...]
    output_name: str


class _GraphWrapper(nn.Module):
    """Calls the Hugging Face model with named int64 inputs and returns a single tensor."""

    def __init__(self, model: nn.Module, input_names: Sequence[str], output_name: str) -> None:
        super().__init__()
        self.model = model
        self.input_names = tuple(input_names)
        self.output_name = output_name

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        return self.model(**inputs, return_dict=True)[self.output_name]


def is_text_pair_task(module: Transformer) -> bool:
    """Whether the module scores text pairs (a cross-encoder) rather than single texts."""
    return module.transformer_task == "sequence-classification"


def sample_features(module: Transformer, texts: Sequence[str]) -> dict[str, torch.Tensor]:
    """Tokenize ``texts`` exactly as sentence-transformers does (pairs of neighbours for cross-encoders)."""
    if is_text_pair_task(module):
        pairs = [[texts[i], texts[(i + 1) % len(texts)]] for i in range(len(texts))]
        features = module.preprocess(pairs)
    else:
        features = module.preprocess(list(texts))
    return {k: v for k, v in features.items() if isinstance(v, torch.Tensor)}


def graph_spec(module: Transformer) -> GraphSpec:
    """Decide the graph inputs: ``token_type_ids`` only if the tokenizer emits it and the model accepts it."""
    task = module.transformer_task
    if task not in TASK_OUTPUT_NAMES:
        raise ExportError(f"transformer_task {task!r} is not supported; expected one of {sorted(TASK_OUTPUT_NAMES)}")
    accepted = set(inspect.signature(module.auto_model.forward).parameters)
    produced = set(sample_features(module, _DUMMY_TEXTS))
    names = tuple(n for n in _CANDIDATE_INPUTS if n in produced and (n in accepted or n != "token_type_ids"))
    if "input_ids" not in names or "attention_mask" not in names:
        raise ExportError(f"the tokenizer must produce input_ids and attention_mask, got {sorted(produced)}")
    return GraphSpec(task=task, input_names=names, output_name=TASK_OUTPUT_NAMES[task])


def _export_torchscript(
    wrapper: nn.Module, args: tuple[torch.Tensor, ...], spec: GraphSpec, path: Path, opset: int
) -> None:
    axes = {name: {0: "batch", 1: "sequence"} for name in spec.input_names}
    axes[spec.output_name] = {0: "batch", 1: "sequence"} if spec.task != "sequence-classification" else {0: "batch"}
    torch.onnx.export(
        wrapper,
        args,
        str(path),
        input_names=list(spec.input_names),
        output_names=[spec.output_name],
        dynamic_axes=axes,
        opset_version=opset,
        do_constant_folding=True,
        dynamo=False,
    )


def _export_dynamo(wrapper: nn.Module, args: tuple[torch.Tensor, ...], spec: GraphSpec, path: Path, opset: int) -> None:
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    shapes = {name: {0: batch, 1: sequence} for name in spec.input_names}
    program = torch.onnx.export(
        wrapper,
        args,
        input_names=list(spec.input_names),
        output_names=[spec.output_name],
        dynamic_shapes=shapes,
        opset_version=max(opset, 18),
        dynamo=True,
        external_data=False,
    )
    if program is None:
        raise ExportError("the dynamo exporter returned no program")
    program.save(str(path), external_data=_needs_external_data(wrapper))


def _needs_external_data(model: nn.Module) -> bool:
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    return size >= 1_900_000_000


def _max_positions(module: Transformer) -> int:
    config = module.auto_model.config
    limit = getattr(config, "max_position_embeddings", None)
    if not isinstance(limit, int) or limit <= 0:
        return max(length for _, length in _SWEEP_SHAPES)
    # RoBERTa-style embeddings offset positions by padding_idx + 1.
    roberta_like = config.model_type in {"roberta", "xlm-roberta", "camembert"}
    offset = int(getattr(config, "pad_token_id", 0) or 0) + 1 if roberta_like else 0
    return limit - offset


def shape_sweep(module: Transformer, spec: GraphSpec, path: Path, seed: int = 0) -> float:
    """Compare ONNX Runtime with PyTorch on random inputs of several batch sizes and lengths.

    Returns the largest attention-masked absolute difference, relative to the output scale.
    """
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    wrapper = _GraphWrapper(module.auto_model, spec.input_names, spec.output_name).eval()
    generator = torch.Generator().manual_seed(seed)
    vocab = int(module.auto_model.config.vocab_size)
    max_len = _max_positions(module)
    worst = 0.0
    for batch, wanted in _SWEEP_SHAPES:
        length = min(wanted, max_len)
        ids = torch.randint(5, vocab, (batch, length), generator=generator)
        mask = torch.ones(batch, length, dtype=torch.long)
        if batch > 1 and length > 1:
            mask[1:, max(1, length // 2) :] = 0
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in spec.input_names:
            type_ids = torch.zeros_like(ids)
            type_ids[:, length // 3 :] = int(getattr(module.auto_model.config, "type_vocab_size", 1) > 1)
            feeds["token_type_ids"] = type_ids
        with torch.inference_mode():
            expected = wrapper(*(feeds[n] for n in spec.input_names)).float().numpy()
        actual = session.run([spec.output_name], {n: feeds[n].numpy() for n in spec.input_names})[0]
        scale = max(1.0, float(np.abs(expected).max()))
        worst = max(worst, masked_max_abs_diff(expected, actual, mask.numpy()) / scale)
    return worst


def masked_max_abs_diff(expected: np.ndarray, actual: np.ndarray, attention_mask: np.ndarray) -> float:
    """Largest absolute difference, ignoring padded positions for (batch, seq, ...) outputs."""
    if expected.shape != actual.shape:
        return float("inf")
    diff = np.abs(expected.astype(np.float64) - actual.astype(np.float64))
    if diff.ndim >= 3:
        diff = diff * attention_mask.reshape(attention_mask.shape + (1,) * (diff.ndim - 2))
    return float(diff.max()) if diff.size else 0.0


@contextmanager
def eager_attention(module: Transformer) -> Iterator[bool]:
    """Switch the module's Hugging Face model to eager attention within the block; yields whether it could."""
    model = module.auto_model
    previous = getattr(model.config, "_attn_implementation", None)
    try:
        model.set_attn_implementation("eager")
        switched = True
    except Exception as exc:
        logger.info("eager attention unavailable (%s); exporting the model's own attention", exc)
        switched = False
    try:
        yield switched
    finally:
        if switched and previous and previous != "eager":
            model.set_attn_implementation(previous)


def export_transformer(
    module: Transformer, module_dir: str | Path, *, opset: int = 17, tolerance: float = 1e-3
) -> Path:
    """Write ``<module_dir>/onnx/model.onnx`` for ``module`` and check it; returns the file path.

    Attention is exported as eager PyTorch attention where the model offers it, else as the model
    runs it. PyTorch's SDPA export guards fully masked rows with ``IsNaN``/``Where`` over every
    attention probability: a fifth of all-MiniLM-L6-v2's CPU time, for rows a padded batch never
    has (every text keeps its special tokens). Both match PyTorch to the same 1e-7.
    """
    with eager_attention(module) as eager:
        try:
            return _export_checked(module, module_dir, opset, tolerance)
        except ExportError as exc:
            if not eager:
                raise
            logger.warning("eager-attention export failed (%s); exporting the model's own attention", exc)
    return _export_checked(module, module_dir, opset, tolerance)


def _export_checked(module: Transformer, module_dir: str | Path, opset: int, tolerance: float) -> Path:
    """One export of ``module`` as it is configured now, checked on the shape sweep."""
    path = Path(module_dir) / ONNX_SUBDIR / ONNX_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    model = module.auto_model.float().eval()
    spec = graph_spec(module)
    features = sample_features(module, _DUMMY_TEXTS)
    args = tuple(features[name].to(torch.long).cpu() for name in spec.input_names)
    wrapper = _GraphWrapper(model, spec.input_names, spec.output_name).eval()
    errors: list[str] = []
    for name, exporter in (("torchscript", _export_torchscript), ("dynamo", _export_dynamo)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                exporter(wrapper, args, spec, path, opset)
            model.eval()
            onnx.checker.check_model(str(path))
            worst = shape_sweep(module, spec, path)
        except Exception as exc:
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        if worst <= tolerance:
            logger.info("exported %s with the %s exporter (sweep difference %.2e)", path, name, worst)
            return path
        errors.append(f"{name}: graph differs from PyTorch by {worst:.3e} on the shape sweep")
    raise ExportError(f"could not export {path}:\n  " + "\n  ".join(errors))
