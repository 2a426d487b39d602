"""Cold start, phase by phase, of onnx-st beside sentence-transformers: each start in a fresh process.

    python -m tools.bench_cold --model DIR [--files onnx/model.onnx,onnx/model_fast.onnx]
        [--no-prepack] [--lambda] [--rounds 5] [--threads N]

Engines: ``st-torch`` (sentence-transformers on torch, the baseline); ``onnx-st FILE`` per file of
``--files`` (default ``onnx/model.onnx``); with ``--no-prepack`` each file once more with
``model_kwargs={"prepack": False}``; with ``--lambda`` each file through the Lambda handler (import
of the handler and its web framework, then one function-URL event, which loads the model).
Phases (CPU seconds of the process, which stay meaningful on a busy machine, and wall seconds):
``import`` (numpy, onnxruntime, onnx_st or torch + sentence_transformers), ``load`` (the model,
ONNX Runtime session creation included), ``first`` (the first one-sentence encode). The table
gives medians over rounds; rounds alternate the engines' order.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from tools.bench import machine_line

SENTENCE = "A first sentence, embedded as soon as the process starts."
Phases = dict[str, float]


def _clock() -> tuple[float, float]:
    return time.process_time(), time.perf_counter()


def _phases(steps: Sequence[tuple[str, Callable[[], Any]]]) -> Phases:
    """Run the steps in order; CPU and wall seconds of each."""
    out: Phases = {}
    for name, step in steps:
        cpu, wall = _clock()
        step()
        cpu2, wall2 = _clock()
        out[f"{name}_cpu"], out[f"{name}_wall"] = cpu2 - cpu, wall2 - wall
    out["total_cpu"] = sum(v for k, v in out.items() if k.endswith("_cpu"))
    out["total_wall"] = sum(v for k, v in out.items() if k.endswith("_wall") and k != "total_wall")
    return out


def worker(engine: str, model: str, file_name: str | None, prepack: bool, threads: int | None) -> Phases:
    """Measure one cold start in this fresh process."""
    state: dict[str, Any] = {}
    if engine == "st-torch":
        def load_st() -> None:
            state["model"] = state["st"].SentenceTransformer(model, device="cpu")

        return _phases([("import", lambda: state.update(st=__import__("sentence_transformers"))),
                        ("load", load_st), ("first", lambda: state["model"].encode([SENTENCE]))])
    kwargs: dict[str, Any] = {"file_name": file_name, "prepack": prepack, "intra_op_num_threads": threads}
    kwargs = {k: v for k, v in kwargs.items() if v is not None and v is not True}
    if engine == "lambda":
        os.environ.update({"ONNX_ST_MODEL_DIR": model, "ONNX_ST_FILE_NAME": file_name or "",
                           "ONNX_ST_PREPACK": "1" if prepack else "0", "ONNX_ST_THREADS": str(threads or "")})
        event = {"version": "2.0", "rawPath": "/embed", "rawQueryString": "", "isBase64Encoded": False,
                 "headers": {"content-type": "application/json"}, "body": json.dumps({"inputs": [SENTENCE]}),
                 "requestContext": {"http": {"method": "POST", "path": "/embed"}, "stage": "$default"}}

        def first_event() -> None:
            if state["handler"](event, None)["statusCode"] != 200:
                raise RuntimeError("the handler did not answer 200")

        def import_handler() -> None:
            from onnx_st.serverless.handler import handler

            state["handler"] = handler

        return _phases([("import", import_handler), ("load_and_first", first_event)])

    def import_onnx_st() -> None:
        import numpy  # noqa: F401
        import onnxruntime  # noqa: F401

        import onnx_st

        state["onnx_st"] = onnx_st

    def load() -> None:
        state["model"] = state["onnx_st"].SentenceTransformer(model, model_kwargs=kwargs)

    return _phases([("import", import_onnx_st), ("load", load), ("first", lambda: state["model"].encode([SENTENCE]))])


def _engines(args: argparse.Namespace) -> list[tuple[str, str | None, bool]]:
    files = [f for f in (args.files or "onnx/model.onnx").split(",") if f]
    engines: list[tuple[str, str | None, bool]] = [("st-torch", None, True)]
    for base in ["onnx-st"] + (["lambda"] if args.lambda_handler else []):
        engines += [(base, f, True) for f in files] + ([(base, f, False) for f in files] if args.no_prepack else [])
    return engines


def _label(engine: tuple[str, str | None, bool]) -> str:
    base, file_name, prepack = engine
    return f"{base} {file_name or ''}{'' if prepack else ' prepack=False'}".strip()


def _run(engine: tuple[str, str | None, bool], args: argparse.Namespace) -> Phases | None:
    base, file_name, prepack = engine
    cmd = [sys.executable, "-m", "tools.bench_cold", "--worker", base, "--model", args.model]
    cmd += (["--file-name", file_name] if file_name else []) + ([] if prepack else ["--worker-no-prepack"])
    cmd += ["--threads", str(args.threads)] if args.threads else []
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        print(f"# {_label(engine)} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}", file=sys.stderr)
        return None
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments; run the rounds and print the table (or one worker)."""
    parser = argparse.ArgumentParser(prog="python -m tools.bench_cold", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="exported model directory (with its PyTorch weights)")
    parser.add_argument("--files", help="comma-separated ONNX files, one onnx-st engine each")
    parser.add_argument("--no-prepack", action="store_true", help="also run each file with prepack=False")
    parser.add_argument("--lambda", dest="lambda_handler", action="store_true", help="also run the Lambda handler")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads (default: all cores)")
    parser.add_argument("--worker", choices=("st-torch", "onnx-st", "lambda"), help=argparse.SUPPRESS)
    parser.add_argument("--file-name", help=argparse.SUPPRESS)
    parser.add_argument("--worker-no-prepack", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.model, args.file_name, not args.worker_no_prepack, args.threads)))
        return 0
    print(machine_line(), flush=True)
    engines = _engines(args)
    results: dict[str, list[Phases]] = {_label(e): [] for e in engines}
    for round_index in range(args.rounds):
        for engine in engines if round_index % 2 == 0 else engines[::-1]:
            result = _run(engine, args)
            if result is not None:
                results[_label(engine)].append(result)
    keys = sorted({k for runs in results.values() for run in runs for k in run},
                  key=lambda k: (k.startswith("total"), k.endswith("_wall"), k))
    print(f"# {args.model}: medians of {args.rounds} fresh processes, seconds")
    print(f"{'engine':<44}" + "".join(f"{k:>{len(k) + 2}}" for k in keys))
    for label, runs in results.items():
        cells = [statistics.median([r[k] for r in runs if k in r]) if any(k in r for r in runs) else float("nan")
                 for k in keys]
        print(f"{label:<44}" + "".join(f"{v:>{len(k) + 2}.3f}" for k, v in zip(keys, cells, strict=True)))
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
