"""Property-based fuzz of every operation in the served OpenAPI document: no request gets a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from onnx_st.server import create_app

from .conftest import fixture_dir
from .server_helpers import live_server

# the operations, from the app's own document (directories are not loaded to build it)
_DOC = create_app({"dense": fixture_dir("dense-mean")}).openapi()
TOKEN = "fuzz-token"
OPERATIONS = [(method.upper(), path) for path, item in _DOC["paths"].items() for method in item]


# Limits the document cannot state (the model's token limit and dimension, served model ids, the batch
# size and emptiness checks answered 400/422 like text-embeddings-inference) make some schema-valid
# requests errors; every other check (status codes, content types, response schemas, auth) applies.
RUNTIME_LIMITS = [positive_data_acceptance]


@pytest.fixture(scope="module")
def served_schema() -> Iterator[tuple[str, Any]]:
    with live_server(max_payload_bytes=20_000, token=TOKEN) as url:
        # query parameters and headers the document does not name are ignored, as by most HTTP APIs
        # a body over the payload limit is refused with 413 before it is read, schema-valid or not
        rejected = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]
        config = schemathesis.Config.from_dict({"generation": {"allow-extra-parameters": False},
                                                "checks": {"negative_data_rejection": {"expected-statuses": rejected}}})
        yield url, schemathesis.openapi.from_url(f"{url}/openapi.json", config=config)


def test_the_served_document_lists_every_operation(served_schema: tuple[str, Any]) -> None:
    _, schema = served_schema
    served = {(op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations()}
    assert served == set(OPERATIONS) and len(OPERATIONS) >= 11


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_server_error(served_schema: tuple[str, Any], method: str, path: str) -> None:
    url, schema = served_schema
    operation = schema.find_operation_by_path(method, path)
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=cases)
    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case: Any) -> None:
        response = case.call_and_validate(base_url=url, timeout=30, headers={"Authorization": f"Bearer {TOKEN}"},
                                          excluded_checks=RUNTIME_LIMITS)
        assert response.status_code < 500, (case.method, case.path, case.body, response.text)
        if response.status_code >= 400:
            body = response.json()
            assert "error" in body or "message" in body, response.text

    check()
