"""Clarifai compatibility: the audit log API of ``clarifai-grpc`` over REST and gRPC, and an
importer of an existing Clarifai audit log. Needs the ``clarifai`` extra.

See ``docs/clarifai.md`` for the mapping between Clarifai's messages and Trailkeeper events.
"""

from ._api import ClarifaiSearches, Failure, key_secret, parse_json, to_json
from ._convert import (
    DEFAULT_PER_PAGE,
    MAX_PER_PAGE,
    TARGET_KINDS,
    BadRequest,
    Search,
    clarifai_operations,
    entry_from,
    event_from,
    search_from,
)
from ._grpc import start_grpc
from ._importer import ImportResult, RemoteError, import_clarifai
from ._rest import entry_json

__all__ = [
    "DEFAULT_PER_PAGE",
    "MAX_PER_PAGE",
    "TARGET_KINDS",
    "BadRequest",
    "ClarifaiSearches",
    "Failure",
    "ImportResult",
    "RemoteError",
    "Search",
    "clarifai_operations",
    "entry_from",
    "entry_json",
    "event_from",
    "import_clarifai",
    "key_secret",
    "parse_json",
    "search_from",
    "start_grpc",
    "to_json",
]
