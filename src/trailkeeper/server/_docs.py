"""The interactive API docs at /docs, served from this server alone.

FastAPI's default page loads Swagger UI from a public CDN: without internet it is blank,
and it cannot sit under a strict Content-Security-Policy. Here the assets come from the
``fastapi-offline`` package (it ships Swagger UI's bundle and stylesheet; the ``server``
extra installs it) and the page's one inline script is allowed by its hash.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).parent / "static"
_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def _page(app: FastAPI) -> HTMLResponse:
    page = get_swagger_ui_html(
        openapi_url=app.openapi_url or "/openapi.json",
        title=f"{app.title} API",
        swagger_js_url="/docs/static/swagger-ui-bundle.js",
        swagger_css_url="/docs/static/swagger-ui.css",
        swagger_favicon_url="/console/static/icon.svg",
    )
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
        for script in _SCRIPT.findall(bytes(page.body))
    )
    # Swagger UI sets style attributes as it renders, and shows the schema's images inline.
    page.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
        "form-action 'self'; base-uri 'none'"
    )
    page.headers["Referrer-Policy"] = "same-origin"
    return page


def add_docs(app: FastAPI) -> None:
    """Serve /docs and its assets (create ``app`` with ``docs_url=None, redoc_url=None``)."""
    page = _page(app)

    @app.get("/docs", include_in_schema=False)
    async def docs(_: Request) -> Response:
        return page

    app.mount("/docs/static", StaticFiles(directory=ASSETS), name="docs-static")
