"""Hostile clients: schemathesis's stateful run over the OpenAPI links, against the real app
in-process over a real SQLite file, with a write key for ingests and a read key for the rest
(issue #13). Every response: no 5xx, a status and a body the document allows.

The document links ``POST /v1/events`` to ``GET /v1/events/{event_id}`` (the first event of
the batch), so scenarios chain an ingest into the read of what it stored. Bounded by
``max_examples`` so that CI stays fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from trailkeeper.server import create_app
from trailkeeper.service import AuditService

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[FastAPI, dict[str, str]]]:
    with AuditService.open(f"sqlite:///{tmp_path / 'fuzz.db'}") as service:
        keys = {
            scope: service.keys.create("acme", [scope])[1]
            for scope in ("events:read", "events:write")
        }
        yield create_app(service), keys


def test_the_document_links_an_ingest_to_the_read_of_its_event(
    served: tuple[FastAPI, dict[str, str]],
) -> None:
    app, _ = served
    links = app.openapi()["paths"]["/v1/events"]["post"]["responses"]["202"]["links"]
    (link,) = links.values()
    assert (
        link["operationId"] == app.openapi()["paths"]["/v1/events/{event_id}"]["get"]["operationId"]
    )


def test_stateful_scenarios_over_the_links_get_no_5xx_and_conform(
    served: tuple[FastAPI, dict[str, str]],
) -> None:
    app, keys = served
    # The stream never ends with a valid key (tests/test_stream.py covers it).
    schema = schemathesis.openapi.from_dict(app.openapi()).exclude(path="/v1/events/stream")
    calls: list[tuple[str, int]] = []

    class Machine(schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: schemathesis.Case) -> None:
            # In place of any bearer token schemathesis made up for the security scheme.
            write = case.method.upper() == "POST" and case.path == "/v1/events"
            secret = keys["events:write" if write else "events:read"]
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {secret}"}

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"app": app}

        def validate_response(self, response: Any, case: schemathesis.Case, **kwargs: Any) -> None:
            calls.append((f"{case.method.upper()} {case.path}", response.status_code))
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

    Machine.run(
        settings=settings(
            max_examples=25,
            stateful_step_count=6,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
    )
    assert calls, "no scenario ran"
    assert all(status < 500 for _, status in calls)
    assert any(status != 401 for _, status in calls), "the keys were not sent"
