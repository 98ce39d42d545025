"""JSON Schemas of the API's responses, for the OpenAPI document (and schemathesis)."""

from __future__ import annotations

from typing import Any

_STR = {"type": "string"}
_NSTR = {"type": ["string", "null"]}

EVENT: dict[str, Any] = {
    "type": "object",
    "required": [
        "id",
        "time",
        "org_id",
        "actor",
        "operation",
        "description",
        "targets",
        "success",
        "seq",
        "received_at",
        "leaf_hash",
    ],
    "properties": {
        "id": _STR,
        "time": _STR,
        "org_id": _STR,
        "app_id": _NSTR,
        "actor": {
            "type": "object",
            "required": ["id", "type"],
            "properties": {"id": _STR, "type": _STR, "name": _NSTR, "email": _NSTR},
        },
        "operation": _STR,
        "description": _STR,
        "targets": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type", "id"],
                "properties": {"type": _STR, "id": _STR, "name": _NSTR},
            },
        },
        "success": {"type": "boolean"},
        "error": {
            "type": ["object", "null"],
            "properties": {"code": _STR, "message": _STR},
        },
        "source_ip": _NSTR,
        "user_agent": _NSTR,
        "request_id": _NSTR,
        "details": {"type": "array", "items": _STR},
        "changes": {"type": "object"},
        "metadata": {"type": "object"},
        "seq": {"type": "integer"},
        "received_at": _STR,
        "leaf_hash": _STR,
    },
}

INGESTED = {
    "type": "object",
    "required": ["accepted", "duplicates", "events"],
    "properties": {
        "accepted": {"type": "integer"},
        "duplicates": {"type": "integer"},
        "events": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "seq", "duplicate"],
                "properties": {
                    "id": _STR,
                    "seq": {"type": "integer"},
                    "duplicate": {"type": "boolean"},
                },
            },
        },
    },
}

PAGE = {
    "type": "object",
    "required": ["events", "next_cursor"],
    "properties": {"events": {"type": "array", "items": EVENT}, "next_cursor": _NSTR},
}

OPERATIONS = {
    "type": "object",
    "required": ["operations", "target_types"],
    "properties": {
        "operations": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "description", "resource", "target_types", "clarifai"],
                "properties": {
                    "name": _STR,
                    "description": _STR,
                    "resource": _STR,
                    "target_types": {"type": "array", "items": _STR},
                    "clarifai": {
                        "type": ["object", "null"],
                        "properties": {
                            "name": _STR,
                            "number": {"type": "integer"},
                            "description": _STR,
                        },
                    },
                },
            },
        },
        "target_types": {"type": "array", "items": _STR},
    },
}

APPS = {
    "type": "object",
    "required": ["apps"],
    "properties": {
        "apps": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["app_id", "events", "last_activity"],
                "properties": {
                    "app_id": _STR,
                    "events": {"type": "integer"},
                    "last_activity": _STR,
                },
            },
        }
    },
}

ACTIVITY = {
    "type": "object",
    "required": ["bucket", "buckets"],
    "properties": {
        "bucket": _STR,
        "buckets": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["start", "events", "failures"],
                "properties": {
                    "start": _STR,
                    "events": {"type": "integer"},
                    "failures": {"type": "integer"},
                },
            },
        },
    },
}

HEALTH = {"type": "object", "required": ["status"], "properties": {"status": _STR}}


def json_response(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}
