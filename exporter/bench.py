"""Benchmark onnx-st against sentence-transformers on the same dense model and texts, in one run.

    python -m exporter.bench --model DIR [--texts 2000] [--batch-size 32] [--rounds 3]

Each round starts one fresh process per engine, in alternating order, and each process reports
its cold start (import, load, first encode), its throughput over all texts (after one warm-up
batch) and its peak resident memory. The table gives the median over rounds and the ratios.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

ENGINES = ("onnx-st", "st-torch", "st-onnx")


def _load(engine: str, model: str, file_name: str | None) -> Any:
    """Import the engine's library and load the model; the imports are part of the cold start."""
    if engine == "onnx-st":
        import onnx_st

        return onnx_st.SentenceTransformer(model, model_kwargs={"file_name": file_name} if file_name else None)
    from sentence_transformers import SentenceTransformer

    if engine == "st-torch":
        return SentenceTransformer(model, device="cpu")
    kwargs = {"file_name": file_name} if file_name else {}
    return SentenceTransformer(model, device="cpu", backend="onnx", model_kwargs=kwargs)


def worker(engine: str, model: str, texts_n: int, batch_size: int, file_name: str | None) -> dict[str, float]:
    """Measure one engine in this (fresh) process."""
    start = time.perf_counter()
    encoder = _load(engine, model, file_name)
    encoder.encode(["The first sentence warms nothing up."], batch_size=batch_size)
    cold = time.perf_counter() - start
    from exporter.corpus import benchmark_sentences

    texts = benchmark_sentences(texts_n)
    encoder.encode(texts[:batch_size], batch_size=batch_size)
    t0 = time.perf_counter()
    encoder.encode(texts, batch_size=batch_size)
    elapsed = time.perf_counter() - t0
    return {"cold_start_s": cold, "sentences_per_s": len(texts) / elapsed,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_worker(engine: str, args: argparse.Namespace) -> dict[str, float] | None:
    """One fresh process for one engine; ``None`` when the engine cannot run here."""
    cmd = [sys.executable, "-m", "exporter.bench", "--worker", engine, "--model", args.model, "--texts",
           str(args.texts), "--batch-size", str(args.batch_size)] + (["--file-name", args.file_name]
                                                                     if args.file_name else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"# {engine} did not run: {proc.stderr.strip().splitlines()[-1] if proc.stderr else proc.returncode}",
              file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def summarize(results: dict[str, list[dict[str, float]]], baseline: str = "st-torch") -> list[str]:
    """Median table plus ratios against the baseline engine."""
    lines = [f"{'engine':<10} {'sent/s':>9} {'cold start s':>13} {'peak MB':>9} {'x speed':>8} {'x memory':>9}"]
    medians = {e: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for e, rs in results.items() if rs}
    base = medians.get(baseline)
    for engine, m in medians.items():
        speed = f"{m['sentences_per_s'] / base['sentences_per_s']:.2f}" if base else "-"
        mem = f"{m['peak_rss_mb'] / base['peak_rss_mb']:.2f}" if base else "-"
        lines.append(f"{engine:<10} {m['sentences_per_s']:>9.1f} {m['cold_start_s']:>13.2f} {m['peak_rss_mb']:>9.0f}"
                     f" {speed:>8} {mem:>9}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and run the benchmark (or one worker)."""
    parser = argparse.ArgumentParser(prog="python -m exporter.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="exported model directory (same for every engine)")
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--file-name", help="ONNX file for onnx-st and st-onnx (default onnx/model.onnx)")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.model, args.texts, args.batch_size, args.file_name)))
        return 0
    engines = [e for e in args.engines.split(",") if e]
    results: dict[str, list[dict[str, float]]] = {e: [] for e in engines}
    print(f"# model {args.model}, {args.texts} texts of 4-120 words, batch {args.batch_size}, {args.rounds} rounds")
    for round_index in range(args.rounds):
        order = engines if round_index % 2 == 0 else engines[::-1]
        for engine in order:
            result = run_worker(engine, args)
            if result is not None:
                results[engine].append(result)
                print(f"# round {round_index + 1} {engine}: {json.dumps({k: round(v, 3) for k, v in result.items()})}")
    print("\n".join(summarize(results)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
