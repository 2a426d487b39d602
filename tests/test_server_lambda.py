"""The Lambda handler with real event shapes: function URL / API Gateway v2, API Gateway v1 REST, direct."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from onnx_st import SentenceTransformer
from onnx_st.errors import ConfigError
from onnx_st.serverless import handler as lambda_handler

from .conftest import fixture_dir
from .server_helpers import SEED_PAYLOAD, SEED_SENTENCES, SEED_SOURCE

FUNCTION_URL_EVENT: dict[str, Any] = {
    "version": "2.0", "routeKey": "$default", "rawPath": "/models/all-mpnet", "rawQueryString": "",
    "headers": {"content-type": "application/json", "host": "abcdefg.lambda-url.us-east-1.on.aws",
                "user-agent": "curl/8.5.0", "x-amzn-trace-id": "Root=1-65f1-abc", "x-forwarded-proto": "https"},
    "requestContext": {
        "accountId": "anonymous", "apiId": "abcdefg", "domainName": "abcdefg.lambda-url.us-east-1.on.aws",
        "domainPrefix": "abcdefg",
        "http": {"method": "POST", "path": "/models/all-mpnet", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7",
                 "userAgent": "curl/8.5.0"},
        "requestId": "c3f1e0d2-1111-2222-3333-444455556666", "routeKey": "$default", "stage": "$default",
        "time": "12/Mar/2025:19:03:58 +0000", "timeEpoch": 1741806238390},
    "body": SEED_PAYLOAD, "isBase64Encoded": False,
}

HTTP_API_EVENT: dict[str, Any] = {
    "version": "2.0", "routeKey": "ANY /{proxy+}", "rawPath": "/prod/embed", "rawQueryString": "",
    "cookies": ["session=1"],
    "headers": {"content-type": "application/json", "host": "api.example.com", "content-length": "999"},
    "requestContext": {
        "accountId": "123456789012", "apiId": "api-id", "domainName": "api.example.com", "domainPrefix": "api",
        "http": {"method": "POST", "path": "/prod/embed", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7",
                 "userAgent": "python-requests/2.32"},
        "requestId": "id", "routeKey": "ANY /{proxy+}", "stage": "prod", "time": "12/Mar/2025:19:03:58 +0000",
        "timeEpoch": 1741806238390},
    "pathParameters": {"proxy": "embed"}, "body": "", "isBase64Encoded": True,
}

REST_API_EVENT: dict[str, Any] = {
    "resource": "/{proxy+}", "path": "/similarity", "httpMethod": "POST",
    "headers": {"Content-Type": "application/json", "Host": "abc.execute-api.us-east-1.amazonaws.com",
                "X-Forwarded-Proto": "https"},
    "multiValueHeaders": {"Content-Type": ["application/json"], "Host": ["abc.execute-api.us-east-1.amazonaws.com"],
                          "X-Forwarded-Proto": ["https"]},
    "queryStringParameters": None, "multiValueQueryStringParameters": None,
    "pathParameters": {"proxy": "similarity"}, "stageVariables": None,
    "requestContext": {"resourceId": "abc123", "resourcePath": "/{proxy+}", "httpMethod": "POST",
                       "extendedRequestId": "x", "requestTime": "12/Mar/2025:19:03:58 +0000",
                       "path": "/prod/similarity", "accountId": "123456789012", "protocol": "HTTP/1.1",
                       "stage": "prod", "domainPrefix": "abc", "requestTimeEpoch": 1741806238390,
                       "requestId": "id", "identity": {"sourceIp": "203.0.113.7", "userAgent": "curl/8.5.0"},
                       "domainName": "abc.execute-api.us-east-1.amazonaws.com", "apiId": "abc"},
    "body": None, "isBase64Encoded": False,
}


@pytest.fixture()
def container(monkeypatch: pytest.MonkeyPatch) -> Iterator[SentenceTransformer]:
    """A fresh container serving dense-mean as ``all-mpnet``; yields a reference model."""
    monkeypatch.setenv("ONNX_ST_MODEL_DIR", str(fixture_dir("dense-mean")))
    monkeypatch.setenv("ONNX_ST_MODEL_ID", "all-mpnet")
    monkeypatch.delenv("ONNX_ST_TOKEN", raising=False)
    lambda_handler.reset()
    yield SentenceTransformer(str(fixture_dir("dense-mean")))
    lambda_handler.reset()


def _seed_scores(model: SentenceTransformer) -> np.ndarray:
    return model.similarity(model.encode([SEED_SOURCE]), model.encode(SEED_SENTENCES))[0]


def test_function_url_seed_payload(container: SentenceTransformer) -> None:
    out = lambda_handler.handler(copy.deepcopy(FUNCTION_URL_EVENT), None)
    assert out["statusCode"] == 200 and out["headers"]["content-type"] == "application/json"
    assert out["isBase64Encoded"] is False
    np.testing.assert_allclose(json.loads(out["body"]), _seed_scores(container), atol=1e-5)
    app = lambda_handler._runtime["app"]
    lambda_handler.handler(copy.deepcopy(FUNCTION_URL_EVENT), None)
    assert lambda_handler._runtime["app"] is app  # loaded once per container


def test_http_api_v2_stage_and_base64_body(container: SentenceTransformer) -> None:
    event = copy.deepcopy(HTTP_API_EVENT)
    event["body"] = base64.b64encode(json.dumps({"inputs": ["a happy dog", "sunny"]}).encode()).decode()
    out = lambda_handler.handler(event, None)
    assert out["statusCode"] == 200, out
    np.testing.assert_allclose(json.loads(out["body"]), container.encode(["a happy dog", "sunny"],
                                                                         normalize_embeddings=True), atol=1e-5)


def test_rest_api_v1_base64_and_query(container: SentenceTransformer) -> None:
    event = copy.deepcopy(REST_API_EVENT)
    body = {"inputs": {"sourceSentence": SEED_SOURCE, "sentences": SEED_SENTENCES}}
    event.update(body=base64.b64encode(json.dumps(body).encode()).decode(), isBase64Encoded=True)
    out = lambda_handler.handler(event, None)
    assert out["statusCode"] == 200, out
    np.testing.assert_allclose(json.loads(out["body"]), _seed_scores(container), atol=1e-5)
    info = copy.deepcopy(REST_API_EVENT)
    info.update(path="/info", httpMethod="GET", multiValueQueryStringParameters={"model": ["all-mpnet"]},
                queryStringParameters={"model": "all-mpnet"})
    assert json.loads(lambda_handler.handler(info, None)["body"])["model_id"] == "all-mpnet"
    bad = copy.deepcopy(REST_API_EVENT)
    bad.update(body=json.dumps({"inputs": {"sentences": "not a list"}}))
    out = lambda_handler.handler(bad, None)
    assert out["statusCode"] == 422 and json.loads(out["body"])["error_type"] == "validation"


def test_direct_invocation_and_token(container: SentenceTransformer, monkeypatch: pytest.MonkeyPatch) -> None:
    out = lambda_handler.handler({"inputs": "That is a happy dog"}, None)
    np.testing.assert_allclose(json.loads(out["body"]), container.encode("That is a happy dog"), atol=1e-5)
    lambda_handler.reset()
    monkeypatch.setenv("ONNX_ST_TOKEN", "tok")
    assert lambda_handler.handler(copy.deepcopy(FUNCTION_URL_EVENT), None)["statusCode"] == 401
    event = copy.deepcopy(FUNCTION_URL_EVENT)
    event["headers"]["authorization"] = "Bearer tok"
    assert lambda_handler.handler(event, None)["statusCode"] == 200


def test_missing_model_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ONNX_ST_MODEL_DIR", raising=False)
    lambda_handler.reset()
    with pytest.raises(ConfigError, match="ONNX_ST_MODEL_DIR"):
        lambda_handler.handler(copy.deepcopy(FUNCTION_URL_EVENT), None)


@pytest.mark.parametrize(("env", "expected"), [
    ({"AWS_LAMBDA_FUNCTION_NAME": "f", "ONNX_ST_MODEL_DIR": "/var/task/model"}, True),
    ({"AWS_LAMBDA_FUNCTION_NAME": "f", "ONNX_ST_MODEL_DIR": "/var/task/model", "ONNX_ST_LOAD_ON_INIT": "0"}, False),
    ({"ONNX_ST_MODEL_DIR": "/var/task/model"}, False),  # not in Lambda: importing never loads
    ({"AWS_LAMBDA_FUNCTION_NAME": "f"}, False),  # nothing to load: the first event says so
])
def test_load_on_init(env: dict[str, str], expected: bool) -> None:
    assert lambda_handler.load_on_init(env) is expected


def test_documented_handler_paths_are_one_function():
    """The handler path earlier releases documented keeps working beside its new home."""
    import importlib

    from onnx_st.server.lambda_handler import handler as old_path
    from onnx_st.serverless.package import HANDLER

    module, name = HANDLER.rsplit(".", 1)
    assert getattr(importlib.import_module(module), name) is lambda_handler.handler
    assert old_path is lambda_handler.handler
