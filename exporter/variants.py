"""Write optimized and int8 ONNX variants into an exported directory, each with a parity record.

``make_variants(dir, optimize=["O2"], quantize=["avx2"])`` loads the directory with
sentence-transformers, writes the requested files next to every Transformer's ``onnx/model.onnx``,
compares each (and ``onnx/model.onnx`` itself) with sentence-transformers end to end, prints one
line per file and merges the records into ``onnx/parity.json``.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sentence_transformers.base.modules.transformer import Transformer

from onnx_st.kinds import get_kind

from . import _deps  # noqa: F401  (raises ImportError with the install command without the export extra)
from .export import ResolvedKind, iter_transformer_modules, load_st_model
from .onnx_export import ONNX_FILE, ONNX_SUBDIR, sample_features
from .optimize import LEVELS, fusable_graph, optimize_module, quantization_source
from .parity import (
    BATCH_SIZE,
    DEFAULT_TEXTS,
    ParityChecker,
    ParityRecord,
    compare,
    onnx_st_outputs,
    sample_inputs,
    write_records,
)
from .quantize import (
    FAMILIES,
    HQ_SUFFIX,
    channel_peaks,
    family_file_name,
    hq_thresholds,
    meets,
    outlier_ranking,
    quantize_graph,
    search_exclusions,
    selection_targets,
    split_hq,
)

logger = logging.getLogger(__name__)

BASE_FILE = f"{ONNX_SUBDIR}/{ONNX_FILE}"
# Texts (seed 1) that choose the float32 nodes of int8 files; parity uses seed 0. The minimum cosine
# is a tail statistic: on 256 texts all-MiniLM-L6-v2's int8 file met 0.985 yet fell to 0.974 on one
# text of the 2,000 benchmark texts, so the selection sample is large enough to see such tails.
SELECTION_TEXTS = 1024
_RANKING_TEXTS = 96
# Texts whose channel peaks set the smoothing scales of ``_hq`` files: all-MiniLM-L6-v2's worst cosine on
# 2,000 docstring sentences was 0.9947 with peaks of 96 texts, 0.9958 with 256.
_CALIBRATION_TEXTS = 256


def make_variants(model_dir: str | Path, *, optimize: Sequence[str] = (), quantize: Sequence[str] = (),
                  fast_load: Sequence[str] = (), parity_texts: int = DEFAULT_TEXTS, exclude: str = "auto",
                  echo: Callable[[str], None] = print) -> list[ParityRecord]:
    """Write the O-level files and int8 files asked for; returns their parity records (base file first).

    Args:
        model_dir: a directory written by the exporter (sentence-transformers layout plus ``onnx/model.onnx``).
        optimize: levels among ``O1`` to ``O4``.
        quantize: CPU families among ``avx2``, ``avx512``, ``avx512_vnni``, ``arm64``; ``auto`` is the best
            family for the CPU this runs on (:func:`onnx_st.cpu.int8_families`). ``<family>_hq`` (and
            ``auto_hq``) writes the near-lossless ``onnx/model_qint8_<family>_hq.onnx`` (:mod:`exporter.quantize`).
        parity_texts: size of the fixed parity sample (``benchmark_sentences(n)``).
        fast_load: files (``onnx/model.onnx``, or variants written here or before) to rewrite as
            ``<name>_fast.onnx`` + ``_fast.onnx_data`` (:func:`onnx_st.fastload.write_fast_load`), held
            to the thresholds of their source.
        exclude: ``"auto"`` keeps outlying MatMuls in float32 until the int8 targets are met; ``"none"`` quantizes all.
        echo: where each record's summary line goes.
    """
    for requested in ("auto", "auto" + HQ_SUFFIX):
        if requested in quantize:
            from onnx_st.cpu import cpu_header

            echo(f"--quantize {requested} -> {resolve_families([requested])[0]} ({cpu_header()})")
    quantize = resolve_families(quantize)
    unknown = [lvl for lvl in optimize if lvl not in LEVELS] + [f for f in quantize if split_hq(f)[0] not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown variants {unknown}; levels {LEVELS}, CPU families {sorted(FAMILIES)} "
                         "(each also as <family>_hq)")
    if exclude not in ("auto", "none"):
        raise ValueError(f"exclude must be 'auto' or 'none', got {exclude!r}")
    model_dir = Path(model_dir)
    model = load_st_model(str(model_dir))
    modules = [(model_dir / folder, module) for folder, module in iter_transformer_modules(model)]
    if not modules:
        raise ValueError(f"{model_dir} has no Transformer module: there is no ONNX graph to derive variants from")
    for module_dir, _ in modules:
        if not (module_dir / BASE_FILE).is_file():
            raise FileNotFoundError(f"{module_dir / BASE_FILE} is missing: export the model first")
    checker = ParityChecker(model_dir, parity_texts, model)
    records: list[ParityRecord] = []

    def keep(record: ParityRecord) -> None:
        records.append(record)
        echo(record.summary())

    keep(checker.check(BASE_FILE, checker.thresholds("fp32"), created_by={"method": "export"}))
    with tempfile.TemporaryDirectory(prefix="onnx-st-variants-") as tmp:
        # Only optimization and quantization need the fresh eager-attention graph (fast-load reads model.onnx).
        sources = {module_dir: fusable_graph(module, module_dir, Path(tmp) / str(i))
                   for i, (module_dir, module) in enumerate(modules)} if optimize or quantize else {}
        for level in optimize:
            graphs = [optimize_module(module, module_dir, [level], tmp, sources[module_dir])[0]
                      for module_dir, module in modules]
            first = graphs[0]
            keep(checker.check(first.file_name, checker.thresholds(first.threshold_class), gpu_only=first.gpu_only,
                               created_by={"method": "optimize", "level": level, "source": first.source,
                                           "settings": first.settings,
                                           "fused_operators": [g.fused_operators for g in graphs]}))
        if quantize:
            selector = _Selector(model_dir, checker.kind)
            int8_sources = {module_dir: quantization_source(module, sources[module_dir], Path(tmp) / f"q{i}")
                            for i, (module_dir, module) in enumerate(modules)}
            for family in quantize:
                keep(_quantize_family(family, modules, int8_sources, selector, checker, exclude))
    for file_name in fast_load:
        keep(_fast_load(file_name, modules, checker, records))
    for module_dir, _ in modules:
        echo(f"parity records: {write_records(module_dir / ONNX_SUBDIR, records)}")
    return records


def resolve_families(quantize: Sequence[str]) -> list[str]:
    """``quantize`` with ``auto`` (``auto_hq``) replaced by the best int8 family of this CPU (duplicates dropped).

    Raises:
        ValueError: ``auto`` on a CPU without AVX2, AVX-512 or ARM64 int8 support.
    """
    from onnx_st.cpu import int8_families

    families = []
    for requested in quantize:
        name = requested
        base, hq = split_hq(requested)
        if base == "auto":
            native = int8_families()
            if not native:
                raise ValueError(f"--quantize {requested}: this CPU has none of AVX2, AVX-512 or ARM64")
            name = native[0] + (HQ_SUFFIX if hq else "")
            logger.info("--quantize auto: %s for this CPU (it runs %s)", name, native)
        if name not in families:
            families.append(name)
    return families


class _Selector:
    """Scores a candidate file against ``onnx/model.onnx`` (onnx-st, float32) on the selection sample."""

    def __init__(self, model_dir: Path, kind: ResolvedKind) -> None:
        self.model_dir, self.kind = model_dir, kind
        self.inputs = sample_inputs(kind, SELECTION_TEXTS, seed=1)
        self.reference = self.outputs(BASE_FILE)

    def outputs(self, file_name: str) -> np.ndarray:
        return onnx_st_outputs(self.model_dir, self.kind, self.inputs, {"file_name": file_name})

    def score(self, file_name: str) -> Mapping[str, float | None]:
        return compare(self.reference, self.outputs(file_name))

    def feeds(self, module: Transformer, n: int = _RANKING_TEXTS) -> list[dict[str, np.ndarray]]:
        texts = [p[0] for p in self.inputs] if get_kind(self.kind).scores_pairs else list(self.inputs)
        texts = texts[:n]
        return [{k: v.numpy().astype(np.int64) for k, v in sample_features(module, texts[i:i + BATCH_SIZE]).items()}
                for i in range(0, len(texts), BATCH_SIZE)]


def _quantize_family(requested: str, modules: Sequence[tuple[Path, Transformer]],
                     sources: Mapping[Path, tuple[Path, str]], selector: _Selector, checker: ParityChecker,
                     exclude: str) -> ParityRecord:
    """The int8 file of one family; ``<family>_hq``: smoothed, float32 embedding table, near-lossless targets."""
    file_name = family_file_name(requested)
    family, hq = split_hq(requested)
    rankings = {d: [name for name, _ in outlier_ranking(sources[d][0], selector.feeds(m))] if exclude == "auto" else []
                for d, m in modules}
    peaks = {d: channel_peaks(sources[d][0], selector.feeds(m, _CALIBRATION_TEXTS)) if hq else None for d, m in modules}
    settings: dict[Path, dict[str, Any]] = {}

    def writer(embeddings: bool) -> Callable[[int], None]:
        def write(k: int) -> None:
            for module_dir, _ in modules:
                settings[module_dir] = quantize_graph(sources[module_dir][0], module_dir / file_name, family,
                                                      exclude=rankings[module_dir][:k], embeddings=embeddings,
                                                      peaks=peaks[module_dir])
        return write

    def search(embeddings: bool) -> tuple[int, list[dict[str, Any]]]:
        k, steps = search_exclusions(writer(embeddings), lambda: selector.score(file_name), limit, targets)
        return k, [{**step, "embeddings": "int8" if embeddings else "float32"} for step in steps]

    limit = min((len(r) for r in rankings.values()), default=0)
    targets = selection_targets(checker.kind, hq)
    chosen, trail = 0, list[dict[str, Any]]()
    if exclude == "auto" and not hq:
        chosen, trail = search(embeddings=True)
        if not meets(trail[-1], targets):
            # The int8 embedding table moves every token (per-token outputs feel it most): float32 table, search again.
            chosen, table_trail = search(embeddings=False)
            trail += table_trail
    elif exclude == "auto":  # near-lossless: the float32 table from the start (measured: a fifth of the loss)
        chosen, trail = search(embeddings=False)
    else:
        writer(embeddings=not hq)(0)
    first = settings[modules[0][0]]
    thresholds = hq_thresholds(checker.kind) if hq else checker.thresholds("int8")
    return checker.check(file_name, thresholds, created_by={
        "method": "quantize", "source": sources[modules[0][0]][1], "settings": first,
        "float32_nodes": chosen, "selection": {"texts": SELECTION_TEXTS, "seed": 1, "trail": trail}})


def fast_load_file_name(file_name: str) -> str:
    """``onnx/model_qint8_avx2.onnx`` -> ``onnx/model_qint8_avx2_fast.onnx``."""
    path = Path(file_name)
    return str(path.with_name(f"{path.stem}_fast{path.suffix}"))


def _fast_load(file_name: str, modules: Sequence[tuple[Path, Transformer]], checker: ParityChecker,
               records: Sequence[ParityRecord]) -> ParityRecord:
    """Write the fast-load copy of ``file_name`` in every Transformer folder; check it like its source."""
    import onnxruntime

    from onnx_st import list_variants
    from onnx_st.fastload import write_fast_load

    target = fast_load_file_name(file_name)
    for module_dir, _ in modules:
        if not (module_dir / file_name).is_file():
            raise FileNotFoundError(f"{module_dir / file_name} is missing: build it before its fast-load copy")
        write_fast_load(module_dir / file_name, module_dir / target)
    source = next((r.thresholds for r in records if r.file_name == file_name), None) or next(
        (v.parity.get("thresholds") for v in list_variants(checker.model_dir)
         if v.file_name == file_name and v.parity), None)
    return checker.check(target, source or checker.thresholds("fp32"), created_by={
        "method": "fast_load", "source": file_name, "onnxruntime": onnxruntime.__version__,
        "level": "extended", "external_data": Path(target).name + "_data"})


__all__ = ["BASE_FILE", "fast_load_file_name", "make_variants", "resolve_families"]
