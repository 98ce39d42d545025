"""The console's routes: sign in, sign out, the logs page and its static files."""

from __future__ import annotations

import html
from functools import partial
from pathlib import Path
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from ...keys import ApiKey, AuthError
from ...service import AuditService
from .._lookup import off_loop
from ._session import COOKIE, LIFETIME_SECONDS, sign, verify

STATIC = Path(__file__).parent / "static"
#: The page loads nothing from anywhere else, and runs no inline script.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_MAX_FORM = 4096

router = APIRouter(prefix="/console", include_in_schema=False)


def static_files() -> StaticFiles:
    """The console's CSS, JavaScript and icons, mounted at /console/static."""
    return StaticFiles(directory=STATIC)


def _service(request: Request) -> AuditService:
    return request.app.state.service  # type: ignore[no-any-return]


async def session_key(request: Request) -> ApiKey | None:
    """The key of the request's console session, if it has a valid one."""
    cookie = request.cookies.get(COOKIE)
    key_id = verify(request.app.state.session_secret, cookie) if cookie else None
    if key_id is None:
        return None
    try:
        keys = _service(request).keys
        return await off_loop(request, partial(keys.authenticate_id, key_id, "events:read"))
    except AuthError:
        return None


def _page(name: str, status: int = 200, **values: str) -> HTMLResponse:
    text = (STATIC / name).read_text()
    for field, value in values.items():
        text = text.replace("{{" + field + "}}", html.escape(value, quote=True))
    return HTMLResponse(text, status_code=status, headers=HEADERS)


def _local(target: str | None) -> str:
    # Only back into the console: a crafted "next" must not send anyone to another site.
    if target and target.startswith("/console") and not target.startswith("/console//"):
        return target
    return "/console"


@router.get("")
async def logs(request: Request) -> Response:
    key = await session_key(request)
    if key is None:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/console/login?next={quote(here, safe='')}", status_code=303)
    return _page(
        "index.html",
        org=key.org_id,
        key_id=key.id,
        key_name=key.name or key.id,
        apps=",".join(key.apps),
    )


_NOTICES = {
    "signed_out": "You are signed out.",
    "expired": "Your session has ended; sign in again.",
}


@router.get("/login")
async def login_form(request: Request) -> Response:
    notice = _NOTICES.get(request.query_params.get("notice", ""), "")
    return _page(
        "login.html",
        next=_local(request.query_params.get("next")),
        error="",
        notice=notice,
        error_hidden="hidden",
        notice_hidden="" if notice else "hidden",
    )


@router.post("/login")
async def login(request: Request) -> Response:
    body = b""
    async for chunk in request.stream():  # a sign-in form is small: read no more than that
        body += chunk
        if len(body) > _MAX_FORM:
            break
    form = parse_qs(body.decode("utf-8", "replace")) if len(body) <= _MAX_FORM else {}
    secret = (form.get("key") or [""])[0].strip()
    target = _local((form.get("next") or [""])[0])
    try:
        keys = _service(request).keys
        key = await off_loop(request, partial(keys.authenticate, secret or None, "events:read"))
    except AuthError as exc:
        message = {
            "missing_key": "Paste a read key to sign in.",
            "invalid_key": "That key is not valid. Check that you pasted the whole key.",
            "forbidden": "That key cannot read the log: it lacks the events:read scope.",
        }.get(exc.code, exc.message[:1].upper() + exc.message[1:] + ".")
        return _page(
            "login.html",
            status=exc.status,
            next=target,
            error=message,
            notice="",
            error_hidden="",
            notice_hidden="hidden",
        )
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        sign(request.app.state.session_secret, key.id),
        max_age=LIFETIME_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
async def logout() -> Response:
    response = RedirectResponse("/console/login?notice=signed_out", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response
