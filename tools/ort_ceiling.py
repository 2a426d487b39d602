"""How fast ONNX Runtime alone goes: the ceiling of a workload, and the kernels it is made of.

    python -m tools.ort_ceiling --kind sentences --files onnx/model.onnx,onnx/model_qint8_avx512_vnni.onnx
    python -m tools.ort_ceiling --kernels

The first form records the feeds of every ONNX run of one ``encode`` (onnx-st's own sorting,
batching and run cutting), then times only those runs, back to back: what the file could reach if
tokenizing, pooling and Python cost nothing. The second times single operators on this CPU: a
float32 MatMul, an int8 ``MatMulIntegerToFloat`` (u8 x s8, the int8 files' product) and
``MultiHeadAttention`` with a key-padding mask on short and long rows. Not a test.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tools.bench import machine_line
from tools.bench_workloads import WORKLOADS


def first_transformer(model: Any) -> Any:
    """The model's first Transformer module, a fused module's part included (SPLADE's ``SpladeMLM``)."""
    from onnx_st.modules.transformer import Transformer

    pending = list(model.modules[:1])
    while pending:
        module = pending.pop(0)
        if isinstance(module, Transformer):
            return module
        pending[:0] = module.submodules()
    raise SystemExit("the model's first module holds no Transformer")


def workload_runs(model: Any, call: Callable[[], object]) -> list[dict[str, np.ndarray]]:
    """The feeds of every ONNX run ``call`` makes through the model's first Transformer, in order."""
    session, runs = first_transformer(model).session, []
    original = session.run

    def record(output: str, feeds: Any) -> np.ndarray:
        runs.append({name: np.ascontiguousarray(feeds[name], dtype=session._input_dtypes[name])  # as onnx-st feeds
                     for name in session.input_names})
        return original(output, feeds)

    session.run = record  # type: ignore[method-assign]
    try:
        call()
    finally:
        del session.run  # the class's method again
    return runs


def _rate(call: Callable[[], object], repeats: int) -> float:
    """Best seconds of ``repeats`` calls (after one warm-up)."""
    call()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def ceiling(kind: str, files: Sequence[str], n: int, batch_size: int, rounds: int) -> None:
    """Print ONNX Runtime's own rate for each file over the workload's runs."""
    import onnx_st

    workload = WORKLOADS[kind]
    model_dir = str(workload.default_model())
    texts = workload.inputs(n)
    print(f"# {kind}: {model_dir}; {workload.describe.format(n=n)}, batch {batch_size}, best of {rounds}")
    for file_name in files:
        model = getattr(onnx_st, workload.class_name)(model_dir, model_kwargs={"file_name": file_name})
        encode = getattr(model, workload.call)
        runs = workload_runs(model, lambda encode=encode: encode(texts, batch_size=batch_size))  # type: ignore[misc]
        session = first_transformer(model).session._session

        def all_runs(session: Any = session, runs: list[dict[str, np.ndarray]] = runs) -> None:
            for feeds in runs:
                session.run(None, feeds)

        seconds = _rate(all_runs, rounds)
        start = time.perf_counter()
        encode(texts, batch_size=batch_size)
        whole = time.perf_counter() - start
        print(f"{file_name:<40} ONNX Runtime alone {n / seconds:8.1f} {workload.unit}/s over {len(runs)} runs; "
              f"whole {workload.call} {n / whole:8.1f}")


def _session(nodes: list[Any], inputs: list[Any], inits: list[Any], threads: int) -> Any:
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph(nodes, "kernel", inputs, [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
                              inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


def kernels(repeats: int = 30) -> None:
    """Print the rate of the operators the dense files spend their time in, at MiniLM's shapes."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    m, k, n = 1024, 384, 1536
    ops = 2 * m * k * n
    for threads in (1, 2):
        matmul = _session([helper.make_node("MatMul", ["A", "B"], ["Y"])],
                          [helper.make_tensor_value_info("A", TensorProto.FLOAT, [None, k])],
                          [numpy_helper.from_array(rng.standard_normal((k, n), dtype=np.float32), "B")], threads)
        a = rng.standard_normal((m, k), dtype=np.float32)
        seconds = _rate(lambda matmul=matmul, a=a: matmul.run(None, {"A": a}), repeats)  # type: ignore[misc]
        print(f"MatMul float32 {m}x{k}x{n}, {threads} thread(s): {ops / seconds / 1e9:7.1f} GFLOP/s")
        inits = [numpy_helper.from_array(rng.integers(-127, 127, (k, n), dtype=np.int8), "B"),
                 numpy_helper.from_array(np.ones(1, np.float32), "a_scale"),
                 numpy_helper.from_array(np.full(n, 0.01, np.float32), "b_scale"),
                 numpy_helper.from_array(np.array([128], np.uint8), "a_zero")]
        integer = _session([helper.make_node("MatMulIntegerToFloat", ["A", "B", "a_scale", "b_scale", "a_zero"], ["Y"],
                                             domain="com.microsoft")],
                           [helper.make_tensor_value_info("A", TensorProto.UINT8, [None, k])], inits, threads)
        quantized = rng.integers(0, 255, (m, k), dtype=np.uint8)
        seconds = _rate(lambda integer=integer, quantized=quantized: integer.run(None, {"A": quantized}),  # type: ignore[misc]
                        repeats)
        print(f"MatMulIntegerToFloat u8 x s8 {m}x{k}x{n}, {threads} thread(s): {ops / seconds / 1e9:7.1f} GOP/s")
    hidden, heads, rows = 384, 12, 32
    attention = _session(
        [helper.make_node("MultiHeadAttention", ["q", "k", "v", "", "mask"], ["Y"], domain="com.microsoft",
                          num_heads=heads)],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["b", "s", hidden]) for name in "qkv"]
        + [helper.make_tensor_value_info("mask", TensorProto.INT32, ["b"])], [], 2)
    for seq in (35, 128, 384):
        q, k_, v = (rng.standard_normal((rows, seq, hidden), dtype=np.float32) for _ in range(3))
        lengths = np.full(rows, seq, np.int32)
        lengths[rows // 2:] = seq * 2 // 3
        feeds = {"q": q, "k": k_, "v": v, "mask": lengths}
        seconds = _rate(lambda feeds=feeds: attention.run(None, feeds), repeats)  # type: ignore[misc]
        flops = 4 * rows * seq * seq * hidden
        print(f"MultiHeadAttention, padding mask, {rows} rows x {seq} tokens, 2 threads: {seconds * 1e3:6.2f} ms, "
              f"{flops / seconds / 1e9:6.1f} GFLOP/s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.ort_ceiling", description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=list(WORKLOADS), default="sentences")
    parser.add_argument("--files", default="onnx/model.onnx", help="comma-separated ONNX files of the default model")
    parser.add_argument("--texts", type=int, help="inputs (default: the benchmark's)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kernels", action="store_true", help="time single operators instead")
    args = parser.parse_args(argv)
    print(machine_line(), flush=True)
    if args.kernels:
        kernels()
        return 0
    files = [f for f in args.files.split(",") if f]
    ceiling(args.kind, files, args.texts or WORKLOADS[args.kind].default_n, args.batch_size, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
