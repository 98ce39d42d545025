"""Hostile input, class 3: filters with hundreds of values are refused with 400, not 5xx.

Each case is one request over the in-process app on both backends; every refused one
answers ``400 invalid_query`` naming the filter, stores nothing (not even its read record),
and leaves the server answering.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import ASGIClient, FakeClock
from trailkeeper.events import Catalogue, EventRules, Operation
from trailkeeper.filters import MAX_EXPANDED_OPERATIONS, MAX_FILTER_VALUES, MAX_REQUEST_VALUES
from trailkeeper.server import create_app
from trailkeeper.service import AuditService
from trailkeeper.store import LogStore
from trailkeeper.store._counts import MAX_ENTRIES, CountCache


def _ips(n: int) -> list[str]:
    return [f"10.{i // 250}.{i % 250}.1" for i in range(n)]


def _actors(n: int) -> list[str]:
    return [f"user-{i}" for i in range(n)]


# (name, method, path, params or JSON body, status, code, the problem's field, its message)
CASES: list[tuple[str, str, str, dict[str, Any], int, str | None, str | None, str | None]] = [
    ("990 source_ip values", "GET", "/v1/events", {"source_ip": _ips(990)},
     400, "invalid_query", "source_ip", "has 990 distinct values; at most 100 in one filter"),
    ("400 ip: terms in q", "GET", "/v1/events", {"q": " ".join(f"ip:::{i:x}" for i in range(400))},
     400, "invalid_query", "q", "ip: has more than 100 distinct values"),
    ("500 copies of one ip: term in q count once", "GET", "/v1/events", {"q": "ip:::1 " * 500},
     200, None, None, None),
    ("101 actors in a JSON search", "POST", "/v1/events/search", {"actor": _actors(101)},
     400, "invalid_query", "actor", "has 101 distinct values"),
    ("101 excluded actors in q", "GET", "/v1/events",
     {"q": " ".join(f"-actor:{a}" for a in _actors(101))},
     400, "invalid_query", "q", "-actor: has more than 100 distinct values"),
    ("101 free-text words in q", "GET", "/v1/events", {"q": " ".join(_actors(101))},
     400, "invalid_query", "q", "free text has more than 100"),
    ("501 values over six filters", "POST", "/v1/events/search",
     {"actor": _actors(100), "app": _actors(100), "request_id": _actors(100),
      "target": _actors(100), "source_ip": _ips(100), "operation": ["model.create"]},
     400, "invalid_query", "request", "has 501 filter values; at most 500 in one request"),
    ("the per-request cap counts q too", "GET", "/v1/events",
     {"actor": _actors(100), "app": _actors(100), "request_id": _actors(100),
      "target": _actors(100), "q": " ".join(f"ip:{ip}" for ip in _ips(100)) + " op"},
     400, "invalid_query", "request", "has 501 filter values"),
    ("101 values in an export", "GET", "/v1/events/export", {"actor": _actors(101)},
     400, "invalid_query", "actor", "at most 100 in one filter"),
    ("101 values in activity", "GET", "/v1/stats/activity", {"app": _actors(101)},
     400, "invalid_query", "app", "at most 100 in one filter"),
    ("990 copies of one address count once", "GET", "/v1/events",
     {"source_ip": ["10.0.0.1"] * 990}, 200, None, None, None),
    ("100 addresses, the cap, are searched", "GET", "/v1/events", {"source_ip": _ips(100)},
     200, None, None, None),
    ("500 values, the request cap, are searched", "POST", "/v1/events/search",
     {"actor": _actors(100), "app": _actors(100), "request_id": _actors(100),
      "target": _actors(100), "source_ip": _ips(100)}, 200, None, None, None),
    ("100 ip: terms in q are searched", "GET", "/v1/events",
     {"q": " ".join(f"ip:{ip}/32" for ip in _ips(100))}, 200, None, None, None),
    ("repeated patterns expand once", "GET", "/v1/events",
     {"operation": ["model.*", "workflow.*", *[f"model.{v}" for v in ("create", "delete")] * 49]},
     200, None, None, None),
]  # fmt: skip


@pytest.fixture
def client(service: AuditService) -> Iterator[ASGIClient]:
    _, secret = service.keys.create("acme", ["events:read", "events:write"])
    opened = ASGIClient(create_app(service), {"Authorization": f"Bearer {secret}"})
    response = opened.post(
        "/v1/events",
        json={"events": [{"actor": {"id": "user-3", "type": "user"}, "operation": "model.create",
                          "source_ip": "10.0.3.1", "time": "2026-11-26T11:00:00Z"}]},
    )  # fmt: skip
    assert response.status_code == 202, response.text
    yield opened
    opened.close()


@pytest.mark.parametrize(
    ("method", "path", "values", "status", "code", "field", "message"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_filters_over_their_caps_are_refused_and_change_nothing(
    client: ASGIClient,
    service: AuditService,
    method: str,
    path: str,
    values: dict[str, Any],
    status: int,
    code: str | None,
    field: str | None,
    message: str | None,
) -> None:
    before = service.size("acme")
    if method == "GET":
        response = client.get(path, params=values)
    else:
        response = client.post(path, json=values)
    assert response.status_code == status, response.text
    if code is not None:
        problem = response.json()
        assert response.headers["content-type"] == "application/problem+json"
        assert problem["code"] == code
        assert problem["errors"][0]["field"] == field
        assert message is not None
        assert message in problem["detail"], problem["detail"]
        service.flush_reads()
        assert service.size("acme") == before  # not even a record of the read
    assert client.get("/healthz").status_code == 200


def test_the_caps_are_the_documented_numbers() -> None:
    assert (MAX_FILTER_VALUES, MAX_REQUEST_VALUES) == (100, 500)


def test_the_plan_count_cache_is_bounded_in_entries_and_bytes() -> None:
    cache = CountCache(10.0)
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        for search in range(3 * MAX_ENTRIES):
            # A key as long as a search of a hundred actors makes.
            key = ("SELECT COUNT(*) FROM events WHERE actor_id IN (…)", 1, search, *_actors(100))
            cache.put(key, search)
        grown = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    assert len(cache) == MAX_ENTRIES
    assert grown < 2 * 1024 * 1024, grown  # about 1 MiB, whatever the keys' size


def test_the_plan_count_cache_forgets_counts_after_their_time() -> None:
    now = [0.0]
    cache = CountCache(10.0, clock=lambda: now[0])
    cache.put(("a", 1), 5)
    assert cache.get(("a", 1)) == 5
    now[0] = 9.9
    cache.put(("b", 1), 6)
    assert (cache.get(("a", 1)), cache.get(("b", 1))) == (5, 6)
    now[0] = 10.0
    assert cache.get(("a", 1)) is None
    now[0] = 25.0
    cache.put(("c", 1), 7)  # the expired entries go as new ones arrive
    assert len(cache) == 1


@pytest.fixture
def big_catalogue_client(store: LogStore, clock: FakeClock) -> Iterator[ASGIClient]:
    # A deployment that registers 1,200 operations of its own: 600 job.a.*, 600 job.b.*.
    extra = [
        Operation(f"job.{part}.step{i}", "A step of a job", ())
        for part in ("a", "b")
        for i in range(600)
    ]
    service = AuditService(store, rules=EventRules(catalogue=Catalogue.default(extra)), clock=clock)
    _, secret = service.keys.create("acme", ["events:read"])
    client = ASGIClient(create_app(service), {"Authorization": f"Bearer {secret}"})
    yield client
    client.close()
    service.close()


@pytest.mark.parametrize(
    ("patterns", "status"),
    [
        (["job.*"], 400),
        (["job.a.*", "job.b.*"], 400),
        (["job.a.*", *[f"job.b.step{i}" for i in range(99)]], 200),  # 699 names
        (["job.a.*", *[f"job.a.step{i}" for i in range(99)]], 200),  # the same 600 twice
    ],
    ids=["one pattern of 1,200", "two of 600", "699 names", "overlapping"],
)
def test_patterns_may_not_expand_past_1000_operations(
    big_catalogue_client: ASGIClient, patterns: list[str], status: int
) -> None:
    for exclude in (False, True):
        params = (
            {"q": " ".join(f"-operation:{p}" for p in patterns)}
            if exclude
            else {"operation": patterns}
        )
        response = big_catalogue_client.get("/v1/events", params=params)
        assert response.status_code == status, response.text
        if status == 400:
            problem = response.json()
            assert problem["code"] == "invalid_query"
            assert problem["errors"][0]["field"] == ("-operation" if exclude else "operation")
            assert f"more than {MAX_EXPANDED_OPERATIONS:,} operations" in problem["detail"]
    assert big_catalogue_client.get("/healthz").status_code == 200
