"""A small, real AI platform that records its audit events through the capture SDK.

Organizations with members, invitations and teams; applications with collaborators,
models, workflows and modules; compute clusters, nodepools and deployments. Callers sign in
(``POST /login``) and send ``Authorization: Bearer <token>``; permissions refuse with 403.

Every mutating endpoint is audited: the simple ones by the middleware's route map, the
richer ones with ``operation()`` blocks, so one request may record several events that share
its request id (creating an app also creates its default workflow and that workflow's first
version, as Clarifai does).
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ..capture import AuditMiddleware, AuditRoute, Recorder, annotate
from ._platform_apps import add_app_routes
from ._state import Org, Platform, PlatformError, Team, User
from ._state import missing as _missing

_ORG = {"organization": "org_id"}
_APP = {"app": "app_id"}

#: Endpoints whose event the middleware records by itself (success from the status).
ROUTES: dict[str, str | AuditRoute] = {
    "POST /orgs/{org_id}/members": AuditRoute("organization.member.add", _ORG),
    "PATCH /orgs/{org_id}/members/{user_id}": AuditRoute(
        "organization.member.change", {**_ORG, "user": "user_id"}
    ),
    "DELETE /orgs/{org_id}/members/{user_id}": AuditRoute(
        "organization.member.remove", {**_ORG, "user": "user_id"}
    ),
    "POST /orgs/{org_id}/invitations": AuditRoute("organization.invitation.create", _ORG),
    "POST /orgs/{org_id}/invitations/{invitation_id}/accept": AuditRoute(
        "organization.invitation.accept", {**_ORG, "invitation": "invitation_id"}
    ),
    "DELETE /orgs/{org_id}/invitations/{invitation_id}": AuditRoute(
        "organization.invitation.cancel", {**_ORG, "invitation": "invitation_id"}
    ),
    "POST /orgs/{org_id}/teams": AuditRoute("team.create", _ORG),
    "DELETE /orgs/{org_id}/teams/{team_id}": AuditRoute("team.delete", {"team": "team_id"}),
    "POST /orgs/{org_id}/teams/{team_id}/members": AuditRoute(
        "team.member.add", {"team": "team_id"}
    ),
    "POST /orgs/{org_id}/teams/{team_id}/apps": AuditRoute("team.app.add", {"team": "team_id"}),
    "POST /orgs/{org_id}/apps": "application.create",
    "PATCH /orgs/{org_id}/apps/{app_id}": AuditRoute("application.update", _APP),
    "DELETE /orgs/{org_id}/apps/{app_id}": AuditRoute("application.delete", _APP),
    "POST /orgs/{org_id}/apps/{app_id}/collaborators": AuditRoute("collaborator.add", _APP),
    "DELETE /orgs/{org_id}/apps/{app_id}/collaborators/{user_id}": AuditRoute(
        "collaborator.remove", {**_APP, "user": "user_id"}
    ),
    "DELETE /orgs/{org_id}/apps/{app_id}/models/{model_id}": AuditRoute(
        "model.delete", {**_APP, "model": "model_id"}
    ),
    "POST /orgs/{org_id}/apps/{app_id}/modules": AuditRoute("module.create", _APP),
    "POST /orgs/{org_id}/clusters": "compute_cluster.create",
    "POST /orgs/{org_id}/clusters/{cluster_id}/nodepools": AuditRoute(
        "nodepool.create", {"compute_cluster": "cluster_id"}
    ),
    "POST /orgs/{org_id}/clusters/{cluster_id}/nodepools/{nodepool_id}/deployments": AuditRoute(
        "deployment.create", {"nodepool": "nodepool_id"}
    ),
    "DELETE /orgs/{org_id}/clusters/{cluster_id}/nodepools/{nodepool_id}/deployments/"
    "{deployment_id}": AuditRoute(
        "deployment.delete", {"nodepool": "nodepool_id", "deployment": "deployment_id"}
    ),
}


def _path_part(scope: MutableMapping[str, Any], index: int, after: str) -> str | None:
    parts = scope["path"].split("/")
    return parts[index] if len(parts) > index and parts[index - 1] == after else None


def create_platform(
    recorder: Recorder, state: Platform | None = None, *, trusted_proxies: Iterable[str] = ()
) -> Any:
    """The platform as an ASGI app, audited through ``recorder`` (one key per org)."""
    platform = state or Platform()
    api = FastAPI(title="Reference AI platform (Trailkeeper demo)")
    api.state.platform = platform

    def me(request: Request) -> User:
        header = request.headers.get("authorization", "")
        user = platform.user_of(header.removeprefix("Bearer ").strip() or None)
        if user is None:
            raise PlatformError(401, "UNAUTHENTICATED", "sign in first (POST /login)")
        return user

    async def body(request: Request) -> dict[str, Any]:
        data = await request.json() if await request.body() else {}
        if not isinstance(data, dict):
            raise PlatformError(400, "INVALID_ARGUMENT", "the body must be a JSON object")
        return data

    def field(data: dict[str, Any], name: str) -> str:
        value = data.get(name)
        if not isinstance(value, str) or not value:
            raise PlatformError(400, "INVALID_ARGUMENT", f"{name!r} is required")
        return value

    @api.exception_handler(PlatformError)
    async def platform_error(_: Request, exc: PlatformError) -> JSONResponse:
        return JSONResponse({"code": exc.code, "message": str(exc)}, status_code=exc.status)

    @api.post("/login")
    async def login(request: Request) -> dict[str, str]:
        data = await body(request)
        user_id = field(data, "user")
        known = platform.users.get(user_id)
        actor = known.actor() if known else {"id": user_id, "type": "anonymous"}
        org = known.home_org if known else None
        with recorder.operation("auth.login", actor=actor, org_id=org) as op:
            op.add_target("user", user_id)
            try:
                return {"token": platform.login(user_id, str(data.get("password", "")))}
            except PlatformError:
                op.name = "auth.login_failed"  # a failed sign-in is its own operation
                raise

    # -- organizations, members, invitations, teams -------------------------------------------

    @api.post("/orgs")
    async def create_org(request: Request) -> dict[str, str]:
        user, data = me(request), await body(request)
        org_id = field(data, "id")
        with recorder.operation("organization.create", org_id=org_id) as op:
            op.add_target("organization", org_id)
            if org_id in platform.orgs:
                raise PlatformError(409, "ALREADY_EXISTS", f"organization {org_id} exists")
            platform.orgs[org_id] = Org(org_id, members={user.id: "owner"})
        return {"id": org_id}

    @api.post("/orgs/{org_id}/members")
    async def add_member(org_id: str, request: Request) -> dict[str, str]:
        org, data = platform.org(org_id), await body(request)
        org.require_admin(me(request))
        user_id, role = field(data, "user"), data.get("role", "member")
        if user_id not in platform.users:
            raise _missing("user", user_id)
        org.members[user_id] = role if role in ("admin", "member") else "member"
        annotate(targets=[{"type": "user", "id": user_id}], details=[f"Role: {role}"])
        return {"user": user_id}

    @api.patch("/orgs/{org_id}/members/{user_id}")
    async def change_member(org_id: str, user_id: str, request: Request) -> dict[str, str]:
        org, data = platform.org(org_id), await body(request)
        org.require_admin(me(request))
        if user_id not in org.members:
            raise _missing("member", user_id)
        role = field(data, "role")
        annotate(changes={"role": {"from": org.members[user_id], "to": role}})
        org.members[user_id] = role
        return {"user": user_id, "role": role}

    @api.delete("/orgs/{org_id}/members/{user_id}")
    async def remove_member(org_id: str, user_id: str, request: Request) -> dict[str, str]:
        org = platform.org(org_id)
        org.require_admin(me(request))
        if org.members.pop(user_id, None) is None:
            raise _missing("member", user_id)
        return {"user": user_id}

    @api.post("/orgs/{org_id}/invitations")
    async def invite(org_id: str, request: Request) -> dict[str, str]:
        org, data = platform.org(org_id), await body(request)
        org.require_admin(me(request))
        user_id = field(data, "user")
        invitation = platform.new_id("inv")
        org.invitations[invitation] = user_id
        annotate(
            targets=[{"type": "invitation", "id": invitation}, {"type": "user", "id": user_id}]
        )
        return {"id": invitation}

    @api.post("/orgs/{org_id}/invitations/{invitation_id}/accept")
    async def accept(org_id: str, invitation_id: str, request: Request) -> dict[str, str]:
        org, user = platform.org(org_id), me(request)
        invited = org.invitations.get(invitation_id)
        if invited is None:
            raise _missing("invitation", invitation_id)
        if invited != user.id:
            raise PlatformError(403, "PERMISSION_DENIED", "the invitation is for someone else")
        del org.invitations[invitation_id]
        org.members[user.id] = "member"
        return {"org": org_id}

    @api.delete("/orgs/{org_id}/invitations/{invitation_id}")
    async def cancel(org_id: str, invitation_id: str, request: Request) -> dict[str, str]:
        org = platform.org(org_id)
        org.require_admin(me(request))
        if org.invitations.pop(invitation_id, None) is None:
            raise _missing("invitation", invitation_id)
        return {"id": invitation_id}

    @api.post("/orgs/{org_id}/teams")
    async def create_team(org_id: str, request: Request) -> dict[str, str]:
        org, data = platform.org(org_id), await body(request)
        org.require_admin(me(request))
        team_id = field(data, "id")
        org.teams[team_id] = Team(team_id)
        annotate(targets=[{"type": "team", "id": team_id}])
        return {"id": team_id}

    @api.delete("/orgs/{org_id}/teams/{team_id}")
    async def delete_team(org_id: str, team_id: str, request: Request) -> dict[str, str]:
        org = platform.org(org_id)
        org.require_admin(me(request))
        if org.teams.pop(team_id, None) is None:
            raise _missing("team", team_id)
        return {"id": team_id}

    @api.post("/orgs/{org_id}/teams/{team_id}/members")
    async def add_team_member(org_id: str, team_id: str, request: Request) -> dict[str, str]:
        org, data = platform.org(org_id), await body(request)
        org.require_admin(me(request))
        team, user_id = org.teams.get(team_id), field(data, "user")
        if team is None:
            raise _missing("team", team_id)
        org.require_member(platform.users.get(user_id) or User(user_id, user_id, ""))
        team.members.add(user_id)
        annotate(targets=[{"type": "user", "id": user_id}])
        return {"user": user_id}

    @api.post("/orgs/{org_id}/teams/{team_id}/apps")
    async def add_team_app(org_id: str, team_id: str, request: Request) -> dict[str, str]:
        org, data = platform.org(org_id), await body(request)
        org.require_admin(me(request))
        team, app = org.teams.get(team_id), org.app(field(data, "app"))
        if team is None:
            raise _missing("team", team_id)
        team.apps.add(app.id)
        annotate(targets=[{"type": "app", "id": app.id}])
        return {"app": app.id}

    add_app_routes(api, platform, recorder, me, body, field)

    return AuditMiddleware(
        api,
        recorder=recorder,
        actor=lambda scope: _actor(platform, scope),
        org=lambda scope: _path_part(scope, 2, "orgs") or _home_org(platform, scope),
        app_id=lambda scope: _path_part(scope, 4, "apps"),
        trusted_proxies=trusted_proxies,
        routes=ROUTES,
    )


def _user(platform: Platform, scope: MutableMapping[str, Any]) -> User | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            return platform.user_of(value.decode("latin-1").removeprefix("Bearer ").strip())
    return None


def _actor(platform: Platform, scope: MutableMapping[str, Any]) -> dict[str, str] | None:
    user = _user(platform, scope)
    return user.actor() if user else None


def _home_org(platform: Platform, scope: MutableMapping[str, Any]) -> str | None:
    user = _user(platform, scope)
    return user.home_org if user else None


__all__ = ["ROUTES", "Platform", "User", "create_platform"]
