"""Multi-process encoding: texts/s of one process, of onnx-st's pool and of sentence-transformers' pool.

Each engine encodes the same texts: one process with every core, then a pool of ``--workers``
processes (onnx-st splits the cores between its workers' ONNX sessions; sentence-transformers'
workers are torch processes on ``["cpu"] * workers``). Pool start-up (loading the model in each
worker) is timed apart from encoding, on a warm-up call, as a long-lived pool is used.

    python -m tools.bench_pool                       # all-MiniLM-L6-v2, 2,000 texts, cores // 2 workers
    python -m tools.bench_pool --workers 4 --texts 4000 --skip-torch
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from exporter.corpus import benchmark_sentences
from onnx_st.cpu import watched_flags
from tools.bench import machine_line


def _rate(texts: list[str], encode: Callable[[list[str]], Any], repeats: int) -> float:
    """Best texts/s over ``repeats`` runs (the first warm-up run excluded)."""
    encode(texts[:64])
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        encode(texts)
        best = max(best, len(texts) / (time.perf_counter() - start))
    return best


def _onnx_st(model_dir: Path, texts: list[str], workers: int, batch_size: int, repeats: int) -> dict[str, float]:
    import onnx_st

    model = onnx_st.SentenceTransformer(model_dir)
    out = {"1 process": _rate(texts, lambda t: model.encode(t, batch_size=batch_size), repeats)}
    start = time.perf_counter()
    pool = model.start_multi_process_pool(["cpu"] * workers)
    try:
        model.encode(texts[:workers * 8], pool=pool, chunk_size=8)  # every worker has loaded the model
        out["pool start (s)"] = time.perf_counter() - start
        out[f"pool x{workers}"] = _rate(texts, lambda t: model.encode(t, batch_size=batch_size, pool=pool), repeats)
    finally:
        model.stop_multi_process_pool(pool)
    return out


def _torch(model_dir: Path, texts: list[str], workers: int, batch_size: int, repeats: int) -> dict[str, float]:
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(os.cpu_count() or 1)
    model = SentenceTransformer(str(model_dir), device="cpu")
    out = {"1 process": _rate(texts, lambda t: model.encode(t, batch_size=batch_size), repeats)}
    start = time.perf_counter()
    pool = model.start_multi_process_pool(["cpu"] * workers)
    try:
        model.encode(texts[:workers * 8], pool=pool, chunk_size=8)
        out["pool start (s)"] = time.perf_counter() - start
        out[f"pool x{workers}"] = _rate(texts, lambda t: model.encode(t, batch_size=batch_size, pool=pool), repeats)
    finally:
        model.stop_multi_process_pool(pool)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Print texts/s for one process and a pool, onnx-st beside sentence-transformers."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="exported model directory (default: all-MiniLM-L6-v2)")
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=max(2, (os.cpu_count() or 2) // 2))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-torch", action="store_true", help="onnx-st only")
    args = parser.parse_args(argv)
    if args.model is None:
        from tools.pypi_models import minilm_exported

        args.model = minilm_exported()
    texts = benchmark_sentences(args.texts)
    print(machine_line())
    print(f"# instruction sets: {', '.join(watched_flags()) or 'none reported'}")
    print(f"# model: {args.model}, {len(texts)} texts, batch_size {args.batch_size}, {args.workers} workers")
    engines: list[tuple[str, Callable[..., dict[str, float]]]] = [("onnx-st", _onnx_st)]
    if not args.skip_torch:
        engines.append(("sentence-transformers", _torch))
    for name, run in engines:
        figures = run(args.model, texts, args.workers, args.batch_size, args.repeats)
        print(f"{name:<22} " + "  ".join(f"{k}: {v:,.1f}" + ("" if "(s)" in k else " texts/s")
                                          for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
