"""The reference platform's own state and its permission rules (in memory).

Small on purpose, but real: an action the rules refuse raises ``PlatformError`` with a 403,
a missing thing a 404, a clash a 409, and a training run over the org's GPU budget a 429.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

ROLES = ("owner", "admin", "member")


class PlatformError(Exception):
    """A refused or failed action: ``status`` for HTTP, ``code`` for the audit event."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def refuse(message: str) -> PlatformError:
    return PlatformError(403, "PERMISSION_DENIED", message)


def missing(what: str, ident: str) -> PlatformError:
    return PlatformError(404, "NOT_FOUND", f"{what} {ident!r} does not exist")


@dataclass
class User:
    id: str
    name: str
    password: str
    kind: str = "user"  # or "service"
    home_org: str | None = None  # whose log records what the user does outside any org

    def actor(self) -> dict[str, str]:
        return {"id": self.id, "type": self.kind, "name": self.name}


@dataclass
class Model:
    id: str
    versions: list[str] = field(default_factory=list)
    published: bool = False


@dataclass
class Workflow:
    id: str
    versions: list[str] = field(default_factory=list)
    published: bool = False


@dataclass
class App:
    id: str
    owner: str
    description: str = ""
    collaborators: dict[str, str] = field(default_factory=dict)  # user -> role
    models: dict[str, Model] = field(default_factory=dict)
    workflows: dict[str, Workflow] = field(default_factory=dict)
    modules: set[str] = field(default_factory=set)


@dataclass
class Nodepool:
    id: str
    deployments: set[str] = field(default_factory=set)


@dataclass
class Cluster:
    id: str
    nodepools: dict[str, Nodepool] = field(default_factory=dict)


@dataclass
class Team:
    id: str
    members: set[str] = field(default_factory=set)
    apps: set[str] = field(default_factory=set)


@dataclass
class Org:
    id: str
    members: dict[str, str] = field(default_factory=dict)  # user -> role
    invitations: dict[str, str] = field(default_factory=dict)  # invitation id -> user
    teams: dict[str, Team] = field(default_factory=dict)
    apps: dict[str, App] = field(default_factory=dict)
    clusters: dict[str, Cluster] = field(default_factory=dict)
    gpu_hours_left: float = 300.0

    def role(self, user: User) -> str | None:
        return self.members.get(user.id)

    def require_member(self, user: User) -> None:
        if user.id not in self.members:
            raise refuse(f"{user.id} is not a member of {self.id}")

    def require_admin(self, user: User) -> None:
        if self.members.get(user.id) not in ("owner", "admin"):
            raise refuse(f"{user.id} is not an admin of {self.id}")

    def app(self, app_id: str) -> App:
        found = self.apps.get(app_id)
        if found is None:
            raise missing("app", app_id)
        return found

    def require_app_owner(self, user: User, app: App) -> None:
        if app.owner != user.id and self.members.get(user.id) not in ("owner", "admin"):
            raise refuse(f"{user.id} is not an owner of app {app.id}")

    def require_app_access(self, user: User, app: App) -> None:
        if app.owner == user.id or user.id in app.collaborators:
            return
        if self.members.get(user.id) in ("owner", "admin"):
            return
        if any(user.id in t.members and app.id in t.apps for t in self.teams.values()):
            return
        raise refuse(f"{user.id} has no access to app {app.id}")


class Platform:
    """Users (by token), orgs and everything in them."""

    def __init__(self) -> None:
        self.users: dict[str, User] = {}
        self.tokens: dict[str, User] = {}
        self.orgs: dict[str, Org] = {}
        self._ids = itertools.count(1)

    def add_user(self, user: User) -> None:
        self.users[user.id] = user

    def login(self, user_id: str, password: str) -> str:
        user = self.users.get(user_id)
        if user is None or user.password != password:
            raise PlatformError(401, "INVALID_CREDENTIALS", f"wrong password for {user_id}")
        token = f"tok-{user_id}-{next(self._ids)}"
        self.tokens[token] = user
        return token

    def user_of(self, token: str | None) -> User | None:
        return self.tokens.get(token) if token else None

    def org(self, org_id: str) -> Org:
        found = self.orgs.get(org_id)
        if found is None:
            raise missing("organization", org_id)
        return found

    def new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids)}"
