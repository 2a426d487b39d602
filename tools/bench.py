"""Benchmark onnx-st against sentence-transformers on the same model and inputs, in one run.

    python -m tools.bench --kind dense|sentences|long|sparse|cross|multi-vector[-sentences|-long]|all [--model DIR] [--texts N]
        [--batch-size 32]
        [--rounds 3] [--engines onnx-st,ort-alone,st-torch,st-onnx,fastembed] [--threads N] [--file-name onnx/model_xxx.onnx]
        [--max-run-tokens N|none] [--parallel-runs 1,2]
        [--files onnx/model_O2.onnx,onnx/model_qint8_avx2.onnx]

Engines: ``onnx-st``; ``ort-alone`` (ONNX Runtime alone on each onnx-st file: the feeds of one onnx-st
call, tokenized, sorted, padded and cut beforehand, only ``InferenceSession.run`` timed; each onnx-st
row's ``of ORT`` is its share of that rate); ``st-torch`` (sentence-transformers on torch, the baseline
of the ratios); ``st-onnx`` (sentence-transformers' ONNX backend, which needs optimum); ``fastembed``
(fastembed 0.9.1 on the same ONNX file, the ``bench`` extra: dense, sparse and rerankers). ``vs ST``
compares each engine's outputs with sentence-transformers' on the same inputs (min cosine, or the
rank correlation of reranker scores). Every engine gets the same inputs, made once here. Without ``--model`` each
kind uses its default, built once and cached: dense all-MiniLM-L6-v2 (``sentences``: the same model on
single docstring sentences, 34 tokens on average), long all-mpnet-base-v2 on
200-600-token texts, sparse splade-tiny, cross the
MiniLM reranker, multi-vector MiniLM with a seeded 128-d token projection (``encode_document``; also on the
single sentences and on the long texts: ``multi-vector-sentences``, ``multi-vector-long``)
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
import tempfile
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from tools.bench_workloads import ENGINES, FASTEMBED_KINDS, WORKLOADS, Workload, load, outputs_array

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


def ort_alone(workload: Workload, model: str, n: int, batch_size: int, threads: int | None,
              file_name: str | None, max_run_tokens: str | None = None,
              inputs: list[Any] | None = None) -> dict[str, float]:
    """ONNX Runtime alone on the file: the feeds of every run of one onnx-st call, tokenized, sorted, padded
    and cut beforehand exactly as onnx-st does (:func:`tools.ort_ceiling.workload_runs`), then only
    ``InferenceSession.run`` timed over them, back to back, on a second load of the file by onnx-st (the
    same session options and threads; the session that recorded has seen every shape), after a warm-up
    over the first batch's runs, as the onnx-st engine warms up on one batch."""
    import functools

    from tools.ort_ceiling import first_transformer, workload_runs

    recorder = load(workload, "ort-alone", model, threads, file_name, max_run_tokens)
    inputs = inputs if inputs is not None else workload.inputs(n)
    runs = workload_runs(recorder, functools.partial(getattr(recorder, workload.call), inputs,
                                                     batch_size=batch_size))
    del recorder
    transformer = first_transformer(load(workload, "ort-alone", model, threads, file_name, max_run_tokens))
    session, output = transformer.session._session, [transformer.graph_output]
    warm = 0
    for feeds in runs:  # the runs of the first batch, as the other engines warm up on one batch
        session.run(output, feeds)
        warm += len(feeds["input_ids"])
        if warm >= batch_size:
            break
    result = {"per_s": len(inputs) / run_seconds(transformer, runs), "onnx_runs": float(len(runs))}
    if transformer.task == "fill-mask":  # SPLADE: the graph gives (rows, seq, vocab) logits
        result["per_s_pooled"] = len(inputs) / run_seconds(transformer, runs, pool=True)
    return result


def run_seconds(transformer: Any, runs: list[dict[str, Any]], pool: bool = False) -> float:
    """Seconds that ``runs`` take through the Transformer's own ONNX Runtime session, back to back, only
    ``InferenceSession.run`` in between (``pool``: each output then max-pooled by ``splade_pool``, SPLADE's
    one pass over the logits)."""
    from onnx_st.modules.splade import splade_pool

    session, output = transformer.session._session, [transformer.graph_output]
    t0 = time.perf_counter()
    for feeds in runs:
        logits = session.run(output, feeds)[0]
        if pool:
            splade_pool(logits, feeds["attention_mask"])
    return time.perf_counter() - t0


def same_process_share(model: Any, call: Any, inputs: list[Any], batch_size: int, pairs: int = 3) -> float:
    """onnx-st's rate as a share of ONNX Runtime alone on the same runs, within this process: the call and
    then its recorded runs back to back (the ``ort-alone`` way), ``pairs`` times alternating; the median
    of the pairs' ratios. Both sides share the process, its session and the machine's moment, so the
    figure moves less than the ratio of two processes' medians."""
    from tools.ort_ceiling import first_transformer, workload_runs

    runs = workload_runs(model, lambda: call(inputs, batch_size=batch_size))
    transformer = first_transformer(model)
    ratios = []
    for _ in range(pairs):
        t0 = time.perf_counter()
        call(inputs, batch_size=batch_size)
        ours = time.perf_counter() - t0
        ratios.append(run_seconds(transformer, runs) / ours)
    return statistics.median(ratios)


def read_inputs(path: str | None) -> list[Any] | None:
    """The inputs the parent wrote (JSON: pairs come back as tuples), or ``None``."""
    if not path:
        return None
    return [tuple(item) if isinstance(item, list) else item for item in json.loads(Path(path).read_text())]


def worker(workload: Workload, engine: str, mode: str, model: str, n: int, batch_size: int,
           threads: int | None, file_name: str | None, max_run_tokens: str | None = None,
           parallel_runs: int = 1, save: str | None = None, inputs: list[Any] | None = None) -> dict[str, float]:
    """Measure one engine in this (fresh) process: ``throughput`` or the one-batch memory ``probe``.

    ``save``: a ``.npy`` path where the throughput call's outputs go (:func:`outputs_array`), to compare engines.
    ``inputs``: the texts (else the workload's ``n`` first; the corpus reads docstrings of modules whose
    attributes depend on what the process imported, so the parent passes them to every engine).
    """
    if engine == "ort-alone":
        return ort_alone(workload, model, n, batch_size, threads, file_name, max_run_tokens, inputs)
    start = time.perf_counter()
    loaded = load(workload, engine, model, threads, file_name, max_run_tokens, parallel_runs)
    call = getattr(loaded, workload.call)
    call(workload.warmup, batch_size=batch_size)
    result = {"cold_start_s": time.perf_counter() - start}
    if mode == "throughput":
        inputs = inputs if inputs is not None else workload.inputs(n)
        call(inputs[:batch_size], batch_size=batch_size)
        t0 = time.perf_counter()
        outputs = call(inputs, batch_size=batch_size)
        result["per_s"] = len(inputs) / (time.perf_counter() - t0)
        if save:
            import numpy as np

            np.save(save, outputs_array(workload.kind, outputs))
        if engine == "onnx-st":
            result["same_process_share"] = same_process_share(loaded, call, inputs, batch_size)
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
               args: argparse.Namespace, save: str | None = None) -> dict[str, float] | None:
    """One fresh process for one engine and mode; ``None`` when it fails (the reason goes to stderr)."""
    base, file_name = split_engine(engine)
    file_name = file_name or args.file_name
    cmd = ["--worker", base, "--mode", mode, "--kind", workload.kind, "--model", model, "--texts", str(n),
           "--batch-size", str(args.batch_size)] + (["--save", save] if save else [])
    cmd += ["--inputs", args.inputs_file] if getattr(args, "inputs_file", None) else []
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


def parity_column(model: str, engine: str, default_file: str | None = None) -> str:
    """The engine's file's parity record in a few characters: ``2.2e-07`` (fp32) or ``cos .995/.988`` (int8).

    ``default_file`` is the file of a plain ``onnx-st`` engine (``--file-name``; ``onnx/model.onnx``)."""
    base, file_name = split_engine(engine)
    if base != "onnx-st":
        return ""
    from onnx_st import list_variants

    wanted = file_name or default_file or "onnx/model.onnx"
    record = next((v.parity for v in list_variants(model) if v.file_name == wanted and v.parity), None)
    if not record:
        return "no record"
    if record.get("thresholds", {}).get("max_abs_diff", 1) <= 1e-5:
        return f"max {record['max_abs_diff']:.1e}"
    if record.get("mean_cosine") is None:
        return f"corr {record.get('score_correlation', float('nan')):.4f}"
    return f"cos {record['mean_cosine']:.4f}/{record['min_cosine']:.4f}"


def with_ort_alone(engines: list[str]) -> list[str]:
    """``ort-alone`` replaced by one ``ort-alone`` engine per ``onnx-st`` file, each right after that file's rows."""
    if "ort-alone" not in engines:
        return engines
    out: list[str] = []
    for engine in [e for e in engines if e != "ort-alone"]:
        out.append(engine)
        base, file_name = split_engine(engine)
        later = [split_engine(e) for e in engines[engines.index(engine) + 1:]]
        if base == "onnx-st" and ("onnx-st", file_name) not in later:
            out.append("ort-alone" + (f":{file_name}" if file_name else ""))
    return out


def agreement_column(kind: str, path: str, baseline: str | None) -> str:
    """How an engine's outputs compare with sentence-transformers' on the same inputs: the smallest cosine of
    two rows (dense, sparse; token vectors for multi-vector), or the rank correlation of reranker scores."""
    import numpy as np

    if baseline is None or not Path(path).is_file() or not Path(baseline).is_file():
        return ""
    ours, theirs = np.load(path).astype(np.float64), np.load(baseline).astype(np.float64)
    if ours.shape != theirs.shape:
        return f"shape {ours.shape[0]}x{ours.shape[-1]}"
    if kind == "cross":
        ranks = [np.argsort(np.argsort(a.ravel())) for a in (ours, theirs)]
        return f"rank corr {np.corrcoef(ranks[0], ranks[1])[0, 1]:.4f}"
    norms = np.linalg.norm(ours, axis=-1) * np.linalg.norm(theirs, axis=-1)
    cosine = np.einsum("ij,ij->i", ours, theirs) / np.where(norms == 0, 1, norms)
    return f"min cos {cosine.min():.4f}"


def summarize(workload: Workload, results: Results, skipped: dict[str, str], model: str = "",
              agreement: dict[str, str] | None = None, file_name: str | None = None) -> list[str]:
    """Median table plus ratios to the ``st-torch`` baseline (``-`` without a baseline).

    ``of ORT`` is an ``onnx-st`` row's rate as a share of ONNX Runtime alone on the same file (the
    ``ort-alone`` rows; ratio of the medians); for SPLADE, in brackets, its share of ONNX Runtime followed
    by SPLADE's max pooling (``splade_pool``), the one pass over the logits every runtime of the model makes.
    ``same proc`` is the same share measured inside the onnx-st process (:func:`same_process_share`).
    ``vs ST`` compares the engine's outputs with sentence-transformers' (:func:`agreement_column`, first round).
    ``parity`` is the file's record against sentence-transformers: largest difference for float32 files, mean/min cosine (or score
    correlation) for int8 ones.
    """
    agreement = agreement or {}
    probe = workload.probe_label
    head = (f"{'engine':<27} {workload.unit + '/s':>9} {'cold start s':>13} {'peak RSS MiB':>13} {'x speed':>8} "
            f"{'x memory':>9} {'of ORT':>12} {'same proc':>9} {'vs ST':>16} {'parity':>20}")
    if workload.probe:
        head += f" {probe + ' batch +MiB':>18} {probe + ' peak RSS MiB':>20} {'x batch memory':>15}"
    lines = [head]
    base = results.get(BASELINE, {})

    def ratio(engine: str, mode: str, key: str, digits: int = 2) -> str:
        ours, theirs = _median(results[engine][mode], key), _median(base.get(mode, []), key)
        return f"{ours / theirs:.{digits}f}" if theirs and math.isfinite(ours) and math.isfinite(theirs) else "-"

    def of_ort(engine: str) -> str:
        base, file_name = split_engine(engine)
        alone = results.get("ort-alone" + (f":{file_name}" if file_name else ""), {}).get("throughput", [])
        ours, theirs = _median(results[engine]["throughput"], "per_s"), _median(alone, "per_s")
        if base != "onnx-st" or not math.isfinite(ours) or not math.isfinite(theirs):
            return ""
        pooled = _median(alone, "per_s_pooled")
        return f"{100 * ours / theirs:.0f}%" + (f" ({100 * ours / pooled:.0f}%)" if math.isfinite(pooled) else "")

    def same_proc(engine: str) -> str:
        share = _median(results[engine]["throughput"], "same_process_share")
        return f"{100 * share:.0f}%" if math.isfinite(share) else ""

    def cell(value: float, spec: str, width: int) -> str:
        return f"{value:>{width}{spec}}" if math.isfinite(value) else " " * width

    for engine, modes in results.items():
        label = engine_label(engine)
        if not modes["throughput"] and not modes.get("probe"):
            lines.append(f"{label:<27} not run: {skipped.get(engine, 'every run failed (see above)')}")
            continue
        alone = split_engine(engine)[0] == "ort-alone"
        line = (f"{label:<27} {_median(modes['throughput'], 'per_s'):>9.1f} "
                f"{cell(_median(modes['throughput'], 'cold_start_s'), '.2f', 13)} "
                f"{cell(_median(modes['throughput'], 'peak_rss_mib'), '.0f', 13)} "
                f"{ratio(engine, 'throughput', 'per_s') if not alone else '':>8} "
                f"{ratio(engine, 'throughput', 'peak_rss_mib') if not alone else '':>9} "
                f"{of_ort(engine):>12} {same_proc(engine):>9} {agreement.get(engine, ''):>16} "
                f"{parity_column(model, engine, file_name) if model and not alone else '':>20}")
        if workload.probe and not alone:
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
    engines = with_ort_alone(engines)
    skipped = {}
    if "st-onnx" in engines and importlib.util.find_spec("optimum") is None:
        skipped["st-onnx"] = "optimum is not installed (pip install 'optimum[onnxruntime]')"
        print(f"# st-onnx not runnable: {skipped['st-onnx']}", file=sys.stderr)
    for engine in [e for e in engines if split_engine(e)[0] == "fastembed"]:
        if workload.kind not in FASTEMBED_KINDS:
            skipped[engine] = f"fastembed 0.9.1 runs no {workload.kind} models"
        elif importlib.util.find_spec("fastembed") is None:
            skipped[engine] = "fastembed is not installed (pip install -e '.[bench]')"
    modes = ["throughput"] + (["probe"] if workload.probe else [])
    results: Results = {e: {m: [] for m in modes} for e in engines}
    print(f"# {workload.kind}: model {model}; {workload.describe.format(n=n)}, batch {args.batch_size}, "
          f"{args.rounds} rounds, threads {args.threads or 'all'}"
          + (f", onnx-st runs of at most {args.max_run_tokens} tokens" if args.max_run_tokens else "")
          + (f", onnx-st parallel runs {args.parallel_runs}" if str(args.parallel_runs) != "1" else ""), flush=True)
    runnable = [e for e in engines if e not in skipped]
    with tempfile.TemporaryDirectory(prefix="onnx-st-bench-") as tmp:
        args.inputs_file = str(Path(tmp) / "inputs.json")
        Path(args.inputs_file).write_text(json.dumps(workload.inputs(n)))
        saved = {e: str(Path(tmp) / f"{i}.npy") for i, e in enumerate(runnable) if split_engine(e)[0] != "ort-alone"}
        for round_index in range(args.rounds):
            order = runnable if round_index % 2 == 0 else runnable[::-1]
            for mode in modes:
                for engine in order:
                    if mode == "probe" and split_engine(engine)[0] == "ort-alone":
                        continue
                    save = saved.get(engine) if round_index == 0 and mode == "throughput" else None
                    result = run_worker(workload, engine, mode, model, n, args, save)
                    if result is not None:
                        results[engine][mode].append(result)
                        shown = {k: round(v, 3) for k, v in result.items()}
                        print(f"# round {round_index + 1} {engine_label(engine)} {mode}: {json.dumps(shown)}",
                              flush=True)
        agreement = {e: agreement_column(workload.kind, path, saved.get(BASELINE)) for e, path in saved.items()
                     if e != BASELINE}
    print("\n".join(summarize(workload, results, skipped, model, agreement, args.file_name)), flush=True)
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
    parser.add_argument("--save", help=argparse.SUPPRESS)
    parser.add_argument("--inputs", help=argparse.SUPPRESS)
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
                                    int(args.parallel_runs), args.save, read_inputs(args.inputs))))
        return 0
    print(machine_line(), flush=True)
    kinds = list(WORKLOADS) if args.kind == "all" else [args.kind]
    ok = [bench(WORKLOADS[kind], args) for kind in kinds]
    return 0 if all(ok) else 1


if __name__ == "__main__":
    raise SystemExit(main())
