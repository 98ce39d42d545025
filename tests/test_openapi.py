"""The API keeps the promises of its own OpenAPI document, checked by schemathesis in-process."""

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
    max_examples=40,
    deadline=None,
    # One app and one database serve every example of an operation, on purpose: what one
    # ingest stores, the next search may find.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _document() -> dict[str, Any]:
    # The document depends on the routes only, not on the data behind them.
    with (
        tempfile.TemporaryDirectory() as tmp,
        AuditService.open(f"sqlite:///{Path(tmp) / 'openapi.db'}") as service,
    ):
        return create_app(service).openapi()


schema = schemathesis.openapi.from_dict(_document())


@pytest.fixture
def app(service: AuditService) -> FastAPI:
    return create_app(service)


@pytest.fixture
def secret(service: AuditService, make_event: MakeEvent) -> str:
    """An admin key's secret, for an org that already holds a few events."""
    service.ingest(
        "acme",
        [
            make_event(),
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
    _, created = service.create_key("acme", ["admin"])
    return created


@schema.parametrize()
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
    response = case.call_and_validate(app=app, checks=CHECKS)
    if case.method.upper() != case.operation.method.upper():
        return  # schemathesis probing an undocumented method: the router's 405, not the operation
    if not case.path.startswith("/v1/") or case.path == "/v1/operations":
        return
    assert response.status_code == 401, f"{case.method} {case.formatted_path} {case.query} {case.body!r}: {response.text}"
    assert response.headers["content-type"][0] == "application/problem+json"
    assert response.headers["www-authenticate"] == ['Bearer realm="trailkeeper"']
    assert response.json()["code"] == "missing_key"
