"""Where an ONNX file spends its time: ONNX Runtime's per-operator profile of one benchmark workload.

    python -m tools.profile_ops --kind dense --model DIR --file-name onnx/model_qint8_avx512_vnni.onnx

Runs the workload's call (``encode``, ``predict``...) once through onnx-st with ONNX Runtime's profiler on
(``ONNX_ST_ORT_PROFILE``), then prints each operator type's share of kernel time. Profiling adds a
little time to every node, so the rate it prints is below the benchmark's. Not a test.
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tools.bench import machine_line
from tools.bench_workloads import WORKLOADS, load


def operator_times(profile: Path) -> tuple[collections.Counter[str], float]:
    """Kernel microseconds per operator type, and the summed microseconds of the runs, from one profile."""
    events = json.loads(profile.read_text())
    kernels: collections.Counter[str] = collections.Counter()
    runs = 0.0
    for event in events:
        if event.get("cat") == "Node" and str(event.get("name", "")).endswith("_kernel_time"):
            kernels[event["args"]["op_name"]] += event["dur"]
        elif event.get("name") == "model_run":
            runs += event["dur"]
    return kernels, runs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.profile_ops", description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=list(WORKLOADS), default="dense")
    parser.add_argument("--model", help="exported model directory (default: the benchmark's model of the kind)")
    parser.add_argument("--file-name", help="ONNX file (default onnx/model.onnx)")
    parser.add_argument("--texts", type=int, help="inputs (default: the benchmark's)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--top", type=int, default=12, help="operator types printed")
    args = parser.parse_args(argv)
    workload = WORKLOADS[args.kind]
    model_dir = args.model or str(workload.default_model())
    inputs = workload.inputs(args.texts or workload.default_n)
    print(machine_line())
    with tempfile.TemporaryDirectory(prefix="onnx-st-profile-") as tmp:
        os.environ["ONNX_ST_ORT_PROFILE"] = str(Path(tmp) / "ort")
        model = load(workload, "onnx-st", model_dir, None, args.file_name)
        getattr(model, workload.call)(workload.warmup, batch_size=args.batch_size)
        start = time.perf_counter()
        getattr(model, workload.call)(inputs, batch_size=args.batch_size)
        elapsed = time.perf_counter() - start
        del model
        gc.collect()  # the session writes its profile when it ends
        profiles = sorted(Path(tmp).glob("ort*.json"))
        if not profiles:
            print("no profile was written (the model's sessions are still alive?)", file=sys.stderr)
            return 1
        kernels: collections.Counter[str] = collections.Counter()
        runs = 0.0
        for profile in profiles:
            part, part_runs = operator_times(profile)
            kernels.update(part)
            runs += part_runs
    total = sum(kernels.values()) or 1.0
    print(f"# {args.kind}: {model_dir} {args.file_name or 'onnx/model.onnx'}; {len(inputs)} inputs, batch "
          f"{args.batch_size}: {len(inputs) / elapsed:.1f} {workload.unit}/s profiled; runs {runs / 1e6:.2f} s, "
          f"kernels {total / 1e6:.2f} s")
    for name, micros in kernels.most_common(args.top):
        print(f"{name:32s} {micros / 1e6:7.2f} s {100 * micros / total:5.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
