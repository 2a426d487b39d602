"""Benchmark onnx-st against sentence-transformers on the same model and inputs, in one run.

    python -m tools.bench --kind dense|sentences|long|sparse|cross|multi-vector|all [--model DIR] [--texts N] [--batch-size 32]
        [--rounds 3] [--engines onnx-st,st-torch,st-onnx] [--threads N] [--file-name onnx/model_xxx.onnx]
        [--max-run-tokens N|none] [--parallel-runs 1,2]
        [--files onnx/model_O2.onnx,onnx/model_qint8_avx2.onnx]

Engines: ``onnx-st``; ``st-torch`` (sentence-transformers on torch, the baseline of the ratios);
``st-onnx`` (sentence-transformers' ONNX backend, which needs optimum). Without ``--model`` each
kind uses its default, built once and cached: dense all-MiniLM-L6-v2 (``sentences``: the same model on
single docstring sentences, 34 tokens on average), long all-mpnet-base-v2 on
200-600-token texts, sparse splade-tiny, cross the
MiniLM reranker, multi-vector MiniLM with a seeded 128-d token projection (``encode_document``)
(:mod:`tools.bench_workloads`); ``--kind all`` runs them all on their defaults.
``--parallel-runs 1,2`` runs every ``onnx-st`` engine once per value of ``parallel_runs`` (batches
of one call in flight at once, each on ``cores / N`` threads), labelled ``@N`` above 1.
``--files`` adds one ``onnx-st`` engine per named ONNX file (variants of :mod:`exporter.variants`);
files missing from a default model are built into it first (with parity records on 2,000 texts),
and the table shows each file's parity record next to its speed.

Each round starts one fresh process per engine, in alternating order. Each reports its cold start
(import, load, first call), its throughput over all inputs after one warm-up batch, and its peak
resident memory. Sparse and multi-vector add a second process per engine and round: the peak memory that one
``encode`` of 32 documents of 256 tokens adds above the loaded model (``/proc/self/clear_refs``
resets the high-water mark). The table gives medians over rounds and ratios to ``st-torch``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from tools.bench_workloads import ENGINES, WORKLOADS, Workload, load

BASELINE = "st-torch"
Results = dict[str, dict[str, list[dict[str, float]]]]  # engine -> mode -> one dict per round


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


def worker(workload: Workload, engine: str, mode: str, model: str, n: int, batch_size: int,
           threads: int | None, file_name: str | None, max_run_tokens: str | None = None,
           parallel_runs: int = 1) -> dict[str, float]:
    """Measure one engine in this (fresh) process: ``throughput`` or the one-batch memory ``probe``."""
    start = time.perf_counter()
    call = getattr(load(workload, engine, model, threads, file_name, max_run_tokens, parallel_runs), workload.call)
    call(workload.warmup, batch_size=batch_size)
    result = {"cold_start_s": time.perf_counter() - start}
    if mode == "throughput":
        inputs = workload.inputs(n)
        call(inputs[:batch_size], batch_size=batch_size)
        t0 = time.perf_counter()
        call(inputs, batch_size=batch_size)
        result["per_s"] = len(inputs) / (time.perf_counter() - t0)
    else:
        assert workload.probe is not None
        batch = workload.probe(Path(model))
        if not _reset_peak():
            raise RuntimeError("cannot reset the memory high-water mark on this system")
        before = _status_kib("VmRSS")
        call(batch, batch_size=len(batch))
        result["batch_added_mib"] = (_status_kib("VmHWM") - before) / 1024
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def _child(args: list[str], workload: Workload) -> subprocess.CompletedProcess[str]:
    """``python -m tools.bench ARGS`` in a fresh process (this one stays small: peak RSS survives exec)."""
    env = {**os.environ, **workload.env}
    return subprocess.run([sys.executable, "-m", "tools.bench", *args], capture_output=True, text=True,
                          check=False, env=env)


def _last_line(text: str, default: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else default


def split_engine(engine: str) -> tuple[str, str | None]:
    """``"onnx-st:onnx/model_O2.onnx@2"`` -> ``("onnx-st", "onnx/model_O2.onnx")``; plain names have no file."""
    base, _, file_name = engine.split("@")[0].partition(":")
    return base, file_name or None


def engine_runs(engine: str) -> int:
    """The ``parallel_runs`` of an engine: the number after ``@``, else 1."""
    _, at, runs = engine.partition("@")
    return int(runs) if at else 1


def engine_label(engine: str) -> str:
    """Short table name: ``onnx-st O2`` for ``onnx-st:onnx/model_O2.onnx``."""
    base, file_name = split_engine(engine)
    runs = f" @{engine_runs(engine)}" if engine_runs(engine) > 1 else ""
    if not file_name:
        return base + runs
    stem = Path(file_name).stem
    return f"{base} {stem.removeprefix('model_') if stem != 'model' else 'fp32'}{runs}"


def run_worker(workload: Workload, engine: str, mode: str, model: str, n: int,
               args: argparse.Namespace) -> dict[str, float] | None:
    """One fresh process for one engine and mode; ``None`` when it fails (the reason goes to stderr)."""
    base, file_name = split_engine(engine)
    file_name = file_name or args.file_name
    cmd = ["--worker", base, "--mode", mode, "--kind", workload.kind, "--model", model, "--texts", str(n),
           "--batch-size", str(args.batch_size)]
    cmd += (["--threads", str(args.threads)] if args.threads else []) + (
        ["--file-name", file_name] if file_name else [])
    cmd += ["--max-run-tokens", args.max_run_tokens] if args.max_run_tokens else []
    cmd += ["--parallel-runs", str(engine_runs(engine))] if engine_runs(engine) > 1 else []
    proc = _child(cmd, workload)
    if proc.returncode != 0:
        print(f"# {engine} {mode} did not run: {_last_line(proc.stderr, str(proc.returncode))}", file=sys.stderr)
        return None
    return dict(json.loads(_last_line(proc.stdout, "{}")))


def default_model(workload: Workload, files: Sequence[str] = ()) -> str:
    """The workload's default model, built (once, cached) in a child process, with the ``files`` variants."""
    proc = _child(["--prepare", "--kind", workload.kind, *(["--files", ",".join(files)] if files else [])], workload)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"could not build the default {workload.kind} model")
    return _last_line(proc.stdout, "")


def machine_line() -> str:
    """CPU model, core count, instruction sets (AVX2, AVX-512, VNNI, AMX) and library versions.

    Read without importing the libraries (:mod:`onnx_st.cpu` reads ``/proc/cpuinfo`` only).
    """
    from onnx_st.cpu import cpu_model, int8_families, watched_flags

    cpu = f"{cpu_model()}; instruction sets: {', '.join(watched_flags()) or 'none of AVX2/AVX-512/VNNI/AMX'}; " \
          f"int8 families: {', '.join(int8_families()) or 'none'}; load average {os.getloadavg()[0]:.1f}"
    versions = []
    for package in ("onnxruntime", "torch", "sentence-transformers", "optimum"):
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package} absent")
    return f"# machine: {cpu}, {os.cpu_count()} cores; " + ", ".join(versions)


def _median(runs: list[dict[str, float]], key: str) -> float:
    values = [r[key] for r in runs if key in r]
    return statistics.median(values) if values else float("nan")


def parity_column(model: str, engine: str) -> str:
    """The engine's file's parity record in a few characters: ``2.2e-07`` (fp32) or ``cos .995/.988`` (int8)."""
    base, file_name = split_engine(engine)
    if base != "onnx-st":
        return ""
    from onnx_st import list_variants

    wanted = file_name or "onnx/model.onnx"
    record = next((v.parity for v in list_variants(model) if v.file_name == wanted and v.parity), None)
    if not record:
        return "no record"
    if record.get("thresholds", {}).get("max_abs_diff", 1) <= 1e-5:
        return f"max {record['max_abs_diff']:.1e}"
    if record.get("mean_cosine") is None:
        return f"corr {record.get('score_correlation', float('nan')):.4f}"
    return f"cos {record['mean_cosine']:.4f}/{record['min_cosine']:.4f}"


def summarize(workload: Workload, results: Results, skipped: dict[str, str], model: str = "") -> list[str]:
    """Median table plus ratios to the ``st-torch`` baseline (``-`` without a baseline).

    ``parity`` is the file's record against sentence-transformers: largest difference for float32
    files, mean/min cosine (or score correlation) for int8 ones.
    """
    probe = workload.probe_label
    head = (f"{'engine':<19} {workload.unit + '/s':>9} {'cold start s':>13} {'peak RSS MiB':>13} {'x speed':>8} "
            f"{'x memory':>9} {'parity':>20}")
    if workload.probe:
        head += f" {probe + ' batch +MiB':>18} {probe + ' peak RSS MiB':>20} {'x batch memory':>15}"
    lines = [head]
    base = results.get(BASELINE, {})

    def ratio(engine: str, mode: str, key: str, digits: int = 2) -> str:
        ours, theirs = _median(results[engine][mode], key), _median(base.get(mode, []), key)
        return f"{ours / theirs:.{digits}f}" if theirs and math.isfinite(ours) and math.isfinite(theirs) else "-"

    for engine, modes in results.items():
        label = engine_label(engine)
        if not modes["throughput"] and not modes.get("probe"):
            lines.append(f"{label:<19} not run: {skipped.get(engine, 'every run failed (see above)')}")
            continue
        line = (f"{label:<19} {_median(modes['throughput'], 'per_s'):>9.1f} "
                f"{_median(modes['throughput'], 'cold_start_s'):>13.2f} "
                f"{_median(modes['throughput'], 'peak_rss_mib'):>13.0f} "
                f"{ratio(engine, 'throughput', 'per_s'):>8} {ratio(engine, 'throughput', 'peak_rss_mib'):>9} "
                f"{parity_column(model, engine) if model else '':>20}")
        if workload.probe:
            line += (f" {_median(modes['probe'], 'batch_added_mib'):>18.0f} "
                     f"{_median(modes['probe'], 'peak_rss_mib'):>20.0f} "
                     f"{ratio(engine, 'probe', 'batch_added_mib', 3):>15}")
        lines.append(line)
    return lines


def bench(workload: Workload, args: argparse.Namespace) -> bool:
    """Run every round of one kind and print its table; ``False`` when a runnable engine never ran."""
    files = [f for f in (args.files or "").split(",") if f]
    model = args.model or default_model(workload, files)
    n = args.texts or workload.default_n
    engines = [e for e in args.engines.split(",") if e] if args.engines else list(workload.engines)
    if files:
        missing = [f for f in files if not any(Path(model).rglob(Path(f).name))]
        if missing:
            raise SystemExit(f"{model} has no {missing}: build them with onnx-st-export --variants-only")
        at = engines.index("onnx-st") + 1 if "onnx-st" in engines else 0
        engines[at:at] = [f"onnx-st:{f}" for f in files]
    runs = sorted({int(r) for r in str(args.parallel_runs).split(",") if r})
    if runs != [1]:
        engines = [f"{e}@{r}" if r > 1 else e for e in engines for r in (runs if e.startswith("onnx-st") else [1])]
    skipped = {}
    if "st-onnx" in engines and importlib.util.find_spec("optimum") is None:
        skipped["st-onnx"] = "optimum is not installed (pip install 'optimum[onnxruntime]')"
        print(f"# st-onnx not runnable: {skipped['st-onnx']}", file=sys.stderr)
    modes = ["throughput"] + (["probe"] if workload.probe else [])
    results: Results = {e: {m: [] for m in modes} for e in engines}
    print(f"# {workload.kind}: model {model}; {workload.describe.format(n=n)}, batch {args.batch_size}, "
          f"{args.rounds} rounds, threads {args.threads or 'all'}"
          + (f", onnx-st runs of at most {args.max_run_tokens} tokens" if args.max_run_tokens else "")
          + (f", onnx-st parallel runs {args.parallel_runs}" if str(args.parallel_runs) != "1" else ""), flush=True)
    runnable = [e for e in engines if e not in skipped]
    for round_index in range(args.rounds):
        order = runnable if round_index % 2 == 0 else runnable[::-1]
        for mode in modes:
            for engine in order:
                result = run_worker(workload, engine, mode, model, n, args)
                if result is not None:
                    results[engine][mode].append(result)
                    shown = {k: round(v, 3) for k, v in result.items()}
                    print(f"# round {round_index + 1} {engine_label(engine)} {mode}: {json.dumps(shown)}", flush=True)
    print("\n".join(summarize(workload, results, skipped, model)), flush=True)
    return all(results[e]["throughput"] for e in runnable)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and run the benchmark (or one worker, or the build of a default model)."""
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", choices=[*WORKLOADS, "all"], default="dense")
    parser.add_argument("--model", help="exported model directory, the same for every engine (default: per kind)")
    parser.add_argument("--texts", "--pairs", dest="texts", type=int,
                        help="inputs per throughput run (default: dense 2000, sparse 512, cross 1000 pairs)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engines", help=f"comma-separated, of {','.join(ENGINES)} (default: all the kind runs)")
    parser.add_argument("--threads", type=int, help="intra-op threads of every engine (default: all cores)")
    parser.add_argument("--file-name", help="ONNX file for onnx-st and st-onnx (default onnx/model.onnx)")
    parser.add_argument("--max-run-tokens", help="onnx-st's max_batch_tokens: rows x tokens of one ONNX run, "
                        "or none (default: the library's)")
    parser.add_argument("--parallel-runs", default="1", help="comma-separated parallel_runs values: every onnx-st "
                        "engine runs once per value (default 1)")
    parser.add_argument("--files", help="comma-separated ONNX files, each run as one more onnx-st engine "
                        "(e.g. onnx/model_O2.onnx,onnx/model_qint8_avx2.onnx); built into a default model if missing")
    parser.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("throughput", "probe"), default="throughput", help=argparse.SUPPRESS)
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = set((args.engines or "").split(",")) - set(ENGINES) - {""}
    if unknown:
        parser.error(f"unknown engines {sorted(unknown)}; known: {', '.join(ENGINES)}")
    if args.kind == "all" and (args.model or args.file_name):
        parser.error("--kind all runs each kind on its default model: drop --model and --file-name")
    if args.worker or args.prepare:
        if args.kind == "all" or (args.worker and not args.model):
            parser.error("--worker and --prepare take one kind (and --worker a --model)")
        workload = WORKLOADS[args.kind]
        if args.prepare:
            path = workload.default_model()
            if args.files:
                from tools.bench_workloads import ensure_variants

                ensure_variants(path, [f for f in args.files.split(",") if f])
            print(path)
        else:
            print(json.dumps(worker(workload, args.worker, args.mode, args.model, args.texts, args.batch_size,
                                    args.threads, args.file_name, args.max_run_tokens,
                                    int(args.parallel_runs))))
        return 0
    print(machine_line(), flush=True)
    kinds = list(WORKLOADS) if args.kind == "all" else [args.kind]
    ok = [bench(WORKLOADS[kind], args) for kind in kinds]
    return 0 if all(ok) else 1


if __name__ == "__main__":
    raise SystemExit(main())
