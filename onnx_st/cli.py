"""``onnx-st``: encode, compare and inspect models from the command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from onnx_st.errors import InputError, ModelNotFoundError, OnnxSTError
from onnx_st.kinds import KINDS
from onnx_st.options import RuntimeOptions, per_model_options

if TYPE_CHECKING:
    from onnx_st.base.model import BaseModel


def _load(args: argparse.Namespace) -> BaseModel:
    """The model of ``args.model`` with the front class of its kind and the runtime flags."""
    from onnx_st.base import load_by_kind

    return load_by_kind(args.model, args.kind, options=RuntimeOptions.from_args(args), local_files_only=args.offline)


def _cmd_similarity(args: argparse.Namespace) -> int:
    scores = _load(args).similarity_to_source(args.source, args.sentences)
    print(json.dumps([round(float(s), 6) for s in scores]))
    return 0


def _cmd_encode(args: argparse.Namespace) -> int:
    model = _load(args)
    if model.kind.scores_pairs:
        raise InputError(f"{args.model} is a CrossEncoder (reranker scores of text pairs), which does not embed "
                         "texts: use `onnx-st similarity MODEL --source QUERY --sentences DOC ...` for its scores")
    texts = args.texts if args.texts else [line.rstrip("\n") for line in sys.stdin]
    rows = model.encode_json(texts, batch_size=args.batch_size, normalize=args.normalize, precision=args.precision)
    print(json.dumps(rows))
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from onnx_st._runtime.session import list_onnx_files
    from onnx_st._runtime.variants import list_variants
    from onnx_st.kinds import detect_kind

    model = _load(args)
    detection = detect_kind(model.model_dir)
    info: dict[str, Any] = {
        "model_dir": str(model.model_dir),
        "kind": model.kind.name,
        "model_type": model.model_kind,
        "kind_evidence": detection.evidence,
        "modules": [type(m).__name__ for m in model.modules],
        "max_seq_length": model.max_seq_length,
        "prompts": model.prompts,
    }
    info.update(model.describe())
    info["runtime"] = model.options.to_dict()
    info["onnx_files"] = list_onnx_files(Path(model.model_dir))
    info["variants"] = [v.to_dict() for v in list_variants(model.model_dir)]
    print(json.dumps(info, indent=2))
    return 0


def _cmd_variants(args: argparse.Namespace) -> int:
    from onnx_st._runtime.variants import choose_file, list_variants
    from onnx_st.cpu import cpu_header
    from onnx_st.errors import ModelNotFoundError
    from onnx_st.hub import resolve_model_dir

    root = resolve_model_dir(args.model, local_files_only=args.offline)
    variants = list_variants(root)
    choices: dict[str, str] = {}
    chosen: set[tuple[str, str]] = set()
    for folder in sorted({v.module_dir for v in variants}):
        try:
            choice = choose_file(root / folder)
            choices[folder] = choice.summary()
            chosen.add((folder, choice.file_name))
        except ModelNotFoundError as exc:
            choices[folder] = f"auto -> none ({exc})"
    if args.json:
        print(json.dumps([{**v.to_dict(), "auto": (v.module_dir, v.file_name) in chosen} for v in variants], indent=2))
    else:
        print(cpu_header())
        for folder in sorted({v.module_dir for v in variants}):
            print(f"{folder or '.'}:")
            print("\n".join(f"  {v.summary()}" for v in variants if v.module_dir == folder))
            print(f"  {choices[folder]}")
    return 0


def _cmd_providers(args: argparse.Namespace) -> int:
    from onnx_st._runtime.session import available_providers

    print("\n".join(available_providers()))
    return 0


def serve_models(specs: Sequence[str], ids: Sequence[str] | None) -> dict[str, Path]:
    """``NAME=DIR`` or ``DIR`` arguments (ids from ``--model-id`` in order, else the directory name)."""
    ids = list(ids or [])
    models: dict[str, Path] = {}
    for i, spec in enumerate(specs):
        name, sep, directory = spec.partition("=")
        if not sep or Path(spec).is_dir():
            name, directory = (ids[i] if i < len(ids) else Path(spec).name), spec
        path = Path(directory).expanduser()
        if not path.is_dir():
            raise ModelNotFoundError(f"Model directory not found: {directory}")
        if name in models:
            raise InputError(f"model id {name!r} given twice; name them with NAME=DIR or --model-id")
        models[name] = path
    return models


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from onnx_st.server import create_app
    except ImportError as exc:
        print(f"onnx-st serve needs the server extra (pip install 'onnx-st[server]'): {exc}", file=sys.stderr)
        return 2
    from onnx_st.server.registry import load_served_model

    paths = serve_models(args.models, args.model_id)
    runtime = per_model_options(args, list(paths))
    models = {}
    for name, path in paths.items():  # loaded before listening: a directory that is not a model stops here
        try:
            models[name] = load_served_model(path, runtime[name])
        except OnnxSTError as exc:
            raise type(exc)(f"model {name!r} ({path}) cannot be served: {exc}") from exc
    app = create_app(models, token=args.token or os.environ.get("ONNX_ST_TOKEN"),
                     max_batch_tokens=args.max_batch_tokens, max_client_batch_size=args.max_client_batch_size,
                     max_payload_bytes=args.max_payload_bytes, max_wait_ms=args.max_wait_ms,
                     max_queue_tokens=args.max_queue_tokens, auto_truncate=args.auto_truncate,
                     cache_entries=args.cache_entries)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def _cmd_embed(args: argparse.Namespace) -> int:
    from onnx_st.jobs.badrows import describe
    from onnx_st.jobs.runner import run_embed_job
    from onnx_st.jobs.writer import REJECTED

    try:
        result = run_embed_job(
            args.input, args.output, args.model, kind=args.kind, input_format=args.format,
            text_column=args.text_column, id_column=args.id_column, query_column=args.query_column,
            document_column=args.document_column, batch_size=args.batch_size, part_rows=args.part_rows,
            normalize=args.normalize, prompt_name=args.prompt_name, runtime=RuntimeOptions.from_args(args),
            on_bad_row=args.on_bad_row, engine=args.engine, address=args.address,
            actors=args.actors, cpus_per_actor=args.cpus_per_actor, progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"onnx-st: interrupted; finished parts are kept in {args.output}: run the same command again "
              "to resume", file=sys.stderr)
        return 130
    if result.rejected:
        print(f"onnx-st: skipped {describe(result.rejected_sample, total=result.rejected)}; all listed in "
              f"{Path(args.output) / REJECTED}", file=sys.stderr)
    print(json.dumps(result.to_dict()))
    return 0


def _cmd_lambda_package(args: argparse.Namespace) -> int:
    from onnx_st.serverless.package import IMAGE_LIMIT_MIB, ZIP_LIMIT_MIB, build_package, default_platforms

    limit = IMAGE_LIMIT_MIB if args.image else ZIP_LIMIT_MIB
    pip_args = [a for link in args.find_links or () for a in ("--find-links", link)]
    pip_args += ["--no-index"] if args.no_index else []
    report = build_package(Path(args.model), Path(args.output), file_name=args.file_name,
                           python_version=args.python_version,
                           platforms=args.platform or default_platforms(args.python_version, args.arch),
                           limit_mib=limit, fast_load=not args.no_fast_load, pip_args=pip_args,
                           overwrite=args.overwrite)
    print("\n".join(report.lines(limit)))
    if args.zip:
        import shutil

        archive = shutil.make_archive(str(Path(args.zip).with_suffix("")), "zip", args.output)
        print(f"wrote {archive} ({Path(archive).stat().st_size / 2**20:.1f} MiB zipped)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``onnx-st``."""
    parser = argparse.ArgumentParser(prog="onnx-st", description=__doc__)
    debug = {"action": "store_true", "default": argparse.SUPPRESS, "help": "show the traceback of an error"}
    parser.add_argument("--debug", **debug)  # type: ignore[arg-type]
    sub = parser.add_subparsers(dest="command", required=True)

    def model_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("model", help="model directory or Hub repo id")
        p.add_argument("--kind", choices=("auto", *KINDS), default="auto",
                       help="model kind (default: from the model's files)")
        p.add_argument("--offline", action="store_true", help="never contact the Hub")
        RuntimeOptions.add_arguments(p.add_argument_group("runtime options"))

    p = sub.add_parser("similarity", help="cosine scores of sentences against a source sentence (JSON list)")
    model_args(p)
    p.add_argument("--source", required=True, help="the sentence to compare the others with")
    p.add_argument("--sentences", nargs="+", required=True)
    p.set_defaults(func=_cmd_similarity)

    p = sub.add_parser("encode", help="embed texts (arguments or stdin lines) and print JSON")
    model_args(p)
    p.add_argument("texts", nargs="*")
    p.add_argument("--normalize", action="store_true")
    p.add_argument("--precision", default="float32")
    p.add_argument("--batch-size", type=int, default=32)
    p.set_defaults(func=_cmd_encode)

    p = sub.add_parser("info", help="modules, dimensions and ONNX files of a model")
    model_args(p)
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("variants", help="ONNX files of a model with their parity records (onnx/parity.json)")
    p.add_argument("model", help="model directory or Hub repo id")
    p.add_argument("--offline", action="store_true", help="never contact the Hub")
    p.add_argument("--json", action="store_true", help="print JSON instead of one line per file")
    p.set_defaults(func=_cmd_variants)

    p = sub.add_parser("serve", help="HTTP server (TEI, Inference API and OpenAI routes); needs the server extra")
    p.add_argument("models", nargs="+", metavar="MODEL_DIR", help="model directory, or NAME=DIR to set its id")
    p.add_argument("--model-id", action="append", help="id of each MODEL_DIR in order (default: directory name)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--token", help="require Authorization: Bearer TOKEN (default: $ONNX_ST_TOKEN)")
    p.add_argument("--max-batch-tokens", type=int, default=16384, help="token budget of one merged batch")
    p.add_argument("--max-client-batch-size", type=int, default=32, help="inputs one request may carry")
    p.add_argument("--max-payload-bytes", type=int, default=2_000_000, help="request body limit (413 beyond)")
    p.add_argument("--max-wait-ms", type=float, default=2.0, help="how long a batch keeps collecting under load")
    p.add_argument("--max-queue-tokens", type=int, default=262144,
                   help="tokens admitted and unanswered per model beyond which requests get 429 at once")
    p.add_argument("--cache-entries", type=int, default=1024, help="result cache size (0 disables it)")
    p.add_argument("--auto-truncate", action="store_true", help="truncate long inputs unless a request says not")
    p.add_argument("--log-level", default="info")
    RuntimeOptions.add_arguments(p.add_argument_group("runtime options (every model)"))
    p.add_argument("--model-option", action="append", metavar="NAME:KEY=VALUE",
                   help="a runtime option of one model (repeatable), e.g. minilm:file-name=onnx/model_qint8_avx2.onnx")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("embed", help="embed a JSON Lines, CSV or Parquet corpus into Parquet parts (embed extra; "
                                     "resumable; --engine ray needs the ray extra)")
    p.add_argument("input", help="JSON Lines (.jsonl), CSV (.csv) or Parquet (.parquet, or a directory of them)")
    p.add_argument("output", help="output directory of Parquet parts; rerun the same command to resume")
    p.add_argument("--model", required=True, help="model directory (on Ray: the same path on every node)")
    p.add_argument("--kind", choices=("auto", *KINDS), default="auto",
                   help="model kind (default: from the model's files)")
    p.add_argument("--format", choices=("auto", "jsonl", "csv", "parquet"), default="auto",
                   help="input format (default: from the suffix)")
    p.add_argument("--text-column", default="text", help="column of the texts (dense, sparse; default text)")
    p.add_argument("--id-column", help="column of the ids (default: id when present, else the row number)")
    p.add_argument("--query-column", default="query", help="column of the queries (cross; default query)")
    p.add_argument("--document-column", default="document", help="column of the documents (cross; default document)")
    p.add_argument("--batch-size", type=int, default=32, help="texts per ONNX run (default 32)")
    p.add_argument("--part-rows", type=int, default=10_000,
                   help="input rows per output part, the unit of resuming (default 10000)")
    p.add_argument("--normalize", action="store_true", help="L2-normalize dense embeddings")
    p.add_argument("--prompt-name", help="prompt of the model to prepend (e.g. query, document)")
    p.add_argument("--on-bad-row", choices=("skip", "fail"), default="skip",
                   help="rows with a missing or non-string text: report and skip them (default), or stop "
                        "before writing their part")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this process; ray: Ray Data actors (ray extra)")
    RuntimeOptions.add_arguments(p.add_argument_group("runtime options (local engine; Ray actors take "
                                                      "--cpus-per-actor threads)"))
    p.add_argument("--address", help="Ray cluster to use (auto, HOST:PORT, ray://...; default: a new local one)")
    p.add_argument("--actors", type=int, help="Ray actors (default: cluster CPUs / --cpus-per-actor)")
    p.add_argument("--cpus-per-actor", type=float, default=1.0,
                   help="CPUs each Ray actor reserves and uses as ONNX Runtime threads (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--debug", **debug)  # type: ignore[arg-type]
    p.set_defaults(func=_cmd_embed)

    p = sub.add_parser("lambda-package", help="build an AWS Lambda function package folder: runtime dependencies "
                                              "for the function's platform, the handler, the model reduced to what "
                                              "inference reads; prints its unzipped size")
    p.add_argument("model", help="exported model directory")
    p.add_argument("output", help="package folder to write (zip it, or build the Dockerfile written in it)")
    p.add_argument("--file-name", help="the ONNX file the function runs (default onnx/model.onnx)")
    p.add_argument("--python-version", default="3.12", help="Python of the Lambda runtime (default 3.12)")
    p.add_argument("--arch", choices=("x86_64", "arm64"), default="x86_64", help="function architecture")
    p.add_argument("--platform", action="append", help="pip platform tag, repeatable (default: every manylinux tag "
                                                       "of the runtime's glibc and --arch)")
    p.add_argument("--image", action="store_true", help="check the container image limit (10 GiB) instead of "
                                                        "the .zip package limit (250 MiB)")
    p.add_argument("--no-fast-load", action="store_true", help="copy the ONNX file as it is (slower cold start)")
    p.add_argument("--find-links", action="append", help="pip --find-links (a local wheel folder)")
    p.add_argument("--no-index", action="store_true", help="pip --no-index: wheels from --find-links only")
    p.add_argument("--zip", help="also write this .zip of the package")
    p.add_argument("--overwrite", action="store_true", help="replace an existing package folder")
    p.set_defaults(func=_cmd_lambda_package)

    p = sub.add_parser("providers", help="execution providers of this onnxruntime")
    p.set_defaults(func=_cmd_providers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; errors of onnx-st, and the system's (a read-only directory, a full disk), print one line
    and exit with status 2 (``--debug``: the traceback too)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (OnnxSTError, OSError) as exc:
        if getattr(args, "debug", False):
            raise
        message = " ".join(str(exc).split())  # one line, whatever the cause's message holds
        print(f"onnx-st: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
