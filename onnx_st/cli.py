"""``onnx-st``: encode, compare and inspect models from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import OnnxSTError


def _load(args: argparse.Namespace):  # -> SentenceTransformer
    from .dense import SentenceTransformer

    kwargs = {"provider": args.provider, "file_name": args.file_name}
    return SentenceTransformer(args.model, model_kwargs={k: v for k, v in kwargs.items() if v},
                               local_files_only=args.offline)


def _cmd_similarity(args: argparse.Namespace) -> int:
    model = _load(args)
    source = model.encode([args.source])
    others = model.encode(args.sentences)
    scores = model.similarity(source, others)[0]
    print(json.dumps([round(float(s), 6) for s in scores]))
    return 0


def _cmd_encode(args: argparse.Namespace) -> int:
    model = _load(args)
    texts = args.texts if args.texts else [line.rstrip("\n") for line in sys.stdin]
    embeddings = model.encode(texts, normalize_embeddings=args.normalize, precision=args.precision,
                              batch_size=args.batch_size)
    print(json.dumps(embeddings.tolist()))
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from .session import list_onnx_files

    model = _load(args)
    info = {
        "model_dir": str(model.model_dir),
        "modules": [type(m).__name__ for m in model.modules],
        "embedding_dimension": model.get_embedding_dimension(),
        "max_seq_length": model.max_seq_length,
        "similarity_fn_name": model.similarity_fn_name,
        "prompts": model.prompts,
        "onnx_files": list_onnx_files(Path(model.model_dir)),
    }
    print(json.dumps(info, indent=2))
    return 0


def _cmd_providers(args: argparse.Namespace) -> int:
    from .session import available_providers

    print("\n".join(available_providers()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``onnx-st``."""
    parser = argparse.ArgumentParser(prog="onnx-st", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def model_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("model", help="model directory or Hub repo id")
        p.add_argument("--provider", help="ONNX Runtime execution provider (default CPUExecutionProvider)")
        p.add_argument("--file-name", help="ONNX file inside the model directory (default onnx/model.onnx)")
        p.add_argument("--offline", action="store_true", help="never contact the Hub")

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

    p = sub.add_parser("providers", help="execution providers of this onnxruntime")
    p.set_defaults(func=_cmd_providers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; errors of onnx-st print one line and exit with status 2."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except OnnxSTError as exc:
        print(f"onnx-st: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
