"""What the reading commands print: fitted to 80 and 100 columns on a terminal, tab-separated
when piped, and help that names values rather than Python types."""

from __future__ import annotations

import io
import os
import re

import pytest
from rich.console import Console

from conftest import LiveServer, run_cli
from trailkeeper.cli import _render
from trailkeeper.client import Client

ANSI = re.compile(r"\x1b\[[0-9;]*m")
TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  ")

EVENTS = [
    {"time": "2026-01-02T03:04:05Z", "actor": {"id": "svc-deploy-bot-production-eu-west-1"},
     "operation": "workflow.version.create", "source_ip": "2001:db8:85a3::8a2e:370:7334",
     "targets": [{"type": "workflow", "id": "0190b4a6-7c00-7000-8000-000000000001"},
                 {"type": "app", "id": "fraud-detection-main"}],
     "success": False, "error": {"code": "PERMISSION_DENIED"}},
    {"time": "2026-01-02T03:04:06Z", "actor": {"id": "ana"}, "operation": "model.create",
     "source_ip": "10.0.0.1", "targets": [{"type": "model", "id": "scorer"}]},
]  # fmt: skip


def _terminal(width: int) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=width, force_terminal=True, color_system=None), out


@pytest.mark.parametrize("width", [80, 100])
def test_search_rows_fit_the_terminal_one_line_each_with_whole_times(width: int) -> None:
    term, out = _terminal(width)
    rows = [_render.row(e) for e in EVENTS]
    _render.print_rows(term, rows, header=_render.HEADER, give=_render.GIVE)
    header, *lines = out.getvalue().splitlines()
    assert header.startswith("WHEN (UTC)")
    assert len(lines) == len(EVENTS)  # no row wrapped onto a second line
    assert all(len(line) <= width for line in [header, *lines])
    assert all(TIME.match(line) for line in lines)
    assert "model.create" in lines[1]
    assert "FAILED" in lines[0]
    assert "…" in lines[0]  # the long cells are cut, not folded
    if width == 100:
        assert "workflow.version.create" in lines[0]
        assert "FAILED PERMISSION_DENIED" in lines[0]


@pytest.mark.parametrize("width", [80, 100])
def test_tail_lines_fit_the_terminal(width: int) -> None:
    term, out = _terminal(width)
    for event in EVENTS:
        _render.print_rows(term, [_render.row(event)], header=None, give=_render.GIVE,
                           widths=_render.TAIL_WIDTHS)  # fmt: skip
    lines = out.getvalue().splitlines()
    assert len(lines) == len(EVENTS)
    assert all(len(line) <= width and TIME.match(line) for line in lines)
    assert "model.create" in lines[1]
    if width == 100:
        assert "workflow.version.create" in lines[0]


def test_piped_rows_are_tab_separated_and_whole() -> None:
    out = io.StringIO()
    piped = Console(file=out, force_terminal=False)
    _render.print_rows(piped, [_render.row(e) for e in EVENTS], header=_render.HEADER, give={})
    header, first, second = out.getvalue().splitlines()
    assert header.split("\t") == list(_render.HEADER)
    assert first.split("\t")[1:3] == ["svc-deploy-bot-production-eu-west-1",
                                      "workflow.version.create"]  # fmt: skip
    assert second.split("\t")[0] == "2026-01-02 03:04:06"
    assert "…" not in first


@pytest.fixture
def remote(live_server: LiveServer) -> tuple[str, ...]:
    writer = live_server.key("--org", "acme", "--scope", "events:write")
    reader = live_server.key("--org", "acme", "--scope", "events:read")
    with Client(live_server.url, writer) as producer:
        producer.record_many([
            {"actor": "svc-deploy-bot-production-eu-west-1", "operation": "model.create",
             "targets": [{"type": "model", "id": "0190b4a6-7c00-7000-8000-000000000001"}],
             "source_ip": "2001:db8:85a3::8a2e:370:7334"},
        ])  # fmt: skip
    return ("--url", live_server.url, "--key", reader)


@pytest.mark.parametrize("width", [80, 100])
def test_search_and_operations_on_a_terminal_fit_it(remote: tuple[str, ...], width: int) -> None:
    terminal = {**os.environ, "TTY_COMPATIBLE": "1", "NO_COLOR": "1", "COLUMNS": str(width)}
    found = run_cli("search", *remote, "operation:model.*", env=terminal)
    assert found.returncode == 0, found.stderr
    header, *lines = ANSI.sub("", found.stdout).splitlines()  # bold is kept under NO_COLOR
    assert len(lines) == 1
    assert all(len(line) <= width for line in [header, *lines])
    assert TIME.match(lines[0])
    assert "model.create" in lines[0]
    ops = run_cli("operations", "--url", remote[1], env=terminal)
    assert ops.returncode == 0, ops.stderr
    listed = ANSI.sub("", ops.stdout).splitlines()
    assert all(len(line) <= width for line in listed)
    assert any(line.startswith("model.create ") for line in listed)


def test_piped_search_is_tab_separated_not_a_fixed_width(remote: tuple[str, ...]) -> None:
    found = run_cli("search", *remote, "operation:model.*")
    assert found.returncode == 0, found.stderr
    header, row = found.stdout.splitlines()
    assert header.split("\t") == list(_render.HEADER)
    assert row.split("\t")[1:4] == ["svc-deploy-bot-production-eu-west-1", "model.create",
                                    "model:0190b4a6-7c00-7000-8000-000000000001"]  # fmt: skip
    ops = run_cli("operations", "--url", remote[1]).stdout.splitlines()
    assert ops[0].split("\t") == ["OPERATION", "DESCRIPTION", "CLARIFAI EVENT TYPE"]
    assert all(line == line.rstrip() for line in ops)


def test_help_names_values_and_offers_only_what_is_accepted() -> None:
    help = run_cli("search", "--help", env={**os.environ, "COLUMNS": "100"}).stdout
    assert "<list[str]>" not in help
    assert "--failed " in help
    assert "<bool>" not in help.replace("-h      <bool>", "")  # click's own --help aside
    ops = run_cli("operations", "--help", env={**os.environ, "COLUMNS": "100"}).stdout
    assert "csv" not in ops
    refused = run_cli("operations", "--format", "csv")
    assert refused.returncode == 2
