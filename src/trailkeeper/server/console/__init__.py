"""The console: the "Teams & Logs" page, served at /console by the same server.

A page of static HTML, CSS and JavaScript shipped in the package (no CDN, no build step)
that reads the log through the same JSON API as every other client, signed in with a read
key. Sign-in trades the key's secret for a signed session cookie (see ``_session``); the
API accepts that cookie in place of a bearer key for reads only.
"""

from ._pages import router, static_files

__all__ = ["router", "static_files"]
