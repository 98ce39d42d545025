"""What a recorder knows of the log's catalogue: which operation names it will accept.

A recorder checks each name at ``record()``, so a typo shows where it was made, not later as
an event the log refused. The catalogue is the built-in one, one the application gives, or
the server's own (``GET /v1/operations``), fetched once when first needed.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import urllib.request
from typing import Literal

import orjson

from ..events import Catalogue, Operation, UnknownOperationError

_log = logging.getLogger("trailkeeper.capture")
#: Seconds between two attempts to fetch the server's catalogue after one failed.
_RETRY = 60.0
#: The variable that turns strict mode on for recorders not given ``strict=``.
STRICT_VARIABLE = "TRAILKEEPER_CAPTURE_STRICT"

CatalogueSource = Catalogue | Literal["server"] | None


def strict_from_env() -> bool:
    return os.environ.get(STRICT_VARIABLE, "").strip().lower() in ("1", "true", "yes", "on")


def catalogue_from_json(body: object) -> Catalogue:
    """The catalogue a ``GET /v1/operations`` answer describes.

    Raises:
        ValueError: the answer is not shaped like one.
    """
    if not isinstance(body, dict) or not isinstance(body.get("operations"), list):
        raise ValueError("expected an object with 'operations'")
    catalogue = Catalogue()
    for name in body.get("target_types", []):
        catalogue.register_target_type(name)
    for entry in body["operations"]:
        catalogue.register(
            Operation(
                name=str(entry["name"]),
                description=str(entry["description"]),
                target_types=tuple(entry.get("target_types", [])),
            )
        )
    return catalogue


class KnownOperations:
    """The operation names a recorder checks against, and what it does with an unknown one."""

    def __init__(
        self, source: CatalogueSource, *, strict: bool, url: str | None, timeout: float = 5.0
    ) -> None:
        if source == "server" and not (url or "").startswith(("http://", "https://")):
            raise ValueError("catalogue='server' needs the server's http(s) url")
        self.strict = strict
        self._catalogue = source if isinstance(source, Catalogue) else None
        self._url = url if source == "server" else None
        self._timeout = timeout
        self._next_try = 0.0
        self._fetching = False
        self._lock = threading.Lock()
        self._warned: set[str] = set()
        if source is None:
            self._catalogue = Catalogue.default()

    @property
    def catalogue(self) -> Catalogue | None:
        """The catalogue known so far (``None`` while the server's is not fetched yet).

        Never waits: the server's catalogue is fetched on a background thread (``record()``
        must return in microseconds), and names go unchecked until it has arrived.
        """
        if self._catalogue is None and self._url is not None:
            self._fetch_in_background()
        return self._catalogue

    def _fetch_in_background(self) -> None:
        with self._lock:  # held for no I/O: record() never waits on it for long
            if self._fetching or time.monotonic() < self._next_try:
                return
            self._fetching = True
        threading.Thread(target=self._fetch, name="trailkeeper-catalogue", daemon=True).start()

    def check(self, name: str) -> None:
        """Raise (strict) or warn once (otherwise) when ``name`` is not in the catalogue.

        Raises:
            UnknownOperationError: strict, and the name is unknown.
        """
        catalogue = self.catalogue
        if catalogue is None or name in catalogue:
            return
        error = UnknownOperationError(name, catalogue.suggest(name))
        if self.strict:
            raise error
        if name not in self._warned:
            self._warned.add(name)
            _log.warning("trailkeeper: %s; the log will refuse these events", error)

    def _fetch(self) -> None:
        assert self._url is not None
        url = self._url.rstrip("/") + "/v1/operations"
        try:
            with urllib.request.urlopen(url, timeout=self._timeout) as response:  # noqa: S310 - http(s) only, checked above
                self._catalogue = catalogue_from_json(orjson.loads(response.read()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # Not knowing the catalogue must not stop recording: names go unchecked
            # until a later attempt succeeds.
            self._next_try = time.monotonic() + _RETRY
            _log.warning("trailkeeper: could not fetch the catalogue from %s: %s", url, exc)
        finally:
            self._fetching = False
