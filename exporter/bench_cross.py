"""Benchmark onnx-st's CrossEncoder against sentence-transformers' on the same reranker and pairs, in one run.

    python -m exporter.bench_cross [--model DIR] [--pairs 1000] [--batch-size 32] [--rounds 3] [--threads N]

Without ``--model`` it builds (once, cached) the MiniLM reranker of :mod:`exporter.reranker_models`:
all-MiniLM-L6-v2's real encoder under a seeded one-label head, max length 128. Each round starts
one fresh process per engine, in alternating order; each process reports its cold start (import,
load, first predict), its throughput over the same pairs (after one warm-up batch) and its peak
resident memory. The table gives the median over rounds and the ratios to sentence-transformers.
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
PAIR_SEED = 5


def _load(engine: str, model: str, threads: int | None) -> Any:
    """Import the engine's library and load the model; the imports are part of the cold start."""
    if engine == "onnx-st":
        import onnx_st

        return onnx_st.CrossEncoder(model, model_kwargs={"intra_op_num_threads": threads} if threads else None)
    import torch
    from sentence_transformers import CrossEncoder

    if threads:
        torch.set_num_threads(threads)
    return CrossEncoder(model, device="cpu", backend="torch" if engine == "st-torch" else "onnx")


def worker(engine: str, model: str, pairs_n: int, batch_size: int, threads: int | None) -> dict[str, float]:
    """Measure one engine in this (fresh) process."""
    start = time.perf_counter()
    reranker = _load(engine, model, threads)
    reranker.predict([("What warms up?", "Nothing does.")], batch_size=batch_size)
    cold = time.perf_counter() - start
    from exporter.corpus import sample_pairs

    pairs = sample_pairs(pairs_n, seed=PAIR_SEED)
    reranker.predict(pairs[:batch_size], batch_size=batch_size)
    t0 = time.perf_counter()
    reranker.predict(pairs, batch_size=batch_size)
    elapsed = time.perf_counter() - t0
    return {"cold_start_s": cold, "pairs_per_s": len(pairs) / elapsed,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_worker(engine: str, args: argparse.Namespace) -> dict[str, float] | None:
    """One fresh process for one engine; ``None`` when the engine cannot run here."""
    cmd = [sys.executable, "-m", "exporter.bench_cross", "--worker", engine, "--model", args.model,
           "--pairs", str(args.pairs), "--batch-size", str(args.batch_size)]
    cmd += ["--threads", str(args.threads)] if args.threads else []
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode
        print(f"# {engine} did not run: {last}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def summarize(results: dict[str, list[dict[str, float]]], baseline: str = "st-torch") -> list[str]:
    """Median table plus ratios against the baseline engine."""
    lines = [f"{'engine':<10} {'pairs/s':>9} {'cold start s':>13} {'peak MB':>9} {'x speed':>8} {'x memory':>9}"]
    medians = {e: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for e, rs in results.items() if rs}
    base = medians.get(baseline)
    for engine, m in medians.items():
        speed = f"{m['pairs_per_s'] / base['pairs_per_s']:.2f}" if base else "-"
        memory = f"{m['peak_rss_mb'] / base['peak_rss_mb']:.2f}" if base else "-"
        lines.append(f"{engine:<10} {m['pairs_per_s']:>9.1f} {m['cold_start_s']:>13.2f} {m['peak_rss_mb']:>9.0f}"
                     f" {speed:>8} {memory:>9}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and run the benchmark (or one worker)."""
    parser = argparse.ArgumentParser(prog="python -m exporter.bench_cross", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="exported cross-encoder directory (default: the MiniLM reranker)")
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, help="intra-op threads of both engines (default: all cores)")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.model, args.pairs, args.batch_size, args.threads)))
        return 0
    if args.model is None:  # built in a child: peak memory is inherited across exec, keep this process small
        build = "from exporter.reranker_models import minilm_reranker; print(minilm_reranker(1)[1])"
        proc = subprocess.run([sys.executable, "-c", build], capture_output=True, text=True, check=True)
        args.model = proc.stdout.strip().splitlines()[-1]
    engines = [e for e in args.engines.split(",") if e]
    results: dict[str, list[dict[str, float]]] = {e: [] for e in engines}
    print(f"# model {args.model}, {args.pairs} (query, document) pairs (40% long documents), "
          f"batch {args.batch_size}, {args.rounds} rounds, threads {args.threads or 'all'}")
    for round_index in range(args.rounds):
        for engine in engines if round_index % 2 == 0 else engines[::-1]:
            result = run_worker(engine, args)
            if result is not None:
                results[engine].append(result)
                print(f"# round {round_index + 1} {engine}: {json.dumps({k: round(v, 3) for k, v in result.items()})}")
    print("\n".join(summarize(results)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
