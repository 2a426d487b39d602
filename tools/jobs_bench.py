"""Benchmark of ``onnx-st embed``: texts/s on one process and on Ray with 1 and 2 actors, and Ray's overhead.

    python -m tools.jobs_bench --model DIR --texts 4000 [--part-rows 250] [--json out.json]

All runs embed the same Parquet input (texts of 4-120 words from ``exporter.corpus`` when importable,
else the lines of ``--texts-file``) into fresh output directories and check that the outputs are
identical. Ray's fixed costs are reported apart: starting a local cluster, and the extra time of a
one-part job on Ray over the same job on one process (actor start, model load, scheduling), for the
first job on the new cluster and for the next one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from onnx_st import RuntimeOptions
from onnx_st.jobs import deps
from onnx_st.jobs.runner import JobResult, run_embed_job


def load_average() -> str:
    """``1/5/15-minute load average`` of the machine, as ``uptime`` prints it."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())


def bench_texts(n: int, texts_file: str | None) -> tuple[list[str], str]:
    """``n`` texts and where they come from."""
    if texts_file:
        lines = [line.strip() for line in Path(texts_file).read_text(encoding="utf-8").splitlines() if line.strip()]
        if not lines:
            raise SystemExit(f"{texts_file} has no text lines")
        return [lines[i % len(lines)] for i in range(n)], texts_file
    try:
        from exporter.corpus import benchmark_sentences
    except ImportError as exc:
        raise SystemExit(f"exporter.corpus is not importable ({exc}); pass --texts-file FILE") from exc
    return benchmark_sentences(n), "exporter.corpus.benchmark_sentences (4-120 words)"


def _row(name: str, result: JobResult, extra: str = "") -> dict[str, Any]:
    seconds = result.seconds
    return {"run": name, "texts": result.rows_encoded, "seconds": round(seconds, 2),
            "texts_per_s": round(result.rows_encoded / seconds, 1) if seconds else 0.0, "note": extra,
            **({"actors": result.engine_info.get("actors")} if result.engine == "ray" else {})}


def _same_output(a: Path, b: Path) -> bool:
    parts = sorted(p.name for p in a.glob("part-*.parquet"))
    return parts == sorted(p.name for p in b.glob("part-*.parquet")) and all(
        (a / name).read_bytes() == (b / name).read_bytes() for name in parts)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print a table (and JSON with ``--json``)."""
    parser = argparse.ArgumentParser(prog="python -m tools.jobs_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="model directory")
    parser.add_argument("--texts", type=int, default=4000)
    parser.add_argument("--texts-file", help="one text per line (default: exporter.corpus)")
    parser.add_argument("--part-rows", type=int, help="rows per part (default: texts / 16)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster (default 2)")
    parser.add_argument("--file-name", help="ONNX file of every run (default onnx/model.onnx)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)

    pa, pq, ray = deps.pyarrow(), deps.parquet(), deps.ray()
    texts, origin = bench_texts(args.texts, args.texts_file)
    part_rows = args.part_rows or max(1, args.texts // 16)
    common: dict[str, Any] = {"batch_size": args.batch_size, "part_rows": part_rows, "progress": False,
                              "runtime": RuntimeOptions(file_name=args.file_name)}
    header = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
              "load_average_start": load_average(), "texts": len(texts), "origin": origin,
              "part_rows": part_rows, "batch_size": args.batch_size, "model": args.model,
              "file_name": args.file_name or "onnx/model.onnx"}
    print(json.dumps(header), flush=True)
    rows: list[dict[str, Any]] = []
    overhead: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="onnx-st-bench-") as tmp:
        work = Path(tmp)
        source = work / "input.parquet"
        pq.write_table(pa.table({"id": list(range(len(texts))), "text": texts}), source)
        tiny = work / "tiny.parquet"
        pq.write_table(pa.table({"id": [0, 1], "text": texts[:2]}), tiny)

        local = run_embed_job(source, work / "local", args.model, **common)
        rows.append(_row("single process", local, "ONNX Runtime default threads"))
        print(json.dumps(rows[-1]), flush=True)
        parallel = run_embed_job(source, work / "parallel", args.model,
                                 **{**common, "runtime": RuntimeOptions(file_name=args.file_name, parallel_runs=2)})
        same = _same_output(work / "parallel", work / "local")
        rows.append(_row("single process, 2 parallel runs", parallel,
                         "output identical to single process" if same else "OUTPUT DIFFERS"))
        print(json.dumps(rows[-1]), flush=True)
        tiny_local = run_embed_job(tiny, work / "tiny-local", args.model, **common)

        started = time.perf_counter()
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
        overhead["ray_cluster_start_s"] = round(time.perf_counter() - started, 2)
        try:
            for when in ("first", "next"):
                tiny_ray = run_embed_job(tiny, work / f"tiny-ray-{when}", args.model, engine="ray", actors=1,
                                         **common)
                overhead[f"ray_{when}_job_overhead_s"] = round(tiny_ray.seconds - tiny_local.seconds, 2)
            for actors in (1, 2):
                out = work / f"ray-{actors}"
                result = run_embed_job(source, out, args.model, engine="ray", actors=actors, cpus_per_actor=1,
                                       **common)
                same = _same_output(out, work / "local")
                rows.append(_row(f"ray, {actors} actor{'s' if actors > 1 else ''} x 1 CPU", result,
                                 "output identical to single process" if same else "OUTPUT DIFFERS"))
                print(json.dumps(rows[-1]), flush=True)
        finally:
            ray.shutdown()
    header["load_average_end"] = load_average()
    print(f"\n{header['machine']}; load average {header['load_average_start']} at start, "
          f"{header['load_average_end']} at end; {len(texts)} texts ({origin}), parts of {part_rows} rows")
    print(f"{'run':<32} {'texts/s':>8} {'seconds':>8}  note")
    for row in rows:
        print(f"{row['run']:<32} {row['texts_per_s']:>8} {row['seconds']:>8}  {row['note']}")
    print(f"Ray fixed costs: cluster start {overhead['ray_cluster_start_s']} s; a one-part job takes "
          f"{overhead['ray_first_job_overhead_s']} s more on Ray than on one process on a new cluster, "
          f"{overhead['ray_next_job_overhead_s']} s on the next job (actor start, model load, scheduling)")
    if args.json:
        Path(args.json).write_text(json.dumps({**header, "runs": rows, "overhead": overhead}, indent=2) + "\n")
    return 0 if all(r["note"] != "OUTPUT DIFFERS" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
