"""Command line: ``onnx-st-export MODEL OUTPUT_DIR`` (also ``python -m exporter``).

Variants: ``--optimize O1 O2 O3 O4`` and ``--quantize avx2 avx512 avx512_vnni arm64`` add files next to
``onnx/model.onnx``, each with a parity record in ``onnx/parity.json``; ``--variants-only DIR`` adds
them to an already exported directory.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from onnx_st.kinds import KINDS

from .limits import DEFAULT_ATOL


def build_parser() -> argparse.ArgumentParser:
    """Argument parser of the exporter command."""
    parser = argparse.ArgumentParser(
        prog="onnx-st-export",
        description="Export a sentence-transformers model to a directory with ONNX graphs for onnx-st.",
    )
    parser.add_argument("model", nargs="?", help="model directory or Hugging Face Hub repo id")
    parser.add_argument("output_dir", nargs="?", type=Path, help="directory to write")
    parser.add_argument("--kind", choices=["auto", *KINDS], default="auto",
                        help="model kind (default: from the model's files; a bare masked LM needs it)")
    parser.add_argument("--opset", type=int, default=17)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    parser.add_argument("--no-verify", action="store_true", help="skip the PyTorch vs. ONNX Runtime comparison")
    parser.add_argument("--atol", type=float, default=DEFAULT_ATOL, help="largest accepted difference (verify)")
    variants = parser.add_argument_group("variants (each file gets a parity record in onnx/parity.json)")
    variants.add_argument("--optimize", nargs="+", default=[], metavar="LEVEL", choices=["O1", "O2", "O3", "O4"],
                          help="write onnx/model_<LEVEL>.onnx (O4: float16, GPU-only)")
    variants.add_argument("--quantize", nargs="+", default=[], metavar="FAMILY",
                          choices=[f"{f}{hq}" for hq in ("", "_hq") for f in ("auto", "avx2", "avx512", "avx512_vnni",
                                                                               "arm64")],
                          help="write batch-invariant int8 onnx/model_qint8_{avx2,avx512,avx512_vnni,arm64}.onnx "
                               "(auto: the best family for the CPU this runs on; FAMILY_hq: the near-lossless "
                               "onnx/model_qint8_FAMILY_hq.onnx)")
    variants.add_argument("--fast-load", nargs="+", default=[], metavar="FILE",
                          help="write FILE (e.g. onnx/model.onnx) as <name>_fast.onnx: ONNX Runtime's optimised graph "
                               "with memory-mapped weights, for fast cold starts")
    variants.add_argument("--parity-texts", type=int, default=500, help="size of the fixed parity sample (default 500)")
    variants.add_argument("--int8-exclude", choices=["auto", "none"], default="auto",
                          help="auto: keep the most outlier-prone MatMuls float32 until the int8 targets are met")
    variants.add_argument("--variants-only", type=Path, metavar="DIR",
                          help="add the variants to the already exported DIR (no MODEL / OUTPUT_DIR)")
    return parser


def _list_files(root: Path) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(folder, name), root) for folder, _, names in os.walk(root) for name in names
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the exporter; returns the process exit code (1 when verification fails)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.variants_only is not None:
        if args.model or args.output_dir:
            parser.error("--variants-only DIR takes no MODEL or OUTPUT_DIR")
        if not (args.optimize or args.quantize or args.fast_load):
            parser.error("--variants-only needs --optimize, --quantize and/or --fast-load")
    elif not (args.model and args.output_dir):
        parser.error("MODEL and OUTPUT_DIR are required (or --variants-only DIR)")
    try:
        from . import export_model, verify_export
    except ImportError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.variants_only is not None:
        return _variants(args.variants_only, args)

    from onnx_st.errors import OnnxSTError

    try:
        output_dir = export_model(args.model, args.output_dir, kind=args.kind, opset=args.opset,
                                  overwrite=args.overwrite)
    except OnnxSTError as exc:
        print(f"onnx-st-export: error: {exc}", file=sys.stderr)
        return 2
    print(f"Wrote {output_dir}:")
    for name in _list_files(output_dir):
        print(f"  {name}")
    if args.no_verify:
        return 0
    report = verify_export(output_dir)
    print(report.summary())
    if not report.passed(args.atol):
        print(f"FAILED: largest difference {report.max_abs_diff:.3e} exceeds {args.atol:g}")
        return 1
    return _variants(output_dir, args) if args.optimize or args.quantize or args.fast_load else 0


def _variants(model_dir: Path, args: argparse.Namespace) -> int:
    """Write the requested variants with their parity records; 1 when a file misses its thresholds."""
    from .variants import make_variants

    print(f"Variants of {model_dir} (parity on {args.parity_texts} texts against sentence-transformers):")
    records = make_variants(model_dir, optimize=args.optimize, quantize=args.quantize, fast_load=args.fast_load,
                            parity_texts=args.parity_texts, exclude=args.int8_exclude,
                            echo=lambda line: print(f"  {line}", flush=True))
    failed = [r.file_name for r in records if not r.passed]
    if failed:
        print(f"FAILED thresholds: {', '.join(failed)} (files kept; see their records)")
        return 1
    return 0
