"""Helpers for applications' own tests: ``capture_events`` shows what a code path recorded.

```python
from trailkeeper.testing import capture_events

def test_deleting_an_app_is_audited(client):
    with capture_events() as events:
        client.delete("/apps/demo")
    assert [e["operation"] for e in events] == ["application.delete"]
```
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .capture import _recorder

__all__ = ["capture_events"]


@contextmanager
def capture_events() -> Iterator[list[dict[str, Any]]]:
    """Collect every event recorded in the block, by any recorder and thread, instead of
    sending it.

    Each is the event as it would be sent (processors applied, ``time`` set), plus
    ``org_id`` when the recorder or context named one. Works with no recorder configured.
    """
    events: list[dict[str, Any]] = []
    with _recorder._captures_lock:
        _recorder._captures.append(events)
    try:
        yield events
    finally:
        with _recorder._captures_lock:
            _recorder._captures.remove(events)
