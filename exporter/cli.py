"""Command line: ``onnx-st-export MODEL OUTPUT_DIR`` (also ``python -m exporter``)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_ATOL = 1e-3


def build_parser() -> argparse.ArgumentParser:
    """Argument parser of the exporter command."""
    parser = argparse.ArgumentParser(
        prog="onnx-st-export",
        description="Export a sentence-transformers model to a directory with ONNX graphs for onnx-st.",
    )
    parser.add_argument("model", help="model directory or Hugging Face Hub repo id")
    parser.add_argument("output_dir", type=Path, help="directory to write")
    parser.add_argument("--kind", choices=["auto", "dense", "sparse", "cross"], default="auto")
    parser.add_argument("--opset", type=int, default=17)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    parser.add_argument("--no-verify", action="store_true", help="skip the PyTorch vs. ONNX Runtime comparison")
    parser.add_argument("--atol", type=float, default=DEFAULT_ATOL, help="largest accepted difference (verify)")
    return parser


def _list_files(root: Path) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(folder, name), root) for folder, _, names in os.walk(root) for name in names
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the exporter; returns the process exit code (1 when verification fails)."""
    args = build_parser().parse_args(argv)
    try:
        from . import export_model, verify_export
    except ImportError as exc:
        print(exc, file=sys.stderr)
        return 2

    output_dir = export_model(args.model, args.output_dir, kind=args.kind, opset=args.opset, overwrite=args.overwrite)
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
    return 0
