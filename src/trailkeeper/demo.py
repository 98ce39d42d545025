"""A week of plausible activity on an AI platform, for the demo and the README."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

PEOPLE = {
    "acme": [("ana", "Ana Lima"), ("raj", "Raj Patel"), ("mei", "Mei Chen"), ("ci-bot", None)],
    "globex": [("tom", "Tom Berg"), ("zoe", "Zoe Adams"), ("deploy-svc", None)],
}
ADDRESSES = ["203.0.113.10", "203.0.113.44", "198.51.100.7", "10.20.0.5", "2001:db8:5::17"]
APPS = {"acme": ["fraud-detect", "support-bot"], "globex": ["vision-qa"]}


def _story(rng: random.Random, org: str, when: datetime) -> list[dict[str, Any]]:
    """One user action: a request that produces one or more events sharing a request id."""
    user_id, name = rng.choice(PEOPLE[org])
    events: list[dict[str, Any]]
    actor = {"id": user_id, "type": "service" if name is None else "user", "name": name}
    app = rng.choice(APPS[org])
    base: dict[str, Any] = {
        "actor": actor,
        "app_id": app,
        "source_ip": rng.choice(ADDRESSES),
        "request_id": f"req-{rng.getrandbits(40):010x}",
        "user_agent": rng.choice(["Mozilla/5.0 (Console)", "clarifai-python/11.2", "curl/8.5"]),
    }
    model = f"{app}-model-{rng.randrange(3)}"
    roll = rng.random()
    if roll < 0.35:
        version = f"v{rng.randrange(1, 20)}"
        events = [
            {
                "operation": "model.train",
                "targets": [
                    {"type": "model", "id": model},
                    {"type": "model_version", "id": version},
                ],
                "details": [f"Training started on {rng.choice(['a10g', 't4', 'l4'])} nodes"],
            },
            {
                "operation": "model.version.create",
                "targets": [
                    {"type": "model", "id": model},
                    {"type": "model_version", "id": version},
                ],
            },
        ]
    elif roll < 0.55:
        events = [
            {
                "operation": "model.update",
                "targets": [{"type": "model", "id": model}],
                "changes": {"description": {"from": "draft", "to": "ready for review"}},
            }
        ]
    elif roll < 0.70:
        who = rng.choice(PEOPLE[org])[0]
        events = [
            {
                "operation": "collaborator.add",
                "targets": [{"type": "app", "id": app}, {"type": "user", "id": who}],
                "details": ["Role: reviewer"],
            }
        ]
    elif roll < 0.80:
        events = [
            {
                "operation": "deployment.create",
                "targets": [
                    {"type": "nodepool", "id": "gpu-pool"},
                    {"type": "deployment", "id": f"{model}-prod"},
                ],
            }
        ]
    elif roll < 0.90:
        events = [{"operation": "auth.login", "targets": [{"type": "user", "id": user_id}]}]
    else:
        events = [
            {
                "operation": "application.delete",
                "targets": [{"type": "app", "id": app}],
                "success": False,
                "error": {
                    "code": "PERMISSION_DENIED",
                    "message": f"{user_id} is not an owner of {app}",
                },
            }
        ]
    out = []
    for i, event in enumerate(events):
        stamp = when + timedelta(milliseconds=40 * i)
        out.append({**base, **event, "time": stamp.isoformat()})
    return out


def week_of_activity(now: datetime, seed: int = 2026) -> Iterator[tuple[str, dict[str, Any]]]:
    """(org, event) pairs over the seven days before ``now``, oldest first."""
    rng = random.Random(seed)
    when = now - timedelta(days=7)
    while True:
        when += timedelta(minutes=rng.expovariate(1 / 25))
        if when >= now:
            return
        org = rng.choice(["acme", "acme", "globex"])
        for event in _story(rng, org, when):
            yield org, event
