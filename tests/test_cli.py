"""The command line, run as a user runs it: real processes, a real database file, and for the
reading commands a real server on a real port."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import LiveServer, free_port, new_key, run_cli
from trailkeeper.client import Client
from trailkeeper.events import BUILTIN_OPERATIONS


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def test_demo_loads_two_orgs_and_shows_them(db: str) -> None:
    result = run_cli("demo", "--db", db, "--no-serve", "--port", "0")
    assert result.returncode == 0, result.stderr
    assert "acme:" in result.stdout
    assert "globex:" in result.stdout
    again = run_cli("demo", "--db", db, "--no-serve", "--port", "0")  # a second run adds nothing
    first_count = result.stdout.split("acme: ")[1].split(" ")[0]
    assert again.stdout.split("acme: ")[1].split(" ")[0] == first_count


def test_ingest_counts_accepted_and_duplicate_events(db: str) -> None:
    lines = json.dumps({"id": "0190b4a6-7c00-7000-8000-000000000001", "actor": "ana",
                        "operation": "model.create"}) + "\n"  # fmt: skip
    first = run_cli("ingest", "--db", db, "--org", "acme", "-", stdin=lines)
    assert first.returncode == 0, first.stderr
    assert "accepted 1, duplicates 0" in first.stdout
    again = run_cli("ingest", "--db", db, "--org", "acme", "-", stdin=lines)
    assert "accepted 0, duplicates 1" in again.stdout


def test_invalid_input_exits_2_with_the_reason(db: str) -> None:
    bad = run_cli(
        "ingest", "--db", db, "--org", "acme", "-", stdin='{"actor": "a", "operation": "x.y"}\n'
    )
    assert bad.returncode == 2
    assert "unknown operation 'x.y'" in bad.stderr
    not_json = run_cli("ingest", "--db", db, "--org", "acme", "-", stdin="{nope\n")
    assert not_json.returncode == 2
    assert "line 1: not JSON" in not_json.stderr
    scope = run_cli("keys", "create", "--db", db, "--org", "acme", "--scope", "events:delete")
    assert scope.returncode == 2
    assert "events:delete" in scope.stderr


@pytest.fixture
def loaded(live_server: LiveServer) -> tuple[LiveServer, tuple[str, ...]]:
    writer = live_server.key("--org", "acme", "--scope", "events:write")
    reader = live_server.key("--org", "acme", "--scope", "events:read", "--name", "cli reader")
    with Client(live_server.url, writer) as producer:
        producer.record_many(
            [
                {"actor": "ana", "operation": "model.create", "source_ip": "10.0.0.1",
                 "targets": [{"type": "model", "id": "scorer"}]},
                {"actor": "raj", "operation": "team.create", "source_ip": "192.0.2.1",
                 "success": False, "error": {"code": "DENIED", "message": "no"}},
            ]
        )  # fmt: skip
    return live_server, ("--url", live_server.url, "--key", reader)


def test_search_through_the_server_in_every_format(
    loaded: tuple[LiveServer, tuple[str, ...]],
) -> None:
    _, remote = loaded
    jsonl = run_cli("search", *remote, "--ip", "10.0.0.0/8", "--format", "jsonl")
    assert jsonl.returncode == 0, jsonl.stderr
    assert [json.loads(line)["actor"]["id"] for line in jsonl.stdout.splitlines()] == ["ana"]
    failed = run_cli("search", *remote, "--failed", "--format", "csv")
    rows = list(csv.reader(failed.stdout.splitlines()))
    assert rows[0][:3] == ["time", "actor", "operation"]
    assert [r[1] for r in rows[1:]] == ["raj"]
    as_json = run_cli("search", *remote, "operation:model.*", "--format", "json")
    assert [e["operation"] for e in json.loads(as_json.stdout)] == ["model.create"]
    table = run_cli("search", *remote)
    assert "WHO" in table.stdout
    assert "FAILED DENIED" in table.stdout
    assert "model:scorer" in table.stdout


def test_search_limit_reads_as_many_pages_as_it_needs(
    loaded: tuple[LiveServer, tuple[str, ...]],
) -> None:
    server, remote = loaded
    writer = server.key("--org", "acme", "--scope", "events:write")
    with Client(server.url, writer) as producer:
        producer.record_many([{"actor": f"u{i}", "operation": "model.create"} for i in range(1000)])
        producer.record_many([{"actor": f"v{i}", "operation": "model.create"} for i in range(500)])
    found = run_cli("search", *remote, "operation:model.create", "--limit", "1200",
                    "--format", "jsonl")  # fmt: skip
    ids = [json.loads(line)["id"] for line in found.stdout.splitlines()]
    assert len(ids) == len(set(ids)) == 1200


def test_refused_searches_say_why(loaded: tuple[LiveServer, tuple[str, ...]]) -> None:
    server, remote = loaded
    bad_ip = run_cli("search", *remote, "--ip", "not-an-ip")
    assert bad_ip.returncode == 2
    assert "CIDR" in bad_ip.stderr
    bad_query = run_cli("search", *remote, "status:maybe")
    assert bad_query.returncode == 2
    assert "status" in bad_query.stderr
    no_key = run_cli("search", "--url", server.url)
    assert no_key.returncode == 2
    assert "TRAILKEEPER_KEY" in no_key.stderr
    wrong_key = run_cli("search", "--url", server.url, "--key", "tk_000000000000_nope")
    assert wrong_key.returncode == 2
    assert "not valid" in wrong_key.stderr
    down = run_cli("search", "--url", f"http://127.0.0.1:{free_port()}", "--key", "tk_x")
    assert down.returncode == 2
    assert "cannot reach the server" in down.stderr


def test_the_key_and_url_come_from_the_environment(
    loaded: tuple[LiveServer, tuple[str, ...]],
) -> None:
    _, remote = loaded
    env = {"TRAILKEEPER_URL": remote[1], "TRAILKEEPER_KEY": remote[3], "PATH": "/usr/bin"}
    found = run_cli("search", "operation:team.*", "--format", "jsonl", env=env)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["actor"]["id"] == "raj"


def test_tail_prints_the_backlog_then_follows_new_events(
    loaded: tuple[LiveServer, tuple[str, ...]],
) -> None:
    server, remote = loaded
    tail = subprocess.Popen(
        [sys.executable, "-m", "trailkeeper.cli", "tail", *remote, "--last", "5",
         "--count", "3", "--format", "jsonl", "--", "-operation:audit_log.*"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert tail.stdout is not None
    assert tail.stderr is not None
    try:
        backlog = [json.loads(tail.stdout.readline()) for _ in range(2)]
        assert [e["operation"] for e in backlog] == ["model.create", "team.create"]
        writer = server.key("--org", "acme", "--scope", "events:write")
        with Client(server.url, writer) as producer:
            # An old time: a time-ordered poll would miss it; the seq-ordered tail does not.
            producer.record("application.delete", actor="zoe", time="2020-01-01T00:00:00Z",
                            targets=[{"type": "app", "id": "old"}])  # fmt: skip
        late = json.loads(tail.stdout.readline())
        assert (late["operation"], late["actor"]["id"]) == ("application.delete", "zoe")
        assert tail.wait(timeout=30) == 0
    finally:
        tail.kill()
        tail.wait()
        tail.stdout.close()
        tail.stderr.close()


def test_export_writes_a_file_with_a_summary(
    loaded: tuple[LiveServer, tuple[str, ...]], tmp_path: Path
) -> None:
    _, remote = loaded
    out = tmp_path / "failures.csv"
    result = run_cli("export", *remote, "status:failure", "--format", "csv", "--output", str(out))
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert [r["actor_id"] for r in rows] == ["raj"]
    assert f"exported 1 events to {out}" in result.stderr
    to_stdout = run_cli("export", *remote, "--format", "jsonl")
    assert len(to_stdout.stdout.splitlines()) >= 2


def test_operations_lists_the_servers_whole_catalogue(live_server: LiveServer) -> None:
    listed = run_cli("operations", "--url", live_server.url, "--format", "json")
    assert listed.returncode == 0, listed.stderr
    names = {op["name"] for op in json.loads(listed.stdout)}
    assert names >= {op.name for op in BUILTIN_OPERATIONS}
    table = run_cli("operations", "--url", live_server.url)
    assert "ORG_MEMBER_ADD" in table.stdout or "model.create" in table.stdout


def test_every_read_through_the_cli_is_itself_recorded(
    loaded: tuple[LiveServer, tuple[str, ...]],
) -> None:
    _, remote = loaded
    run_cli("search", *remote, "operation:team.*", "--format", "jsonl")
    time.sleep(0.5)  # reads are recorded in the background, within 200 ms
    own = run_cli("search", *remote, "operation:audit_log.search", "--format", "jsonl")
    actors = {json.loads(line)["actor"]["name"] for line in own.stdout.splitlines()}
    assert actors == {"cli reader"}


def test_tail_says_when_the_server_is_not_there_instead_of_waiting() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    down = run_cli("tail", "--url", url, "--key", "tk_x", timeout=20)
    assert down.returncode == 2
    assert f"cannot reach the server at {url}" in down.stderr


def test_export_to_a_path_it_cannot_write_is_one_line_not_a_traceback(
    loaded: tuple[LiveServer, tuple[str, ...]],
) -> None:
    _, remote = loaded
    bad = run_cli("export", *remote, "--output", "/nonexistent/x.csv", "--format", "csv")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "trailkeeper: cannot write /nonexistent/x.csv: No such file or directory"
    ]


def test_a_failed_export_leaves_an_existing_file_as_it_was(
    loaded: tuple[LiveServer, tuple[str, ...]], tmp_path: Path
) -> None:
    _, remote = loaded
    (tmp_path / "exports").mkdir()
    kept = tmp_path / "exports" / "backup.jsonl"
    kept.write_bytes(b"precious line 1\n")
    bad_query = run_cli("export", "bogus:thing", *remote, "--output", str(kept))
    assert bad_query.returncode == 2
    assert kept.read_bytes() == b"precious line 1\n"
    assert [p.name for p in kept.parent.iterdir()] == ["backup.jsonl"]  # no partial file left
    good = run_cli("export", *remote, "--output", str(kept))
    assert good.returncode == 0, good.stderr
    assert f"to {kept}" in good.stderr
    assert kept.read_bytes().count(b"\n") > 1


def test_keys_list_and_revoke_speak_plainly_about_missing_keys(db: str) -> None:
    empty = run_cli("keys", "list", "--db", db, "--org", "acme")
    assert empty.returncode == 0, empty.stderr
    assert empty.stdout.strip() == "no keys for org acme"
    unknown = run_cli("keys", "revoke", "--db", db, "--org", "acme", "k_nope")
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == "trailkeeper: org 'acme' has no key 'k_nope'"


def test_since_and_until_take_spans_as_the_query_does(
    loaded: tuple[LiveServer, tuple[str, ...]],
) -> None:
    _, remote = loaded
    recent = run_cli("search", *remote, "operation:model.*", "--since", "7d", "--format", "jsonl")
    assert recent.returncode == 0, recent.stderr
    assert [json.loads(line)["operation"] for line in recent.stdout.splitlines()] == [
        "model.create"
    ]
    older = run_cli("search", *remote, "--until", "7d", "--format", "jsonl")
    assert (older.returncode, older.stdout) == (0, "")
    bad = run_cli("search", *remote, "--since", "7x")
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1
    assert "--since: '7x' is not a date" in bad.stderr


def test_a_value_after_a_switch_is_refused_not_searched_for(
    loaded: tuple[LiveServer, tuple[str, ...]],
) -> None:
    _, remote = loaded
    for value in ("true", "false", "True"):
        stray = run_cli("search", *remote, "--failed", value)
        assert stray.returncode == 2
        assert "--failed is a switch and takes no value: write --failed alone" in stray.stderr
        assert stray.stdout == ""
    # After "--" a word is the query's, even "true".
    text = run_cli("search", *remote, "--failed", "--format", "jsonl", "--", "true")
    assert text.returncode == 0, text.stderr


def test_keys_list_has_a_header_dates_and_each_keys_state(db: str) -> None:
    first = new_key(db, "--org", "acme", "--scope", "events:read", "--name", "reader")
    new_key(db, "--org", "acme", "--scope", "events:write", "--expires", "90d")
    listed = run_cli("keys", "list", "--db", db, "--org", "acme")
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["ID", "STATE", "CREATED", "(UTC)", "EXPIRES", "(UTC)", "SCOPES",
                              "APPS", "NAME"]  # fmt: skip
    assert len(rows) == 2
    assert [row.split()[1] for row in rows] == ["active", "active"]
    assert " - " in rows[0]  # no expiry
    assert rows[0].endswith("reader")
    key_id = first.split("_")[1]
    revoked = run_cli("keys", "revoke", "--db", db, "--org", "acme", key_id)
    assert revoked.stdout.strip() == f"revoked {key_id}"
    again = run_cli("keys", "revoke", "--db", db, "--org", "acme", key_id)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"key {key_id} was already revoked at ")
    assert len(again.stdout.splitlines()) == 1
    states = run_cli("keys", "list", "--db", db, "--org", "acme").stdout.splitlines()[1:]
    assert [row.split()[1] for row in states] == ["revoked", "active"]


def test_search_hides_the_logs_own_reads_unless_asked(
    loaded: tuple[LiveServer, tuple[str, ...]],
) -> None:
    _, remote = loaded
    run_cli("search", *remote, "--format", "jsonl")
    time.sleep(0.5)  # reads are recorded in the background, within 200 ms
    again = run_cli("search", *remote, "--format", "jsonl")
    shown = [json.loads(line)["operation"] for line in again.stdout.splitlines()]
    assert shown[:2] == ["team.create", "model.create"]
    assert "audit_log.key.create" in shown  # what the log records of itself, but reads, shows
    assert not {"audit_log.search", "audit_log.stream", "audit_log.export"} & set(shown)
    own = run_cli("search", *remote, "--include-own-reads", "--format", "jsonl")
    assert "audit_log.search" in {json.loads(line)["operation"] for line in own.stdout.splitlines()}


def test_tail_does_not_show_its_own_stream_opening(
    loaded: tuple[LiveServer, tuple[str, ...]],
) -> None:
    server, remote = loaded
    writer = server.key("--org", "acme", "--scope", "events:write")  # before: its creation shows
    tail = subprocess.Popen(
        [sys.executable, "-m", "trailkeeper.cli", "tail", *remote, "--last", "0",
         "--count", "1", "--format", "jsonl"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert tail.stdout is not None
    assert tail.stderr is not None
    try:
        time.sleep(1.5)  # the stream is open and its opening recorded by now
        with Client(server.url, writer) as producer:
            producer.record("model.delete", actor="zoe")
        assert json.loads(tail.stdout.readline())["operation"] == "model.delete"
        assert tail.wait(timeout=30) == 0
    finally:
        tail.kill()
        tail.wait()
        tail.stdout.close()
        tail.stderr.close()
