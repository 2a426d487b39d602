"""``onnx-st lambda-package``: a real package for a fixture model, run in a fresh process on AWS-shaped events."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from onnx_st.errors import ConfigError, ModelNotFoundError, OnnxSTError
from onnx_st.options import RuntimeOptions
from onnx_st.serverless.handler import settings_from_env
from onnx_st.serverless.package import build_package, default_platforms, dockerfile, prune, runtime_requirements
from onnx_st.serverless.package_model import copy_model_dir

from .conftest import fixture_dir, fixture_expected, fixture_inputs

EVENTS = Path(__file__).parent / "events"
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
# wheels of this machine's Python: the package then runs in a fresh process here
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux2014_x86_64"]
WHEELS = Path.home() / ".cache" / "onnx-st-test-models" / "lambda-wheels"


def _event(name: str, body: dict[str, Any]) -> dict[str, Any]:
    event = json.loads((EVENTS / f"{name}.json").read_text())
    raw = json.dumps(body)
    event["body"] = base64.b64encode(raw.encode()).decode() if event["isBase64Encoded"] else raw
    return event


@pytest.fixture(scope="module")
def wheels() -> Path:
    """The runtime's wheels, downloaded from PyPI once per machine and requirement set."""
    import onnxruntime

    requirements = [r for r in runtime_requirements() if not r.startswith("onnxruntime")]
    requirements.append(f"onnxruntime=={onnxruntime.__version__}")
    key = hashlib.sha256(json.dumps([PYTHON, PLATFORMS, requirements]).encode()).hexdigest()[:12]
    folder = WHEELS / key
    if not (folder / ".complete").is_file():
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(folder), "--only-binary=:all:",
               "--implementation", "cp", "--python-version", PYTHON,
               *[a for p in PLATFORMS for a in ("--platform", p)], *requirements]
        subprocess.run(cmd, check=True)
        (folder / ".complete").touch()
    return folder


@pytest.fixture(scope="module")
def package(wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lambda") / "package"
    report = build_package(fixture_dir("dense-mean"), out, python_version=PYTHON, platforms=PLATFORMS,
                           pip_args=["--no-index", "--find-links", str(wheels)])
    assert report.total < 250 * 2**20 and report.sizes["model"] < 2**20
    for gone in ("huggingface_hub", "hf_xet", "onnxruntime/transformers", "numpy/_core/tests", "onnx_st/jobs", "bin"):
        assert not (out / gone).exists(), gone
    assert (out / "model" / "onnx" / "model.onnx_data").is_file()  # weights memory-mapped at load
    assert not (out / "model" / "model.safetensors").exists()
    assert (out / "Dockerfile").read_text() == dockerfile(PYTHON)  # no file name: the runtime's default
    assert report.environment == {"ONNX_ST_MODEL_DIR": "/var/task/model"}
    return out


def test_package_answers_aws_events_in_a_fresh_process(package: Path, tmp_path: Path) -> None:
    texts = fixture_inputs("dense-mean")
    expected = fixture_expected("dense-mean")
    events = [
        _event("function_url", {"inputs": texts, "normalize": True, "truncate": True}),
        _event("http_api_v2", {"inputs": {"source_sentence": texts[0], "sentences": texts[1:]},
                               "parameters": {"truncate": True}}),
        _event("rest_api_v1", {"inputs": texts[:3]}),
    ]
    events_file = tmp_path / "events.json"
    events_file.write_text(json.dumps(events))
    env = {"ONNX_ST_MODEL_DIR": str(package / "model"), "ONNX_ST_MODEL_ID": "dense-mean", "PATH": "/usr/bin:/bin",
           "AWS_LAMBDA_FUNCTION_NAME": "onnx-st-test"}  # as Lambda sets it: the model loads in the init phase
    proc = subprocess.run([sys.executable, "-I", "-S", str(Path(__file__).parent / "lambda_process.py"),
                           str(package), str(events_file), "100"], capture_output=True, text=True, env=env,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["loaded_at_import"]
    assert result["outside"] == []  # everything the handler imported came from the package or the stdlib
    embed, similarity, inference = result["responses"]
    assert [r["statusCode"] for r in result["responses"]] == [200, 200, 200], result["responses"]
    np.testing.assert_allclose(json.loads(embed["body"]), expected["encode_normalized"], atol=1e-5)
    np.testing.assert_allclose(json.loads(similarity["body"]), expected["similarity"][0, 1:], atol=1e-5)
    np.testing.assert_allclose(json.loads(inference["body"]), expected["encode"][:3], atol=1e-5)
    assert result["peak_kib_many"] <= 1.10 * result["peak_kib_one"], result  # 300 more requests: no growth


def test_reduced_model_dir(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("modules.json", "config.json", "tokenizer.json", "model.safetensors", "vocab.txt",
                 "onnx/model.onnx", "onnx/model_qint8_avx2.onnx", "onnx/parity.json", "2_Dense/model.safetensors",
                 "2_Dense/config.json", ".cache/x"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text("x")
    (source / "modules.json").write_text(json.dumps([  # the graph folders come from the modules
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}]))
    graphs, left_out = copy_model_dir(source, tmp_path / "out", "onnx/model_qint8_avx2.onnx")
    kept = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert kept == ["2_Dense/config.json", "2_Dense/model.safetensors", "config.json", "modules.json",
                    "onnx/model_qint8_avx2.onnx", "onnx/parity.json", "tokenizer.json"]
    assert graphs == [tmp_path / "out" / "onnx" / "model_qint8_avx2.onnx"]
    assert set(left_out) == {"src/model.safetensors", "src/vocab.txt", "src/onnx/model.onnx"}
    with pytest.raises(ModelNotFoundError, match="model_O9.onnx"):
        copy_model_dir(source, tmp_path / "out2", "onnx/model_O9.onnx")


def _dist(target: Path, name: str, requires: list[str], files: list[str]) -> None:
    info = target / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Name: {name}\n" + "".join(f"Requires-Dist: {r}\n" for r in requires))
    for f in files:
        (target / f).parent.mkdir(parents=True, exist_ok=True)
        (target / f).write_text("x")
    (info / "RECORD").write_text("".join(f"{f},,\n" for f in files))


def test_prune_follows_requirements_and_drops_the_hub(tmp_path: Path) -> None:
    _dist(tmp_path, "tokenizers", ["huggingface-hub>=0.16"], ["tokenizers/__init__.py"])
    _dist(tmp_path, "huggingface_hub", ["hf-xet; platform_machine == 'x86_64'", "typing-extensions"],
          ["huggingface_hub/__init__.py"])
    _dist(tmp_path, "hf_xet", [], ["hf_xet/__init__.py"])
    _dist(tmp_path, "fastapi", ["typing-extensions", "tomli; python_version < '3.11'", "x; extra == 'all'"],
          ["fastapi/__init__.py"])
    _dist(tmp_path, "typing_extensions", [], ["typing_extensions.py"])
    left_out = prune(tmp_path, ["tokenizers", "fastapi"], "3.12")
    assert {"huggingface-hub", "hf-xet", "tokenizers -> huggingface-hub"} <= set(left_out)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "fastapi", "fastapi-1.0.dist-info", "tokenizers", "tokenizers-1.0.dist-info", "typing_extensions-1.0.dist-info",
        "typing_extensions.py"]


def test_over_the_limit_fails_and_pip_errors_are_clear(tmp_path: Path) -> None:
    def fake_pip(cmd: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        target = Path(cmd[cmd.index("--target") + 1])
        (target / "big.bin").write_bytes(b"\0" * 2**20)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    with pytest.raises(OnnxSTError, match="over the 1 MiB limit"):
        build_package(fixture_dir("dense-mean"), tmp_path / "pkg", limit_mib=1, fast_load=False, run=fake_pip)
    failing = lambda cmd, **_: subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution")  # noqa: E731
    with pytest.raises(OnnxSTError, match="No matching distribution"):
        build_package(fixture_dir("dense-mean"), tmp_path / "pkg", overwrite=True, run=failing)
    with pytest.raises(OnnxSTError, match="exists"):
        build_package(fixture_dir("dense-mean"), tmp_path / "pkg", run=failing)


def test_platforms_and_settings() -> None:
    assert default_platforms("3.11")[0] == "manylinux_2_26_x86_64"
    assert default_platforms("3.12", "arm64")[0] == "manylinux_2_34_aarch64"
    assert default_platforms("3.13")[-1] == "manylinux2014_x86_64"
    with pytest.raises(ConfigError):
        default_platforms("three")
    image = dockerfile("3.12", "onnx/model_qint8_avx2.onnx")
    assert image.startswith("FROM public.ecr.aws/lambda/python:3.12\n") and image.endswith(
        'ONNX_ST_FILE_NAME=onnx/model_qint8_avx2.onnx\nCMD ["onnx_st.serverless.handler.handler"]\n')
    settings = settings_from_env({"ONNX_ST_MODEL_DIR": "/var/task/model", "ONNX_ST_FILE_NAME": "onnx/m.onnx",
                                  "ONNX_ST_THREADS": "2", "ONNX_ST_PREPACK": "0"})
    assert settings.model_id == "model" and settings.runtime == RuntimeOptions(
        file_name="onnx/m.onnx", intra_op_num_threads=2, prepack=False)
    assert settings_from_env({"ONNX_ST_MODEL_DIR": "m"}).runtime == RuntimeOptions()
    for env in ({}, {"ONNX_ST_MODEL_DIR": "m", "ONNX_ST_THREADS": "-1"}, {"ONNX_ST_MODEL_DIR": "m", "ONNX_ST_PREPACK": "maybe"}):
        with pytest.raises(ConfigError):
            settings_from_env(env)


def test_handler_events_match_aws_structure() -> None:
    v2, url, v1 = (json.loads((EVENTS / f"{n}.json").read_text()) for n in ("http_api_v2", "function_url",
                                                                           "rest_api_v1"))
    for event in (v2, url):
        assert event["version"] == "2.0" and {"method", "path", "sourceIp"} <= set(event["requestContext"]["http"])
    assert {"httpMethod", "multiValueHeaders", "multiValueQueryStringParameters", "resource"} <= set(v1)
    assert v1["requestContext"]["path"] == f"/{v1['requestContext']['stage']}{v1['path']}"


def test_directories_load_without_the_hub_client(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['huggingface_hub'] = None; import onnx_st; from onnx_st.errors import "
            f"ModelNotFoundError; onnx_st.SentenceTransformer({str(fixture_dir('dense-mean'))!r}).encode('a')\n"
            "try:\n    onnx_st.SentenceTransformer('org/absent-model')\nexcept ModelNotFoundError as e:\n    print(e)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "needs huggingface_hub" in proc.stdout


def test_cli_with_a_relative_output_leaves_out_what_it_says(wheels: Path, tmp_path: Path) -> None:
    """The README's form, `onnx-st lambda-package MODEL build/fn`: a relative output folder is pruned like an
    absolute one, nothing printed as left out is in it, and the printed total is the size on disk."""
    cmd = [sys.executable, "-m", "onnx_st", "lambda-package", str(fixture_dir("dense-mean")), "build/fn",
           "--python-version", PYTHON, *[a for p in PLATFORMS for a in ("--platform", p)],
           "--find-links", str(wheels), "--no-index"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "build" / "fn"
    left_out = [line.split(" ", 2)[2].split(": ", 1)[0] for line in proc.stdout.splitlines()
                if line.startswith("left out ")]
    assert "onnx_st/jobs" in left_out and {"huggingface_hub", "hf_xet"} <= {n.replace("-", "_") for n in left_out}
    for name in left_out:
        if " -> " in name:  # a requirement edge not followed, not a folder
            continue
        for form in {name, name.replace("-", "_")}:  # a distribution's name, or its import package's
            assert not list(out.glob(form)), f"{name} is printed as left out but is in the package"
            assert not list(out.glob(f"{form}-*.dist-info")), f"{name}'s metadata is in the package"
    on_disk = sum(p.stat().st_size for p in out.rglob("*") if p.is_file() and not p.is_symlink())
    total = next(line for line in proc.stdout.splitlines() if line.startswith("unzipped total"))
    assert float(total.split()[2]) == pytest.approx(on_disk / 2**20, abs=0.051)
    assert (out / "onnx_st" / "serverless" / "handler.py").is_file() and (out / "onnx_st" / "__init__.py").is_file()
