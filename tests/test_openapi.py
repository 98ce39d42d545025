"""The API keeps the promises of its own OpenAPI document, checked by schemathesis in-process.

Every operation gets schemathesis's examples, coverage and fuzzing phases (valid and invalid
requests) against the real app over a real SQLite file, once with an admin key and once
without one. Random data never makes a valid event or hits a stored id, so the success
responses those paths lead to are checked with a few hand-made requests as well.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from trailkeeper.server import create_app
from trailkeeper.service import AuditService

MakeEvent = Callable[..., dict[str, Any]]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
SETTINGS = settings(
    max_examples=50,
    deadline=None,
    # One app over one database serves every example of an operation, on purpose: what one
    # request stores (an ingest, the record of a read), later ones find.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
STORED_ID = "0192f0c8-7d2e-7c3a-9f1e-3b5a2c4d6e8f"
NEW_EVENT = {
    "id": "0192f0c8-7d2e-7c3a-9f1e-3b5a2c4d6e90",
    "time": "2026-11-26T11:30:00Z",
    "actor": {"id": "bob", "type": "user"},
    "operation": "dataset.update",
    "targets": [{"type": "dataset", "id": "ds-1"}],
}


def _document() -> dict[str, Any]:
    # What /openapi.json serves: it depends on the routes only, so any service will do. The
    # schema has to exist when pytest collects (one test per operation), before any fixture;
    # each test then sends its requests to an app over its own service.
    with (
        tempfile.TemporaryDirectory() as tmp,
        AuditService.open(f"sqlite:///{Path(tmp) / 'openapi.db'}") as service,
    ):
        return create_app(service).openapi()


schema = schemathesis.openapi.from_dict(_document())
# With a valid key, /v1/events/stream never ends by design (it follows the log); it has its
# own tests over a real server in tests/test_stream.py. Without a key it answers at once.
finite = schema.exclude(path="/v1/events/stream")


@pytest.fixture
def app(service: AuditService) -> FastAPI:
    return create_app(service)


@pytest.fixture
def secret(service: AuditService, make_event: MakeEvent) -> str:
    """An admin key's secret, for an org that already holds a few events."""
    service.ingest(
        "acme",
        [
            make_event(id=STORED_ID),
            make_event(operation="model.delete", time="2026-11-25T08:30:00Z", app_id="other"),
            make_event(
                operation="workflow.create",
                actor={"id": "ci-bot", "type": "service"},
                targets=[{"type": "workflow", "id": "wf-1"}],
                success=False,
                error={"code": "PERMISSION_DENIED", "message": "no"},
                source_ip="2001:db8::1",
                request_id="req-1",
            ),
        ],
    )
    _, created = service.keys.create("acme", ["admin"])
    return created


@finite.parametrize()
@SETTINGS
def test_every_response_with_a_key_conforms_to_the_document(
    case: schemathesis.Case, app: FastAPI, secret: str
) -> None:
    case.call_and_validate(app=app, headers={"Authorization": f"Bearer {secret}"}, checks=CHECKS)


@schema.parametrize()
@SETTINGS
def test_every_v1_response_without_a_key_is_a_401_problem(
    case: schemathesis.Case, app: FastAPI
) -> None:
    # The document declares the bearer scheme, so schemathesis may send a made-up key; drop
    # any, so that every case is a request without one.
    if case.headers:
        case.headers.pop("Authorization", None)
        case.headers.pop("authorization", None)
    response = case.call_and_validate(app=app, checks=CHECKS)
    if case.method.upper() != case.operation.method.upper():
        return  # schemathesis probing an undocumented method: the router's 405, not the operation
    if not case.path.startswith("/v1/") or case.path == "/v1/operations":
        return
    assert response.status_code == 401, (
        f"{case.method} {case.formatted_path} query={case.query} -> {response.text}"
    )
    assert response.headers["content-type"] == ["application/problem+json"]
    assert response.headers["www-authenticate"] == ['Bearer realm="trailkeeper"']
    assert response.json()["code"] == "missing_key"


@pytest.mark.parametrize(
    ("method", "path", "request_parts", "status"),
    [
        pytest.param("POST", "/v1/events", {"body": {"events": [NEW_EVENT]}}, 202, id="ingest"),
        pytest.param(
            "POST",
            "/v1/events",
            {"body": {"events": [NEW_EVENT, NEW_EVENT]}},
            202,
            id="ingest-duplicate",
        ),
        pytest.param(
            "POST",
            "/v1/events",
            {"body": {"events": [{**NEW_EVENT, "id": STORED_ID}]}},
            409,
            id="ingest-conflict",
        ),
        pytest.param(
            "GET",
            "/v1/events/{event_id}",
            {"path_parameters": {"event_id": STORED_ID}},
            200,
            id="get",
        ),
        pytest.param(
            "GET", "/v1/events", {"query": {"limit": 1, "order": "asc"}}, 200, id="search-page"
        ),
        pytest.param(
            "POST",
            "/v1/events/search",
            {"body": {"success": False, "source_ip": ["2001:db8::/32"], "limit": 1}},
            200,
            id="search-post",
        ),
        pytest.param(
            "GET", "/v1/events/export", {"query": {"format": "csv"}}, 200, id="export-csv"
        ),
        pytest.param(
            "GET", "/v1/events/export", {"query": {"format": "jsonl"}}, 200, id="export-jsonl"
        ),
        pytest.param("GET", "/v1/stats/activity", {"query": {"bucket": "day"}}, 200, id="activity"),
    ],
)
def test_success_responses_fuzzing_cannot_reach_conform_to_the_document(
    app: FastAPI,
    secret: str,
    method: str,
    path: str,
    request_parts: dict[str, Any],
    status: int,
) -> None:
    case = schema[path][method].Case(**request_parts)
    response = case.call_and_validate(
        app=app, headers={"Authorization": f"Bearer {secret}"}, checks=CHECKS
    )
    assert response.status_code == status, response.text
