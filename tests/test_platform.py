"""The reference platform: each endpoint records the expected events through the SDK,
and the demo plays a week of both organizations into a real log."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from _live_server import LiveServer
from conftest import ASGIClient
from trailkeeper.capture import Recorder
from trailkeeper.demo.platform import ROUTES, Platform, create_platform
from trailkeeper.demo.traffic import seed_users
from trailkeeper.events import StoredEvent
from trailkeeper.service import AuditService


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("platform") / "audit.db")
    live.start()
    yield live
    live.stop()


class World:
    """The platform in-process, auditing to the real server; people signed in."""

    def __init__(self, server: LiveServer, org: str, spool: Path) -> None:
        self.server = server
        self.org = org
        self.recorder = Recorder(server.url, keys={org: server.key(org)}, spool=spool)
        state = Platform()
        seed_users(state)
        for user in state.users.values():
            user.home_org = org
        app = create_platform(self.recorder, state, trusted_proxies=["127.0.0.1"])
        self.http = ASGIClient(app)
        self.tokens: dict[str, str] = {}
        for who in ("ana", "raj", "mei"):
            response = self.http.post("/login", json={"user": who, "password": who})
            self.tokens[who] = response.json()["token"]

    def call(self, who: str, method: str, path: str, body: dict[str, Any] | None = None,
             request_id: str | None = None, ip: str = "203.0.113.5") -> Any:  # fmt: skip
        headers = {"authorization": f"Bearer {self.tokens[who]}", "x-forwarded-for": ip}
        if request_id:
            headers["x-request-id"] = request_id
        return self.http.request(method, path.replace("ORG", self.org), json=body, headers=headers)

    def events(self) -> list[StoredEvent]:
        assert self.recorder.flush(10)
        return self.server.events(self.org)

    def by_request(self, request_id: str) -> list[tuple[str, bool, str, list[str]]]:
        return sorted(
            (e.event.operation, e.event.success, e.event.actor.id,
             [f"{t.type}:{t.id}" for t in e.event.targets])
            for e in self.events() if e.event.request_id == request_id
        )  # fmt: skip

    def close(self) -> None:
        self.http.close()
        self.recorder.close()
        assert self.recorder.counters().failed == 0


@pytest.fixture
def world(server: LiveServer, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    made = World(server, request.node.name.replace("_", "-")[:60], tmp_path / "spool.db")
    made.call("ana", "POST", "/orgs", {"id": made.org})
    for who, role in (("raj", "admin"), ("mei", "member")):
        made.call("ana", "POST", "/orgs/ORG/members", {"user": who, "role": role})
    yield made
    made.close()


def test_creating_an_app_records_three_events_sharing_the_request_id(world: World) -> None:
    created = world.call("mei", "POST", "/orgs/ORG/apps", {"id": "chat"}, request_id="make-chat")
    assert created.status_code == 200
    assert world.by_request("make-chat") == [
        ("application.create", True, "mei", ["app:chat"]),
        ("workflow.create", True, "mei", ["app:chat", "workflow:general"]),
        ("workflow.version.create", True, "mei", ["workflow:general", "workflow_version:v1"]),
    ]
    event = next(e.event for e in world.events() if e.event.request_id == "make-chat")
    assert (event.source_ip, event.app_id) == ("203.0.113.5", None)


def test_a_refused_action_is_recorded_as_a_failure(world: World) -> None:
    world.call("ana", "POST", "/orgs/ORG/apps", {"id": "core"})
    refused = world.call("mei", "DELETE", "/orgs/ORG/apps/core", request_id="mei-deletes")
    assert refused.status_code == 403
    assert world.by_request("mei-deletes") == [("application.delete", False, "mei", ["app:core"])]
    no_cluster = world.call("mei", "POST", "/orgs/ORG/clusters", {"id": "c"}, request_id="mei-c")
    assert no_cluster.status_code == 403
    [stored] = [e.event for e in world.events() if e.event.request_id == "mei-c"]
    assert stored.error is not None
    assert stored.error.code == "FORBIDDEN"
    assert stored.app_id is None


def test_training_records_the_run_and_its_version_or_the_quota_failure(world: World) -> None:
    world.call("ana", "POST", "/orgs/ORG/apps", {"id": "fraud"})
    world.call("ana", "POST", "/orgs/ORG/apps/fraud/models", {"id": "scorer"}, request_id="m")
    trained = world.call("raj", "POST", "/orgs/ORG/apps/fraud/models/scorer/train",
                         {"gpu_hours": 4}, request_id="train-ok")  # fmt: skip
    assert trained.json() == {"version": "v1"}
    too_much = world.call("raj", "POST", "/orgs/ORG/apps/fraud/models/scorer/train",
                          {"gpu_hours": 1000}, request_id="train-big")  # fmt: skip
    assert too_much.status_code == 429
    assert world.by_request("m") == [("model.create", True, "ana", ["app:fraud", "model:scorer"])]
    assert world.by_request("train-ok") == [
        ("model.train", True, "raj", ["model:scorer", "model_version:v1"]),
        ("model.version.create", True, "raj", ["model:scorer", "model_version:v1"]),
    ]
    assert world.by_request("train-big") == [("model.train", False, "raj", ["model:scorer"])]
    failed = next(e.event for e in world.events() if e.event.request_id == "train-big")
    assert failed.error is not None
    assert failed.error.code == "QUOTA_EXCEEDED"
    assert failed.app_id == "fraud"
    published = world.call("mei", "POST", "/orgs/ORG/apps/fraud/models/scorer/publish",
                           request_id="pub")  # fmt: skip
    assert published.status_code == 403  # mei has no access to ana's app
    assert world.by_request("pub") == [("model.publish", False, "mei", ["model:scorer"])]


def test_a_wrong_password_records_a_failed_sign_in(world: World) -> None:
    response = world.http.post("/login", json={"user": "mei", "password": "guess"},
                               headers={"x-request-id": "bad-login"})  # fmt: skip
    assert response.status_code == 401
    assert world.by_request("bad-login") == [("auth.login_failed", False, "mei", ["user:mei"])]


def test_members_invitations_teams_and_compute_are_audited(world: World) -> None:
    invited = world.call("ana", "POST", "/orgs/ORG/invitations", {"user": "zoe"}, request_id="i")
    invitation = invited.json()["id"]
    world.call("raj", "POST", "/orgs/ORG/teams", {"id": "ml"}, request_id="t")
    world.call("raj", "POST", "/orgs/ORG/teams/ml/members", {"user": "mei"}, request_id="tm")
    world.call("ana", "PATCH", "/orgs/ORG/members/mei", {"role": "admin"}, request_id="chg")
    world.call("ana", "DELETE", f"/orgs/ORG/invitations/{invitation}", request_id="cancel")
    world.call("raj", "POST", "/orgs/ORG/clusters", {"id": "gpu"}, request_id="c")
    world.call("raj", "POST", "/orgs/ORG/clusters/gpu/nodepools", {"id": "np"}, request_id="np")
    world.call("mei", "POST", "/orgs/ORG/clusters/gpu/nodepools/np/deployments", {"id": "d1"},
               request_id="dep")  # fmt: skip
    assert world.by_request("i") == [("organization.invitation.create", True, "ana",
                                      [f"organization:{world.org}", f"invitation:{invitation}",
                                       "user:zoe"])]  # fmt: skip
    assert world.by_request("t") == [("team.create", True, "raj", [f"organization:{world.org}",
                                                                    "team:ml"])]  # fmt: skip
    assert world.by_request("tm") == [("team.member.add", True, "raj", ["team:ml", "user:mei"])]
    change = next(e.event for e in world.events() if e.event.request_id == "chg")
    assert change.operation == "organization.member.change"
    assert change.changes == {"role": {"from": "member", "to": "admin"}}
    assert world.by_request("cancel")[0][:2] == ("organization.invitation.cancel", True)
    assert world.by_request("np") == [("nodepool.create", True, "raj",
                                       ["compute_cluster:gpu", "nodepool:np"])]  # fmt: skip
    assert world.by_request("dep") == [("deployment.create", True, "mei",
                                        ["nodepool:np", "deployment:d1"])]  # fmt: skip


def test_every_route_map_operation_is_in_the_catalogue() -> None:
    from trailkeeper.events import Catalogue

    catalogue = Catalogue.default()
    for route in ROUTES.values():
        name = route if isinstance(route, str) else route.operation
        assert catalogue.get(name) is not None, name


@pytest.mark.slow
def test_the_demo_plays_a_week_of_two_orgs_into_the_log(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    result = subprocess.run(
        [sys.executable, "-m", "trailkeeper.cli", "demo", "--db", db, "--no-serve", "--port", "0"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "/console" in result.stdout
    assert "Read key for org acme" in result.stdout
    with AuditService.open(db) as service:
        for org in ("acme", "globex"):
            events = [e.event for e in service.scan(org)]
            platform = [e for e in events if not e.operation.startswith("audit_log.")]
            assert len(platform) > 300
            span = max(e.time for e in platform) - min(e.time for e in platform)
            assert span.days >= 6
            assert len({e.actor.id for e in platform}) >= 3
            assert len({e.source_ip for e in platform}) >= 3
            assert len({e.operation for e in platform}) >= 15
            failures = [e for e in platform if not e.success]
            assert {e.error.code for e in failures if e.error} >= {"FORBIDDEN"}
            request_ids = [e.request_id for e in platform]
            assert len(set(request_ids)) < len(request_ids)  # some requests made several
        codes = {e.event.error.code for e in service.scan("acme") if e.event.error}
        codes |= {e.event.error.code for e in service.scan("globex") if e.event.error}
        assert {"PERMISSION_DENIED", "INVALID_CREDENTIALS", "QUOTA_EXCEEDED"} <= codes
