"""Build-time exporter for onnx-st (needs the ``export`` extra: torch, sentence-transformers, onnx).

Usage::

    onnx-st-export MODEL OUTPUT_DIR [--kind auto|dense|sparse|cross|multi-vector] [--opset 17] [--overwrite] [--no-verify]
    onnx-st-export MODEL OUTPUT_DIR --optimize O1 O2 O3 O4 --quantize avx2 avx512 avx512_vnni arm64
    onnx-st-export --variants-only DIR --quantize avx2 [--parity-texts 2000]   # add variants to an export
    python -m exporter MODEL OUTPUT_DIR          # same command
    python -m tools.fixtures [--out fixtures] # rebuild the tiny test fixtures

    from exporter import export_model, verify_export
    export_model("sentence-transformers/all-MiniLM-L6-v2", "out/minilm")
    print(verify_export("out/minilm").summary())

Output layout: exactly what sentence-transformers 6.3 ``model.save(dir, safe_serialization=True)``
writes (modules.json, config_sentence_transformers.json, the first module in the root when it
saves there, ``f"{idx}_{ClassName}"`` folders for the others, safetensors weights, never
pytorch_model.bin), plus one ONNX graph per Transformer-type module:

* ordinary model: ``<dir>/onnx/model.onnx`` (the Transformer saves in the root);
* Router model (module 0, saved in the root): each route's modules live in
  ``<dir>/<route>_<position>_<ClassName>/`` as listed in ``<dir>/router_config.json``
  (``types`` / ``structure`` / ``parameters``), and each Transformer among them gets
  ``<dir>/<route>_<position>_Transformer/onnx/model.onnx`` (``..._MLMTransformer`` likewise);
* no Transformer at all (StaticEmbedding, SparseStaticEmbedding only): no ONNX file.

Variants (``--optimize`` / ``--quantize``, :mod:`exporter.variants`) sit next to ``onnx/model.onnx``
under sentence-transformers' names (``onnx/model_O1.onnx`` .. ``model_O4.onnx``,
``onnx/model_qint8_{avx2,avx512,avx512_vnni,arm64}.onnx``), each with a
parity record in ``onnx/parity.json`` (see :mod:`exporter.parity`).

Graph contract: a single file (no external data below 2 GB), opset 17 (18 if the dynamo
fallback exporter was needed), float32, int64 inputs ``input_ids``, ``attention_mask`` and,
only when the tokenizer emits it and the model's forward accepts it, ``token_type_ids``, all
with dynamic axes ``(batch, sequence)``. One output: ``last_hidden_state`` (batch, sequence,
hidden) for ``transformer_task`` "feature-extraction", ``logits`` (batch, sequence, vocab) for
"fill-mask" and ``logits`` (batch, num_labels) for "sequence-classification". Each graph passes
``onnx.checker`` and matches PyTorch on batch sizes 1 and 3 and lengths 1 to 300 (capped by the
position table) before it is kept. ``fixtures/README.md`` describes every fixture layout and the
config files in detail.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .export import detect_kind as detect_kind
    from .export import export_model as export_model
    from .export import iter_transformer_modules as iter_transformer_modules
    from .export import load_st_model as load_st_model
    from .onnx_export import ExportError as ExportError
    from .onnx_export import export_transformer as export_transformer
    from .variants import make_variants as make_variants
    from .verify import SAMPLE_TEXTS as SAMPLE_TEXTS
    from .verify import GraphCheck as GraphCheck
    from .verify import VerifyReport as VerifyReport
    from .verify import verify_export as verify_export

# Public name -> defining module. Resolved on first access, after checking the export extra, so
# that torch-free helpers of this package (e.g. ``exporter.corpus``) import without torch.
_PUBLIC: dict[str, str] = {
    "detect_kind": ".export",
    "export_model": ".export",
    "iter_transformer_modules": ".export",
    "load_st_model": ".export",
    "ExportError": ".onnx_export",
    "export_transformer": ".onnx_export",
    "SAMPLE_TEXTS": ".verify",
    "GraphCheck": ".verify",
    "VerifyReport": ".verify",
    "verify_export": ".verify",
    "make_variants": ".variants",
}
__all__ = sorted(_PUBLIC)  # noqa: PLE0605 - a list built from the lazy-import table


def __getattr__(name: str) -> Any:
    """Import a public function on first use; raises ImportError with the install command without torch."""
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from ._deps import require

    require()
    value = getattr(importlib.import_module(_PUBLIC[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
