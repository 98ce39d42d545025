"""Helpers for applications' own tests: ``capture_events`` shows what a code path recorded.

```python
from trailkeeper.testing import capture_events

def test_deleting_an_app_is_audited(client):
    with capture_events() as events:
        client.delete("/apps/demo")
    assert [e["operation"] for e in events] == ["application.delete"]
    assert events[0]["targets"] == [{"type": "app", "id": "demo", "name": None}]
```
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .capture import _recorder
from .events import Catalogue

__all__ = ["capture_events"]


@contextmanager
def capture_events(
    *, validate: bool = True, catalogue: Catalogue | None = None
) -> Iterator[list[dict[str, Any]]]:
    """Collect every event recorded in the block, by any recorder and thread, instead of
    sending it.

    Args:
        validate: give each event as the log would store it: validated by the service's
            rules, every field present (``targets`` ``[]``, ``success``, the catalogue's
            ``description``, ``None`` for absent optional fields, ...). ``org_id`` is the
            org the recorder or context named, else ``None``. ``False`` gives the event as
            the SDK sends it (processors applied, ``time`` set, absent fields left out).
        catalogue: the catalogue to validate against (a deployment's own operations and
            target types); by default the recording recorder's, else the built-in one.

    Yields:
        The list the block's events are appended to, in the order they were recorded.

    Raises:
        EventValidationError: with ``validate``, at the ``record()`` of an event the log
            would refuse (an unknown operation or target type, a bad field).

    Works with no recorder configured.
    """
    capture = _recorder.Capture([], validate=validate, catalogue=catalogue)
    with _recorder._captures_lock:
        _recorder._captures.append(capture)
    try:
        yield capture.events
    finally:
        with _recorder._captures_lock:
            _recorder._captures.remove(capture)
