"""Every fenced code block of README.md and docs/*.md runs.

A block's info string is its language (``python``, ``bash`` or ``text``) and, after it, at most one mark:

- ``setup``: installation and set-up commands (``pip install``, the README's two set-up commands). CI's
  ``.ci/run`` runs those itself; here they are not run, and the README's two set-up commands are checked
  byte for byte against the ones CI depends on.
- ``export``: needs the ``export`` extra (torch); skipped where torch is not installed.
- ``serve``: the command that starts the server ``server`` blocks talk to; the test starts it once.
- ``server``: runs against that server.
- ``bench``: a benchmark, run with tiny parameters (below).
- ``cluster``: Ray's multi-node commands, run as two nodes on 127.0.0.1.

``text`` blocks are output or usage synopses, never run. Every other block runs: Python blocks as a script,
bash blocks with ``bash -euo pipefail``, each in a fresh folder holding the model directories and corpora the
docs name, made from the committed fixtures (:data:`MODELS`, :data:`CORPORA`). ``tools`` is importable there
(``PYTHONPATH`` is the checkout), as in a checkout.

Substitutions, so that the whole file runs in a few minutes on fixtures (:func:`_substitute`):

- port 8080 becomes a free port on 127.0.0.1;
- ``"$(python -m tools.pypi_models minilm)"`` / ``splade-tiny`` (real models from PyPI wheels) become the
  fixtures ``dense-mean`` / ``sparse-max-relu``;
- benchmarks: ``--texts`` 8, ``--rounds`` 1, ``--repeats`` 1, the onnx-st engine only (``--engines onnx-st``,
  ``--skip-torch``; ``tools.bench_cold`` always measures sentence-transformers too and so needs torch),
  ``--files`` and ``--file-name`` dropped (the fixtures have only ``onnx/model.onnx``), ``--model`` the fixture of the workload's
  kind, and a server benchmark of a fraction of a second per cell;
- the variants example writes ``O2`` and ``avx2`` only (each variant is checked on 500 texts);
- ``onnx-st lambda-package`` gets the wheels of tests/test_lambda_package.py (``--find-links``,
  ``--no-index``, this Python's version) instead of PyPI;
- the Ray cluster block: a head on a free port with one CPU and its own temp folder, a worker joining
  ``127.0.0.1``, the model path and ``--address`` of that cluster, one CPU per actor.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import pytest

from .conftest import FIXTURES, ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LANGUAGES = {"python", "bash", "text"}
MARKS = {"", "setup", "export", "serve", "server", "bench", "cluster"}

# The README's set-up commands, byte for byte: CI (.ci/run) runs the second one's steps.
SETUP_COMMANDS = [
    'python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 && pip install -e ".[export]" && '
    'onnx-st-export "$(python -m tools.pypi_models minilm)" all-minilm-l6-v2-onnx && onnx-st similarity '
    'all-minilm-l6-v2-onnx --source "That is a happy person" --sentences "That is a happy dog" '
    '"That is a very happy person" "Today is a sunny day"',
    'python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 && pip install -e ".[export,test]" '
    '&& python -m pytest',
]

# Model directory names the docs use -> (fixture, whether to leave its ONNX files out).
MODELS = {
    "all-minilm-l6-v2-onnx": ("dense-mean", False),
    "minilm-onnx": ("dense-mean", False),
    "all-minilm-l6-v2": ("dense-mean", True),   # a sentence-transformers save without ONNX files
    "splade-onnx": ("sparse-max-relu", False),
    "reranker-onnx": ("cross-1label", False),
    "colbert-onnx": ("multi-vector-basic", False),
}
HUB_REPOS = {"sentence-transformers/all-MiniLM-L6-v2": "dense-mean"}
BENCH_MODELS = {"dense": "all-minilm-l6-v2-onnx", "sentences": "all-minilm-l6-v2-onnx",
                "long": "all-minilm-l6-v2-onnx", "sparse": "splade-onnx", "cross": "reranker-onnx",
                "multi-vector": "colbert-onnx", "multi-vector-sentences": "colbert-onnx",
                "multi-vector-long": "colbert-onnx"}
TEXTS = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium.", "",
         "Paris is the capital of France.", "Berlin is in Germany."]
CORPORA = ("corpus.jsonl", "corpus.parquet", "corpus/", "pairs.csv")
HAS_TORCH = find_spec("torch") is not None


@dataclass(frozen=True)
class Block:
    """One fenced code block of a documentation page."""

    path: Path
    line: int
    language: str
    mark: str
    code: str

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.language != "text" and self.mark != "setup"


def _blocks(path: Path) -> list[Block]:
    blocks, lines = [], path.read_text().splitlines()
    i = 0
    while i < len(lines):
        opening = re.match(r"^```(\S*)\s*(.*)$", lines[i])
        if opening is None:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        blocks.append(Block(path, i + 1, opening[1], opening[2].strip(), "\n".join(lines[i + 1:end]) + "\n"))
        i = end + 1
    return blocks


BLOCKS = [b for path in DOCS for b in _blocks(path)]
RUNNABLE = [b for b in BLOCKS if b.runs and b.mark != "serve"]
RAN: set[str] = set()


def test_blocks_are_well_formed() -> None:
    assert len(DOCS) >= 5 and len(RUNNABLE) >= 30
    for block in BLOCKS:
        assert block.language in LANGUAGES, f"{block.id}: a block needs a language among {sorted(LANGUAGES)}"
        assert block.mark in MARKS, f"{block.id}: unknown mark {block.mark!r}"
        if block.mark == "setup":
            assert block.language == "bash" and all(
                line.startswith(("pip install", "python3 -m venv")) for line in block.code.splitlines()), block.id
    assert len(ROOT.joinpath("README.md").read_text().splitlines()) <= 350


def test_readme_set_up_commands_are_the_ones_ci_runs() -> None:
    setup = [b.code.strip() for b in BLOCKS if b.path.name == "README.md" and b.mark == "setup"
             and b.code.startswith("python3 -m venv")]
    assert setup == SETUP_COMMANDS
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install --quiet -e ".[export,test]"' in ci and "python -m pytest" in ci


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bench_line(line: str) -> str:
    """A benchmark command with tiny parameters (see the module docstring)."""
    line = re.sub(r"--texts \d+", "--texts 8", line)
    line = re.sub(r"--rounds \d+", "--rounds 1", line)
    line = re.sub(r"--(files|file-name) \S+", "", line)
    if "tools.bench " in line or line.rstrip().endswith("tools.bench"):
        line = re.sub(r"--engines \S+", "", line) + " --engines onnx-st"
    if ("tools.bench " in line or "tools.profile_ops" in line) and "--model" not in line:
        kind = re.search(r"--kind (\S+)", line)
        line += f" --model {BENCH_MODELS[kind[1] if kind else 'dense']}"
    if "tools.bench_pool" in line:
        line += " --model all-minilm-l6-v2-onnx --skip-torch --repeats 1"
    if "tools.server_bench" in line:
        line += " --seconds 0.3 --clients 1 --sizes 1 --flooders 2 --flood-seconds 0.5 --max-seconds 10"
    if "tools.jobs_bench" in line:
        line += " --part-rows 4"
    return line


def _substitute(block: Block, port: int, extra: dict[str, str]) -> str:
    code = block.code.replace("8080", str(port))
    code = code.replace('"$(python -m tools.pypi_models minilm)"', str(FIXTURES / "dense-mean"))
    code = code.replace('"$(python -m tools.pypi_models splade-tiny)"', str(FIXTURES / "sparse-max-relu"))
    code = code.replace("--optimize O1 O2 O3 O4 --quantize avx2 avx512 avx512_vnni arm64", "--optimize O2 --quantize avx2")
    if block.mark == "bench":
        code = "\n".join(_bench_line(line.split("#", 1)[0]) if "python -m tools." in line else line
                         for line in code.splitlines()) + "\n"
    for old, new in extra.items():
        code = code.replace(old, new)
    return code


def _needs_torch(block: Block) -> bool:
    return block.mark == "export" or any(word in block.code for word in (
        "onnx-st-export", "tools.fixtures", "tools.bench_cold", "tools.ort_ceiling --kind"))


def _lambda_args() -> str:
    from .test_lambda_package import PLATFORMS, PYTHON, wheels

    folder = wheels.__wrapped__()  # type: ignore[attr-defined]
    return " ".join([f"--python-version {PYTHON}", *[f"--platform {p}" for p in PLATFORMS],
                     f"--find-links {folder} --no-index"])


def _prepare(folder: Path, code: str) -> None:
    """The model directories, Hub cache and corpora ``code`` names, in ``folder``."""
    outputs = set(re.findall(r"onnx-st-export\s+(?!--)\S+\s+(\S+)", code))
    for name, (fixture, without_onnx) in MODELS.items():
        if name in outputs or not re.search(rf"(?<![\w/-]){re.escape(name)}(?![\w-])", code):
            continue
        ignore = ["expected.npz", "inputs.json", "meta.json", "decode.json", "rank.json"]
        shutil.copytree(FIXTURES / fixture, folder / name, ignore=shutil.ignore_patterns(
            *ignore, *(["onnx"] if without_onnx else [])))
    for repo, fixture in HUB_REPOS.items():
        snapshot = folder / "hub" / ("models--" + repo.replace("/", "--"))
        (snapshot / "refs").mkdir(parents=True)
        (snapshot / "refs" / "main").write_text("0" * 40)
        shutil.copytree(FIXTURES / fixture, snapshot / "snapshots" / ("0" * 40),
                        ignore=shutil.ignore_patterns("expected.npz", "inputs.json", "meta.json"))
    if any(name in code for name in CORPORA):
        import json

        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = [{"id": i, "text": t} for i, t in enumerate(TEXTS)]
        (folder / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        pq.write_table(pa.Table.from_pylist(rows), folder / "corpus.parquet")
        (folder / "corpus").mkdir()
        pq.write_table(pa.Table.from_pylist(rows[:3]), folder / "corpus" / "part-0.parquet")
        pq.write_table(pa.Table.from_pylist(rows[3:]), folder / "corpus" / "part-1.parquet")
        (folder / "pairs.csv").write_text("id,query,document\n1,How old is Paris?,Paris was founded long ago.\n"
                                          "2,How old is Paris?,The Eiffel Tower opened in 1889.\n")


def _env(folder: Path, *, online: bool = False, cluster: bool = False) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(PYTHONPATH=str(ROOT), PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
               HF_HUB_CACHE=str(folder / "hub"), ONNX_ST_EXPORT_CACHE=str(folder / "exports"),
               RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", PYTHONDONTWRITEBYTECODE="1", NO_PROXY="127.0.0.1,localhost")
    env["HF_HUB_OFFLINE"] = "0" if online else "1"
    if cluster:  # several nodes need Ray's cluster mode; --node-ip-address keeps them on 127.0.0.1
        del env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"]
        env["RAY_AUTH_MODE"] = "disabled"  # a throwaway cluster of this test's own, on 127.0.0.1
    return env


def _run(block: Block, code: str, folder: Path, *, online: bool = False, timeout: float = 300) -> str:
    """Run one block in ``folder``; its output."""
    script = folder / ("block.py" if block.language == "python" else "block.sh")
    script.write_text(code)
    cmd = [sys.executable, str(script)] if block.language == "python" else ["bash", "-euo", "pipefail", str(script)]
    log = folder / "block.log"
    with log.open("w") as sink:  # a file, not a pipe: a server started in the background keeps its end open
        proc = subprocess.Popen(cmd, cwd=folder, env=_env(folder, online=online, cluster=block.mark == "cluster"), stdout=sink,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=timeout)
        finally:
            try:  # a server the block started in the background
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            proc.wait()
    out = log.read_text()
    assert proc.returncode == 0, f"{block.id} failed ({proc.returncode}):\n{code}\n{out[-4000:]}"
    return out


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    """The documented server (the ``serve`` block) on a free port, for the ``server`` blocks."""
    [block] = [b for b in BLOCKS if b.mark == "serve"]
    port = _free_port()
    folder = Path(tempfile.mkdtemp(prefix="onnx-st-docs-serve-"))
    code = _substitute(block, port, {})
    _prepare(folder, code)
    proc = subprocess.Popen(["bash", "-c", code], cwd=folder, env=_env(folder), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "the documented server did not start"
                time.sleep(0.2)
        RAN.add(block.id)
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()
        shutil.rmtree(folder, ignore_errors=True)


def _ray_processes(marker: str) -> list[int]:
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker in cmdline.read_bytes().decode(errors="replace"):
                pids.append(int(cmdline.parent.name))
        except OSError:
            continue
    return pids


def _cluster_substitutions(folder: Path) -> tuple[dict[str, str], str]:
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="rd", dir="/tmp")
    return {"--port=6379": f"--port={port} --node-ip-address=127.0.0.1 --num-cpus=1 --temp-dir={temp} "
                           "--include-dashboard=false --disable-usage-stats",
            "HEAD_IP:6379": f"127.0.0.1:{port} --node-ip-address=127.0.0.1 --num-cpus=1 --disable-usage-stats",
            "/shared/models/minilm": str(folder / "all-minilm-l6-v2-onnx"),
            "--address auto": f"--address 127.0.0.1:{port}", "--cpus-per-actor 4": "--cpus-per-actor 1"}, temp


@pytest.mark.parametrize("block", RUNNABLE, ids=[b.id for b in RUNNABLE])
def test_block_runs(block: Block, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if _needs_torch(block) and not HAS_TORCH:
        pytest.skip("needs the export extra (torch)")
    port = request.getfixturevalue("server") if block.mark == "server" else _free_port()
    extra: dict[str, str] = {}
    temp = None
    if block.mark == "cluster":
        extra, temp = _cluster_substitutions(tmp_path)
    code = _substitute(block, port, extra)
    if "onnx-st lambda-package" in code:
        code = re.sub(r"(onnx-st lambda-package [^\n]*)", rf"\1 {_lambda_args()}", code)
    _prepare(tmp_path, code + ("all-minilm-l6-v2-onnx" if block.mark == "cluster" else ""))
    try:
        out = _run(block, code, tmp_path, online=block.mark == "server")
    finally:
        if temp is not None:
            for pid in _ray_processes(temp):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            shutil.rmtree(temp, ignore_errors=True)
    _check_output(block, out)
    RAN.add(block.id)


def _check_output(block: Block, out: str) -> None:
    """The cheap checks of what a block says it prints."""
    if "print(handler(event, None)[\"statusCode\"])" in block.code:
        assert "200" in out.split()
    if "exit status $?" in block.code:
        assert "onnx-st: error:" in out and "exit status 2" in out
    if "precision=\"int8\").dtype" in block.code:
        assert "int8" in out.splitlines()
    if "embed_documents" in block.code:
        assert out.strip().splitlines()[-1] == "2"


def test_every_runnable_block_ran(request: pytest.FixtureRequest) -> None:
    """Runs last: every block whose test was collected ran, or was skipped for want of torch."""
    collected = {item.callspec.id for item in request.session.items if hasattr(item, "callspec")
                 and item.originalname == "test_block_runs"}
    missing = [b.id for b in RUNNABLE if b.id in collected and b.id not in RAN
               and not (_needs_torch(b) and not HAS_TORCH)]
    assert not missing, f"blocks that did not run: {missing}"
