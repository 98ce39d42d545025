"""The HTTP server: the JSON API under /v1, /healthz, /metrics and the OpenAPI docs."""

from ._app import create_app

__all__ = ["create_app"]
