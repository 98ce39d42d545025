"""Deterministic, realistic audit traffic for the benchmarks.

Four orgs of unequal size (60/25/10/5 %), a few hundred users and service accounts each,
30 apps each, operations weighted toward models, workflows and apps, 1-3 targets, private and
public IPv4 and some IPv6 sources, 5 % failures with error codes, short details, small metadata,
times rising over 180 days with jitter. Producer-supplied UUIDv7-shaped ids, as the SDK sends.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from trailkeeper.events import BUILTIN_OPERATIONS

ORGS = (("acme", 0.60), ("globex", 0.25), ("initech", 0.10), ("umbrella", 0.05))
END = datetime(2026, 11, 1, tzinfo=UTC)
SPAN = timedelta(days=180)
WORDS = (
    "quickstart", "nightly", "retrain", "rollback", "canary", "finetune", "embeddings",
    "vision", "moderation", "ocr", "sentiment", "classifier", "detector", "segmenter",
    "transcription", "translation", "ranking",
)  # fmt: skip
ERRORS = (
    ("PERMISSION_DENIED", "the user may not do this in this app"),
    ("QUOTA_EXCEEDED", "the org has used its compute quota"),
    ("INVALID_ARGUMENT", "the request was malformed"),
    ("NOT_FOUND", "the resource does not exist"),
)
_HEAVY = ("model.", "workflow.", "application.", "deployment.", "nodepool.")


def _weights() -> tuple[list[str], list[float]]:
    names, weights = [], []
    for op in BUILTIN_OPERATIONS:
        if op.name.startswith("audit_log."):
            continue
        names.append(op.name)
        weights.append(8.0 if op.name.startswith(_HEAVY) else 1.0)
    return names, weights


def _ip(rng: random.Random) -> str | None:
    roll = rng.random()
    if roll < 0.05:
        return None
    if roll < 0.45:
        return f"10.{rng.randrange(4)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    if roll < 0.85:
        block = rng.choice(("203.0.113", "198.51.100", "192.0.2", "100.64.7"))
        return f"{block}.{rng.randrange(1, 255)}"
    return f"2001:db8:{rng.randrange(16):x}::{rng.randrange(1, 65535):x}"


def events(
    count: int, seed: int = 7, start: datetime = END - SPAN
) -> Iterator[tuple[str, dict[str, Any]]]:
    """``count`` (org, event) pairs; the same seed gives the same events."""
    rng = random.Random(seed)
    names, weights = _weights()
    ops = {op.name: op for op in BUILTIN_OPERATIONS}
    org_names = [o for o, _ in ORGS]
    org_weights = [w for _, w in ORGS]
    step_us = SPAN / count / timedelta(microseconds=1)
    for i in range(count):
        org = rng.choices(org_names, org_weights)[0]
        when = start + timedelta(microseconds=i * step_us + rng.random() * step_us * 50)
        name = rng.choices(names, weights)[0]
        op = ops[name]
        user = int(rng.paretovariate(1.2)) % 300
        actor: dict[str, Any] = (
            {"id": f"svc-{user % 5}", "type": "service"}
            if user % 17 == 0
            else {"id": f"user-{user}", "type": "user", "name": f"User {user}"}
        )
        targets = [
            {"type": t, "id": f"{t}-{rng.randrange(500)}", "name": f"{rng.choice(WORDS)} {t}"}
            for t in op.target_types[: rng.randint(1, 3)]
        ]
        event: dict[str, Any] = {
            "id": str(_uuid7_at(when, rng)),
            "time": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "actor": actor,
            "operation": name,
            "targets": targets,
            "app_id": f"app-{rng.randrange(30)}",
            "request_id": f"req-{rng.getrandbits(48):012x}",
            "user_agent": "clarifai-python/11.2 (linux)",
            "metadata": {"region": rng.choice(("us-east", "eu-west")), "client": "sdk"},
        }
        ip = _ip(rng)
        if ip is not None:
            event["source_ip"] = ip
        if rng.random() < 0.3:
            event["details"] = [f"{rng.choice(WORDS)} run {rng.randrange(1000)}"]
        if rng.random() < 0.05:
            code, message = rng.choice(ERRORS)
            event["success"] = False
            event["error"] = {"code": code, "message": message}
        yield org, event


def _uuid7_at(when: datetime, rng: random.Random) -> uuid.UUID:
    ms = int(when.timestamp() * 1000)
    value = (ms << 80) | (0x7 << 76) | (rng.getrandbits(12) << 64) | (0b10 << 62)
    return uuid.UUID(int=value | rng.getrandbits(62))


#: Events per ingest call in the ingest benchmarks.
BATCH = 1_000


def batches(count: int, seed: int) -> list[tuple[str, list[dict[str, Any]]]]:
    """``events(count, seed)`` as per-org batches of up to ``BATCH``, in arrival order."""
    out: list[tuple[str, list[dict[str, Any]]]] = []
    pending: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for org, event in events(count, seed):
        pending[org].append(event)
        if len(pending[org]) == BATCH:
            out.append((org, pending.pop(org)))
    out.extend(pending.items())
    return out
