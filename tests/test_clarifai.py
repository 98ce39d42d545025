"""Clarifai compatibility, proven with the official ``clarifai-grpc`` client.

`trailkeeper serve --grpc-port` runs on real ports; the client talks to it over its JSON
channel (REST) and an insecure gRPC channel. Each example of Clarifai's audit log
documentation must return exactly what the native API returns for the same filters.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
from clarifai_grpc.grpc.api import resources_pb2, service_pb2, service_pb2_grpc
from clarifai_grpc.grpc.api.status import status_code_pb2
from google.protobuf.wrappers_pb2 import BoolValue

from conftest import free_port, new_key, run_cli, serving
from trailkeeper.clarifai import clarifai_operations
from trailkeeper.client import Client
from trailkeeper.events import Catalogue

CHANNELS = ["json", "grpc"]
START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
USERS = ["ana", "bob", "chen", "dita"]
IPS = ["203.0.113.7", "198.51.100.20", "10.1.2.3"]
OPS = [
    ("model.create", [("app", "main"), ("model", "scorer")]),
    ("model.version.create", [("app", "main"), ("model", "scorer"), ("model_version", "v1")]),
    ("application.delete", [("app", "old-app")]),
    ("collaborator.add", [("app", "main"), ("user", "bob"), ("role", "editor")]),
    ("team.member.add", [("team", "ml"), ("user", "chen")]),
    ("nodepool.create", [("compute_cluster", "cc1"), ("nodepool", "np1")]),
    ("secret.create", [("secret", "s1")]),  # no Clarifai EventType: never in its results
    ("organization.member.add", [("organization", "acme"), ("user", "dita"), ("role", "admin")]),
]


_cli = run_cli
_key = new_key


@dataclass
class Server:
    url: str
    grpc_port: int
    db: str
    reader: str  # an events:read key of acme
    writer: str  # an events:write key of acme


def _events() -> list[dict[str, Any]]:
    events = []
    for i in range(70):
        operation, targets = OPS[i % len(OPS)]
        success = i % 5 != 3
        event: dict[str, Any] = {
            "time": (START + timedelta(hours=3 * i, microseconds=i)).isoformat(),
            "actor": {"id": USERS[i % 4], "name": f"{USERS[i % 4].title()} Doe", "email": None},
            "operation": operation,
            "targets": [{"type": t, "id": f"{x}", "name": f"The {x}"} for t, x in targets],
            "success": success,
            "source_ip": IPS[i % 3],
            "request_id": f"req-{i}",
            "details": [f"step {i}"],
            "app_id": "main",
        }
        if not success:
            event["error"] = {"code": "DENIED", "message": "not allowed"}
        events.append(event)
    return events


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    db = f"sqlite:///{tmp_path_factory.mktemp('clarifai') / 'remote.db'}"
    grpc_port = free_port()
    with serving(db, "--grpc-port", str(grpc_port)) as live:
        found = Server(
            live.url,
            grpc_port,
            db,
            reader=_key(db, "--org", "acme", "--scope", "events:read"),
            writer=_key(db, "--org", "acme", "--scope", "events:write"),
        )
        with Client(live.url, found.writer) as producer:
            producer.record_many(_events())
        yield found


Search = Callable[..., Any]


def clarifai(server: Server, channel: str, key: str | None = None) -> Search:
    """``PostAuditLogSearches`` through the official client over one channel."""
    # The client picks its response decoder from the channel made last, when the stub is
    # made: each stub must follow its own channel at once.
    if channel == "json":
        stub = service_pb2_grpc.V2Stub(ClarifaiChannel.get_json_channel(base_url=server.url))
    else:
        made = ClarifaiChannel.get_insecure_grpc_channel(base="127.0.0.1", port=server.grpc_port)
        stub = service_pb2_grpc.V2Stub(made)
    metadata = (("authorization", f"Key {key or server.reader}"),)

    def search(user_id: str = "me", **fields: Any) -> Any:
        request = service_pb2.PostAuditLogSearchesRequest(
            user_app_id=resources_pb2.UserAppIDSet(user_id=user_id), **fields
        )
        return stub.PostAuditLogSearches(request, metadata=metadata)

    return search


def native(server: Server, **filters: Any) -> list[tuple[Any, ...]]:
    """The same search through the native API, restricted to Clarifai's operations."""
    filters.setdefault("operation", list(clarifai_operations(Catalogue.default())))
    with Client(server.url, server.reader) as reader:
        return [_from_native(e) for e in reader.events.list(page_size=1000, **filters)]


_KINDS = {"user", "role", "team", "app", "workflow", "workflow_version", "model",
          "model_version", "compute_cluster", "nodepool", "deployment"}  # fmt: skip
_NUMBERS = {op.name: op.clarifai.number for op in Catalogue.default() if op.clarifai}


def _from_native(event: dict[str, Any]) -> tuple[Any, ...]:
    when = datetime.fromisoformat(event["time"])
    return (
        when,
        event["actor"]["id"],
        _NUMBERS[event["operation"]],
        event["description"],
        tuple((t["type"], t["id"]) for t in event["targets"] if t["type"] in _KINDS),
        tuple(event["details"]),
        event["success"],
        event["request_id"] or "",
        event["source_ip"] or "",
    )


def _from_entry(entry: Any) -> tuple[Any, ...]:
    targets = []
    for target in entry.targets:
        kind = target.WhichOneof("target")
        targets.append((kind, getattr(target, kind).id))
    return (
        entry.timestamp.ToDatetime(tzinfo=UTC),
        entry.user.id,
        entry.operation,
        entry.description,
        tuple(targets),
        tuple(entry.details),
        entry.success,
        entry.req_id,
        entry.source_ip,
    )


def entries(response: Any) -> list[tuple[Any, ...]]:
    assert response.status.code == status_code_pb2.SUCCESS, response.status
    return [_from_entry(e) for e in response.entries]


def _stamp(when: datetime) -> Any:
    from google.protobuf.timestamp_pb2 import Timestamp

    stamp = Timestamp()
    stamp.FromDatetime(when)
    return stamp


T1, T2 = START + timedelta(days=2), START + timedelta(days=5, hours=6)
# Clarifai's documented examples, each beside the native filters that mean the same.
EXAMPLES: dict[str, tuple[dict[str, Any], dict[str, Any], Callable[[list[Any]], list[Any]]]] = {
    "list all events": ({}, {}, lambda rows: rows),
    "filter by operations": (
        {
            "query": resources_pb2.AuditLogQuery(
                operations=[resources_pb2.MODEL_CREATE, resources_pb2.APPLICATION_DELETE]
            )
        },
        {"operation": ["model.create", "application.delete"]},
        lambda rows: rows,
    ),
    "filter by time range": (
        {"query": resources_pb2.AuditLogQuery(timestamp_from=_stamp(T1), timestamp_to=_stamp(T2))},
        # timestamp_to is inclusive; the native until exclusive
        {"since": T1.isoformat(), "until": (T2 + timedelta(microseconds=1)).isoformat()},
        lambda rows: rows,
    ),
    "filter by target user": (
        {
            "query": resources_pb2.AuditLogQuery(
                targets=[resources_pb2.AuditLogTarget(user=resources_pb2.User(id="bob"))]
            )
        },
        {"target": "user:bob"},
        lambda rows: rows,
    ),
    "filter by acting users": (
        {"query": resources_pb2.AuditLogQuery(user_ids=["ana", "chen"])},
        {"actor": ["ana", "chen"]},
        lambda rows: rows,
    ),
    "filter by failure": (
        {"query": resources_pb2.AuditLogQuery(success=BoolValue(value=False))},
        {"success": "false"},
        lambda rows: rows,
    ),
    "filter by success": (
        {"query": resources_pb2.AuditLogQuery(success=BoolValue(value=True))},
        {"success": "true"},
        lambda rows: rows,
    ),
    "filter by source IP": (
        {"query": resources_pb2.AuditLogQuery(source_ips=["198.51.100.20"])},
        {"source_ip": "198.51.100.20"},
        lambda rows: rows,
    ),
    "sort ascending": ({"sort_ascending": True}, {"order": "asc"}, lambda rows: rows),
    "page 2 of 20": (
        {"pagination": service_pb2.Pagination(page=2, per_page=20)},
        {},
        lambda rows: rows[20:40],
    ),
}


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("example", list(EXAMPLES))
def test_documented_examples_return_what_the_native_api_returns(
    server: Server, channel: str, example: str
) -> None:
    request, filters, window = EXAMPLES[example]
    got = entries(clarifai(server, channel)(**request))
    expected = window(native(server, **filters))
    assert got == expected
    assert got, "every example matches some events"


@pytest.mark.parametrize("channel", CHANNELS)
def test_entries_carry_every_field_clarifai_has(server: Server, channel: str) -> None:
    query = resources_pb2.AuditLogQuery(operations=[resources_pb2.COLLABORATOR_ADD])
    response = clarifai(server, channel)(query=query, pagination=service_pb2.Pagination(per_page=1))
    assert response.status.description == "Ok"
    assert response.status.req_id
    (entry,) = response.entries
    assert entry.operation == resources_pb2.COLLABORATOR_ADD
    assert entry.user.id
    assert entry.user.first_name
    assert entry.user.last_name == "Doe"
    kinds = [t.WhichOneof("target") for t in entry.targets]
    assert kinds == ["app", "user", "role"]
    assert entry.targets[0].app.name == "The main"
    assert entry.targets[1].user.first_name == "The"
    assert entry.targets[1].user.last_name == "bob"
    assert entry.targets[2].role.name == "The editor"
    assert entry.description == "Collaborator added to an application"
    assert list(entry.details)
    assert entry.req_id.startswith("req-")
    assert entry.source_ip


@pytest.mark.parametrize("channel", CHANNELS)
def test_events_without_a_clarifai_event_type_are_left_out(server: Server, channel: str) -> None:
    rows = entries(clarifai(server, channel)(pagination=service_pb2.Pagination(per_page=1000)))
    without = [e for e in _events() if e["operation"] == "secret.create"]
    assert len(rows) == len(_events()) - len(without) > 0
    assert 0 not in {row[2] for row in rows}


def test_the_default_page_is_128_newest_first(server: Server) -> None:
    with Client(server.url, server.writer) as producer:
        producer.record_many(
            [{"time": (START - timedelta(days=30, seconds=i)).isoformat(), "actor": "old",
              "operation": "user.update", "targets": [{"type": "user", "id": "old"}]}
             for i in range(100)]
        )  # fmt: skip
    rows = entries(clarifai(server, "json")())
    assert len(rows) == 128
    assert rows == sorted(rows, key=lambda r: r[0], reverse=True)
    assert rows == native(server)[:128]


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_clarifai_search_is_recorded_in_the_log(server: Server, channel: str) -> None:
    marker = f"203.0.113.{ {'json': 201, 'grpc': 202}[channel] }"
    clarifai(server, channel)(query=resources_pb2.AuditLogQuery(source_ips=[marker]))
    deadline = time.monotonic() + 10
    with Client(server.url, server.reader) as reader:
        while True:
            records = [
                e for e in reader.events.list(operation="audit_log.search")
                if e["metadata"]["request"].get("api") == "clarifai"
                and e["metadata"]["request"].get("query", {}).get("source_ips") == [marker]
            ]  # fmt: skip
            if records or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert len(records) == 1


# -- failures -------------------------------------------------------------------------------


def _post(server: Server, body: bytes | str, key: str | None, user: str = "me") -> Any:
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["authorization"] = key
    return httpx.post(
        f"{server.url}/v2/users/{user}/audit_log/searches", content=body, headers=headers
    )


@pytest.mark.parametrize(
    ("body", "code", "word"),
    [
        ('{"query": {"operations": ["MODEL_EXPLODE"]}}', status_code_pb2.CONN_BAD_REQUEST_FORMAT,
         "MODEL_EXPLODE"),
        ('{"query": {"operations": [999]}}', status_code_pb2.CONN_INVALID_REQUEST, "999"),
        ('{"query": {"timestamp_from": "yesterday"}}', status_code_pb2.CONN_BAD_REQUEST_FORMAT,
         "timestamp"),
        ('{"query": {"timestamp_from": "2026-11-05T00:00:00Z", '
         '"timestamp_to": "2026-11-01T00:00:00Z"}}', status_code_pb2.CONN_INVALID_REQUEST,
         "later"),
        ('{"query": {"source_ips": ["not-an-ip"]}}', status_code_pb2.CONN_INVALID_REQUEST,
         "not-an-ip"),
        ('{"query": {"targets": [{}]}}', status_code_pb2.CONN_INVALID_REQUEST, "target"),
        ('{"pagination": {"per_page": 1001}}', status_code_pb2.CONN_INVALID_REQUEST, "1000"),
        ('{"pagination": {"page": 101, "per_page": 1000}}', status_code_pb2.CONN_INVALID_RANGE,
         "100,000"),
        ('{"sort": "up"}', status_code_pb2.CONN_BAD_REQUEST_FORMAT, "sort"),
        ("{not json", status_code_pb2.CONN_BAD_REQUEST_FORMAT, "JSON"),
        ("[1, 2]", status_code_pb2.CONN_BAD_REQUEST_FORMAT, ""),
        ("[]", status_code_pb2.CONN_BAD_REQUEST_FORMAT, "object"),
        (" 3", status_code_pb2.CONN_BAD_REQUEST_FORMAT, "object"),
    ],
)  # fmt: skip
def test_bad_rest_requests_get_clarifai_failure_statuses(
    server: Server, body: str, code: int, word: str
) -> None:
    response = _post(server, body, f"Key {server.reader}")
    assert response.status_code == 400
    status = response.json()["status"]
    assert status["code"] == code, status
    assert word in status["details"]
    assert status["description"]
    assert status["req_id"]


def test_timestamp_to_at_the_end_of_year_9999_searches_with_no_upper_bound(
    server: Server,
) -> None:
    body = '{"query": {"timestamp_to": "9999-12-31T23:59:59.999999999Z"}}'
    response = _post(server, body, f"Key {server.reader}")
    assert response.status_code == 200, response.text
    assert response.json()["status"]["code"] == status_code_pb2.SUCCESS
    everything = _post(server, "{}", f"Key {server.reader}").json()["entries"]
    assert response.json()["entries"] == everything


@pytest.mark.parametrize(
    ("header", "user", "code", "http"),
    [
        (None, "me", status_code_pb2.CONN_KEY_INVALID, 401),
        ("Key tk_000000000000_nope", "me", status_code_pb2.CONN_KEY_NOT_FOUND, 401),
        ("Key wrong", "me", status_code_pb2.CONN_KEY_NOT_FOUND, 401),
        ("Bearer {reader}", "me", status_code_pb2.CONN_KEY_INVALID, 401),
        ("Key {writer}", "me", status_code_pb2.CONN_INSUFFICIENT_SCOPES, 403),
        ("Key {reader}", "globex", status_code_pb2.CONN_INSUFFICIENT_SCOPES, 403),
    ],
)
def test_wrong_keys_get_clarifai_auth_failures_before_the_body_is_read(
    server: Server, header: str | None, user: str, code: int, http: int
) -> None:
    if header is not None:
        header = header.format(reader=server.reader, writer=server.writer)
    response = _post(server, "{not even json", header, user)
    assert response.status_code == http
    assert response.json()["status"]["code"] == code


@pytest.mark.parametrize("channel", CHANNELS)
def test_bad_requests_through_the_client_get_failure_statuses(server: Server, channel: str) -> None:
    search = clarifai(server, channel)
    unknown = search(query=resources_pb2.AuditLogQuery(operations=[999]))
    assert unknown.status.code == status_code_pb2.CONN_INVALID_REQUEST
    assert not unknown.entries
    if channel == "grpc":  # the JSON channel can't even write such a timestamp
        far = search(query=resources_pb2.AuditLogQuery(timestamp_from={"seconds": 10**12}))
        assert far.status.code == status_code_pb2.CONN_INVALID_REQUEST
        assert "9999" in far.status.details
    wrong = clarifai(server, channel, key="tk_000000000000_nope")()
    assert wrong.status.code == status_code_pb2.CONN_KEY_NOT_FOUND
    other = search(user_id="globex")
    assert other.status.code == status_code_pb2.CONN_INSUFFICIENT_SCOPES
    assert search(user_id="acme").status.code == status_code_pb2.SUCCESS


def test_an_app_limited_key_sees_only_its_apps(server: Server) -> None:
    limited = _key(server.db, "--org", "acme", "--scope", "events:read", "--app", "elsewhere")
    response = clarifai(server, "grpc", key=limited)()
    assert response.status.code == status_code_pb2.SUCCESS
    assert not response.entries


def test_other_v2_methods_are_unimplemented_over_grpc(server: Server) -> None:
    import grpc

    channel = ClarifaiChannel.get_insecure_grpc_channel(base="127.0.0.1", port=server.grpc_port)
    stub = service_pb2_grpc.V2Stub(channel)
    with pytest.raises(grpc.RpcError) as caught:
        stub.ListApps(service_pb2.ListAppsRequest(), metadata=(("authorization", "Key x"),))
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


# -- import ---------------------------------------------------------------------------------


def _local(db: str, org: str) -> list[dict[str, Any]]:
    from trailkeeper.service import AuditService

    with AuditService.open(db) as service:
        return [s.event.to_dict() for s in service.scan(org)]


def test_import_copies_the_clarifai_log_and_is_idempotent(server: Server, tmp_path: Path) -> None:
    local = f"sqlite:///{tmp_path / 'local.db'}"
    args = ("import", "clarifai", "--db", local, "--url", server.url, "--pat", server.reader,
            "--user-id", "acme")  # fmt: skip
    first = _cli(*args)
    assert first.returncode == 0, first.stderr
    remote = native(server, order="asc")
    assert f"accepted {len(remote)}, duplicates 0, skipped 0" in first.stdout
    copied = _local(local, "acme")
    assert sorted(_from_native(e) for e in copied) == sorted(remote)
    assert {e["metadata"]["imported_from"] for e in copied} == {"clarifai"}
    for event in copied:  # the app comes back from the app target
        apps = [t["id"] for t in event["targets"] if t["type"] == "app"]
        assert event["app_id"] == (apps[0] if apps else None)

    again = _cli(*args)
    assert again.returncode == 0, again.stderr
    assert f"accepted 0, duplicates {len(remote)}, skipped 0" in again.stdout
    assert len(_local(local, "acme")) == len(copied)


def test_import_pages_through_the_remote_log(server: Server, tmp_path: Path) -> None:
    from trailkeeper.clarifai import import_clarifai
    from trailkeeper.service import AuditService

    with AuditService.open(f"sqlite:///{tmp_path / 'paged.db'}") as service:
        result = import_clarifai(
            service, "copy", url=server.url, pat=server.reader, user_id="me", per_page=7
        )
        assert result.read == result.accepted == len(native(server)) == service.size("copy")
        assert result.skipped == []


def test_import_with_a_bad_pat_fails_clearly(server: Server, tmp_path: Path) -> None:
    local = f"sqlite:///{tmp_path / 'local.db'}"
    failed = _cli("import", "clarifai", "--db", local, "--url", server.url, "--pat", "nope",
                  "--user-id", "acme")  # fmt: skip
    assert failed.returncode != 0
    assert "11009" in failed.stderr
    assert "not valid" in failed.stderr
    me = _cli("import", "clarifai", "--db", local, "--url", server.url, "--pat", server.reader,
              "--user-id", "me")  # fmt: skip
    assert me.returncode != 0
    assert "--org" in me.stderr


def test_rest_takes_event_types_as_names_or_numbers(server: Server) -> None:
    body = (
        '{"query": {"operations": [300, "APPLICATION_DELETE"]}, "pagination": {"per_page": 1000}}'
    )
    response = _post(server, body, f"Key {server.reader}")
    assert response.status_code == 200
    payload = response.json()
    assert payload["status"] == {
        "code": 10000,
        "description": "Ok",
        "req_id": payload["status"]["req_id"],
    }
    operations = {entry["operation"] for entry in payload["entries"]}
    assert operations == {300, 602}
    expected = native(server, operation=["model.create", "application.delete"])
    assert len(payload["entries"]) == len(expected)
