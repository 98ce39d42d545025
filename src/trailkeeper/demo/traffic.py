"""Traffic for the reference platform: a realistic week of two organizations, then live.

Several people and services, each from their own addresses (sent as ``X-Forwarded-For``
through the platform's trusted local proxy) and clients, doing what people do on an AI
platform: sign in, create apps, train and publish models, deploy, invite colleagues, and
sometimes try what they may not do, mistype a password or run out of GPU quota.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from ._state import Platform, User


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    name: str
    org: str
    role: str  # owner, admin, member (services are members)
    addresses: tuple[str, ...]
    agent: str
    kind: str = "user"


CONSOLE = "Mozilla/5.0 (Console)"
PEOPLE = (
    Person("ana", "Ana Lima", "acme", "owner", ("203.0.113.10", "203.0.113.11"), CONSOLE),
    Person("raj", "Raj Patel", "acme", "admin", ("198.51.100.7",), "clarifai-python/11.2"),
    Person("mei", "Mei Chen", "acme", "member", ("203.0.113.44", "2001:db8:5::17"), CONSOLE),
    Person("ci-bot", "CI bot", "acme", "member", ("10.20.0.5",), "github-actions/2.3", "service"),
    Person("tom", "Tom Berg", "globex", "owner", ("192.0.2.33",), CONSOLE),
    Person("zoe", "Zoe Adams", "globex", "member", ("192.0.2.80", "198.51.100.23"), "curl/8.5"),
    Person("deploy-svc", "Deploy svc", "globex", "member", ("10.30.1.9",), "argo/3.5", "service"),
)  # fmt: skip
ORGS = ("acme", "globex")


class SimClock:
    """The platform's event clock: simulated while the week plays, then real time."""

    def __init__(self) -> None:
        self.now: datetime | None = None

    def __call__(self) -> int:
        if self.now is None:
            return time.time_ns()
        return int(self.now.timestamp() * 1_000_000) * 1000


def seed_users(platform: Platform) -> None:
    """The platform's accounts (it has no sign-up endpoint); the password is the user id."""
    for person in PEOPLE:
        platform.add_user(User(person.id, person.name, person.id, person.kind, person.org))


@dataclass
class _World:
    """What the traffic knows it made, to aim at (and sometimes miss)."""

    apps: dict[str, list[str]] = field(default_factory=dict)  # org -> apps
    models: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (org, app) -> models
    workflows: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    deployments: dict[str, list[str]] = field(default_factory=dict)  # org -> deployments
    invitations: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)


class Traffic:
    """Plays requests against the platform at ``base_url`` over real HTTP."""

    def __init__(self, base_url: str, clock: SimClock, seed: int = 2026) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30)
        self.clock = clock
        self.rng = random.Random(seed)
        self.world = _World()
        self.requests = 0
        self.last: httpx.Response | None = None
        self.by_id = {p.id: p for p in PEOPLE}

    def close(self) -> None:
        self.http.close()

    def call(self, who: str, method: str, path: str, body: dict[str, Any] | None = None) -> int:
        person = self.by_id[who]
        headers = {
            "x-forwarded-for": self.rng.choice(person.addresses),
            "user-agent": person.agent,
        }
        token = self.world.tokens.get(who)
        if token:
            headers["authorization"] = f"Bearer {token}"
        self.last = self.http.request(method, path, json=body, headers=headers)
        self.requests += 1
        return self.last.status_code

    def login(self, who: str, password: str | None = None) -> None:
        person = self.by_id[who]
        response = self.http.post(
            "/login",
            json={"user": who, "password": password or who},
            headers={"x-forwarded-for": person.addresses[0], "user-agent": person.agent},
        )
        self.requests += 1
        if response.status_code == 200:
            self.world.tokens[who] = response.json()["token"]

    # -- the story ----------------------------------------------------------------------------

    def setup(self, at: datetime) -> None:
        """Day one: the orgs, their people, teams, first apps and compute."""
        for person in PEOPLE:
            self.login(person.id)
        for org, owner in (("acme", "ana"), ("globex", "tom")):
            self.call(owner, "POST", "/orgs", {"id": org})
            for person in (p for p in PEOPLE if p.org == org and p.id != owner):
                status = self.call(owner, "POST", f"/orgs/{org}/invitations", {"user": person.id})
                if status == 200 and self.last is not None:
                    invitation = self.last.json()["id"]
                    self.call(person.id, "POST", f"/orgs/{org}/invitations/{invitation}/accept")
                if person.role == "admin":
                    self.call(owner, "PATCH", f"/orgs/{org}/members/{person.id}", {"role": "admin"})
            self.call(owner, "POST", f"/orgs/{org}/teams", {"id": "ml-platform"})
            for person in (p for p in PEOPLE if p.org == org):
                body = {"user": person.id}
                self.call(owner, "POST", f"/orgs/{org}/teams/ml-platform/members", body)
            self.call(
                owner, "POST", f"/orgs/{org}/clusters", {"id": "gpu-east", "region": "us-east-1"}
            )
            self.call(
                owner, "POST", f"/orgs/{org}/clusters/gpu-east/nodepools", {"id": "a10g-pool"}
            )
        for org, owner, app in (("acme", "ana", "fraud-detect"), ("acme", "mei", "support-bot"),
                                ("globex", "tom", "vision-qa")):  # fmt: skip
            self._create_app(org, owner, app)

    def _create_app(self, org: str, who: str, app: str) -> None:
        if self.call(who, "POST", f"/orgs/{org}/apps", {"id": app, "description": "draft"}) < 300:
            self.world.apps.setdefault(org, []).append(app)
            self.world.workflows[(org, app)] = ["general"]
            owner = next(p.id for p in PEOPLE if p.org == org and p.role == "owner")
            if self.rng.random() < 0.8:  # most apps are shared with the team
                self.call(owner, "POST", f"/orgs/{org}/teams/ml-platform/apps", {"app": app})

    def step(self) -> None:
        """One thing someone does."""
        person = self.rng.choice(PEOPLE)
        org, who = person.org, person.id
        apps = self.world.apps.get(org) or ["missing-app"]
        app = self.rng.choice(apps)
        models = self.world.models.setdefault((org, app), [])
        base = f"/orgs/{org}/apps/{app}"
        roll = self.rng.random()
        if roll < 0.06:
            # Sign in again; now and then with a mistyped password.
            self.login(who, None if self.rng.random() < 0.7 else "hunter2")
        elif roll < 0.18:
            model = f"{app}-m{self.rng.randrange(100)}"
            if self.call(who, "POST", f"{base}/models", {"id": model}) < 300:
                models.append(model)
        elif roll < 0.40 and models:
            hours = self.rng.choice([1, 2, 2, 4, 8, 16])
            gpu = self.rng.choice(["a10g", "l4", "h100"])
            self.call(who, "POST", f"{base}/models/{self.rng.choice(models)}/train",
                      {"gpu_hours": hours, "gpu": gpu})  # fmt: skip
        elif roll < 0.48 and models:
            self.call(who, "POST", f"{base}/models/{self.rng.choice(models)}/publish")
        elif roll < 0.53 and models:
            model = self.rng.choice(models)
            if self.call(who, "DELETE", f"{base}/models/{model}") < 300:
                models.remove(model)
        elif roll < 0.60:
            self.call(
                who,
                "PATCH",
                base,
                {
                    "description": self.rng.choice(
                        ["ready for review", "in production", "deprecated soon", "v2 in progress"]
                    )
                },
            )
        elif roll < 0.66:
            workflow = self.rng.choice(self.world.workflows.get((org, app), ["general"]))
            action = self.rng.choice(["versions", "versions", "publish"])
            self.call(who, "POST", f"{base}/workflows/{workflow}/{action}")
        elif roll < 0.70:
            workflow = f"pipeline-{self.rng.randrange(20)}"
            if self.call(who, "POST", f"{base}/workflows", {"id": workflow}) < 300:
                self.world.workflows.setdefault((org, app), []).append(workflow)
        elif roll < 0.76:
            other = self.rng.choice([p.id for p in PEOPLE if p.org == org and p.id != who])
            self.call(who, "POST", f"{base}/collaborators", {"user": other, "role": "reviewer"})
        elif roll < 0.84:
            deployment = f"{app}-prod-{self.rng.randrange(50)}"
            path = f"/orgs/{org}/clusters/gpu-east/nodepools/a10g-pool/deployments"
            if self.call(who, "POST", path, {"id": deployment}) < 300:
                self.world.deployments.setdefault(org, []).append(deployment)
        elif roll < 0.87 and self.world.deployments.get(org):
            deployment = self.rng.choice(self.world.deployments[org])
            path = f"/orgs/{org}/clusters/gpu-east/nodepools/a10g-pool/deployments/{deployment}"
            if self.call(who, "DELETE", path) < 300:
                self.world.deployments[org].remove(deployment)
        elif roll < 0.90:
            self.call(who, "POST", f"{base}/modules", {"id": f"module-{self.rng.randrange(30)}"})
        elif roll < 0.93:
            copy = f"{app}-copy-{self.rng.randrange(100)}"
            if self.call(who, "POST", f"{base}/duplicate", {"id": copy}) < 300:
                self.world.apps[org].append(copy)
        elif roll < 0.95:
            self._create_app(org, who, f"{org}-app-{self.rng.randrange(100)}")
        elif roll < 0.97:
            self.call(who, "POST", f"/orgs/{org}/clusters", {"id": f"cpu-{self.rng.randrange(9)}"})
        elif roll < 0.985 and len(apps) > 1:
            if self.call(who, "DELETE", base) < 300:  # refused unless it is theirs or an admin's
                apps.remove(app)
        else:
            self.call(who, "POST", f"/orgs/{org}/teams/ml-platform/members", {"user": who})

    def play_week(self, end: datetime, mean_gap: timedelta = timedelta(minutes=5)) -> None:
        """Set up a week before ``end`` and play it, busier in working hours."""
        when = end - timedelta(days=7)
        self.clock.now = when
        self.setup(when)
        while True:
            gap = self.rng.expovariate(1 / mean_gap.total_seconds())
            if not 7 <= when.hour < 20:
                gap *= 4  # nights are quiet
            when += timedelta(seconds=gap)
            if when >= end:
                break
            self.clock.now = when
            self.step()
        self.clock.now = None

    def run_live(self, stop: threading.Event, pace: Callable[[], float] | None = None) -> None:
        """Keep going at real time, a request every few seconds, until ``stop`` is set."""
        self.clock.now = None
        while not stop.wait(pace() if pace else self.rng.uniform(1.0, 4.0)):
            try:
                self.step()
            except httpx.HTTPError:
                return  # the platform is shutting down
