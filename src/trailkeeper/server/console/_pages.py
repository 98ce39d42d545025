"""The console's routes: sign in, sign out, the logs page and its static files.

Cross-site requests: every POST (sign-in, sign-out) must come from the console's own pages.
A browser says where a request comes from (``Sec-Fetch-Site``, else ``Origin``): anything
but same-origin is refused with 403. A client that sends neither (curl, old browsers) must
still carry the form's token: for sign-in, a token bound to a nonce cookie the sign-in page
set (a cross-site form cannot read it, and SameSite=Strict keeps the browser from sending
it); for sign-out, a token bound to the session. So another site can neither sign a
victim into its own org (login CSRF) nor sign them out.
"""

from __future__ import annotations

import html
import secrets
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from ...keys import ApiKey, AuthError
from ...service import AuditService
from .._lookup import off_loop
from ._session import COOKIE, LIFETIME_SECONDS, Session, form_token, sign, token_matches, verify

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
#: The sign-in page's nonce cookie, which the form's token is bound to.
LOGIN_COOKIE = "tk_login"

router = APIRouter(prefix="/console", include_in_schema=False)


def static_files() -> StaticFiles:
    """The console's CSS, JavaScript and icons, mounted at /console/static."""
    return StaticFiles(directory=STATIC)


def _service(request: Request) -> AuditService:
    return request.app.state.service  # type: ignore[no-any-return]


async def session_key(request: Request) -> ApiKey | None:
    """The key of the request's console session, if it has a valid one."""
    session = _session(request)
    if session is None:
        return None
    try:
        keys = _service(request).keys
        return await off_loop(
            request,
            partial(keys.authenticate_id, session.key_id, "events:read", session_id=session.id),
        )
    except AuthError:
        return None


def _session(request: Request) -> Session | None:
    cookie = request.cookies.get(COOKIE)
    return verify(request.app.state.session_secret, cookie) if cookie else None


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
    session = _session(request)
    assert session is not None  # session_key found one
    return _page(
        "index.html",
        csrf=form_token(request.app.state.session_secret, "logout", session.id),
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
    return _login_page(request, _local(request.query_params.get("next")), notice=notice)


def _login_page(
    request: Request, target: str, *, status: int = 200, error: str = "", notice: str = ""
) -> Response:
    """The sign-in form, with a fresh nonce cookie and the token bound to it."""
    nonce = secrets.token_urlsafe(16)
    page = _page(
        "login.html",
        status=status,
        next=target,
        csrf=form_token(request.app.state.session_secret, "login", nonce),
        error=error,
        notice=notice,
        error_hidden="" if error else "hidden",
        notice_hidden="" if notice else "hidden",
    )
    page.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=LIFETIME_SECONDS,
        path="/console/login",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return page


def cross_site(request: Request) -> bool:
    """Whether the browser says the request comes from anywhere but the console's origin."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site != "same-origin"
    origin = request.headers.get("origin")
    if origin is not None:
        return origin == "null" or urlsplit(origin).netloc != request.headers.get("host")
    return False  # says nothing (curl, an old browser): the form's token decides


async def _form(request: Request) -> dict[str, str]:
    body = b""
    async for chunk in request.stream():  # a console form is small: read no more than that
        body += chunk
        if len(body) > _MAX_FORM:
            return {}
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}


_CROSS_SITE = (
    "This request came from another site, so it was refused. "
    "To sign in or out, use the console's own page."
)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await _form(request)
    secret = form.get("key", "").strip()
    target = _local(form.get("next"))
    session_secret = request.app.state.session_secret
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if cross_site(request):
        return _login_page(request, target, status=403, error=_CROSS_SITE)
    if not nonce or not token_matches(session_secret, "login", nonce, form.get("csrf", "")):
        return _login_page(
            request,
            target,
            status=403,
            error="This sign-in form has expired or did not come from this console; "
            "paste the key again.",
        )
    try:
        keys = _service(request).keys
        key = await off_loop(request, partial(keys.authenticate, secret or None, "events:read"))
    except AuthError as exc:
        message = {
            "missing_key": "Paste a read key to sign in.",
            "invalid_key": "That key is not valid. Check that you pasted the whole key.",
            "forbidden": "That key cannot read the log: it lacks the events:read scope.",
        }.get(exc.code, exc.message[:1].upper() + exc.message[1:] + ".")
        return _login_page(request, target, status=exc.status, error=message)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        sign(session_secret, key.id),
        max_age=LIFETIME_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    response.delete_cookie(LOGIN_COOKIE, path="/console/login")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await _form(request)
    session = _session(request)
    session_secret = request.app.state.session_secret
    if cross_site(request) or (
        session is not None
        and not token_matches(session_secret, "logout", session.id, form.get("csrf", ""))
    ):
        return _page("refused.html", status=403, message=_CROSS_SITE)
    if session is not None:
        # Recorded in the store: a copy of the cookie stops working on every server too.
        expires = datetime.fromtimestamp(session.expires, UTC)
        await run_in_threadpool(_service(request).keys.end_session, session.id, expires)
    response = RedirectResponse("/console/login?notice=signed_out", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response
