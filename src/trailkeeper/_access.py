"""Keys, authentication and the audit log's own trail, on top of the core service.

Kept apart from ``service.py`` so the core stays small; ``AuditService`` inherits it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .events import ID_RULE, canonical_json, format_time
from .events._limits import ID_PATTERN
from .events._uuid7 import uuid7
from .filters import Filters, Match
from .keys import SCOPES, ApiKey, AuthError, key_id_of, matches, new_secret

if TYPE_CHECKING:
    from .service import IngestResult
    from .store import LogStore


# The largest request description a read record keeps whole (metadata may hold 16 KiB).
_REQUEST_RECORD_BYTES = 8192


class AccessMixin:
    """API keys and the trail of who read the log. Needs ``store``, ``_clock``, ``ingest``."""

    store: LogStore
    _clock: Callable[[], datetime]

    def ingest(self, org_id: str, events: Sequence[dict[str, Any]]) -> IngestResult:
        raise NotImplementedError

    def submit_own(self, org_id: str, events: Sequence[dict[str, Any]]) -> None:
        raise NotImplementedError

    def create_key(
        self,
        org_id: str,
        scopes: Sequence[str],
        *,
        apps: Sequence[str] = (),
        name: str = "",
        expires_in: timedelta | None = None,
        created_by: ApiKey | None = None,
    ) -> tuple[ApiKey, str]:
        """Make an API key for an org; returns the key and its secret (shown only now).

        Records ``audit_log.key.create`` in the org.

        Raises:
            ValueError: an unknown scope, a malformed app id or name, no scope at all.
        """
        if not scopes:
            raise ValueError(f"a key needs at least one scope: {', '.join(SCOPES)}")
        unknown = [s for s in scopes if s not in SCOPES]
        if unknown:
            raise ValueError(f"unknown scope(s) {unknown}; scopes are {', '.join(SCOPES)}")
        for app in apps:
            if not ID_PATTERN.fullmatch(app):
                raise ValueError(f"app {app!r} is not an id ({ID_RULE})")
        if len(name) > 256:
            raise ValueError("a key name is at most 256 characters")
        if not ID_PATTERN.fullmatch(org_id):
            raise ValueError(f"org {org_id!r} is not an id ({ID_RULE})")
        now = self._clock()
        key_id, secret, secret_hash = new_secret()
        key = ApiKey(
            id=key_id,
            org_id=org_id,
            name=name,
            scopes=tuple(dict.fromkeys(scopes)),
            apps=tuple(dict.fromkeys(apps)),
            created_at=now,
            expires_at=now + expires_in if expires_in is not None else None,
            revoked_at=None,
            secret_hash=secret_hash,
        )
        self.store.put_key(key)
        self._record_own(
            org_id,
            "audit_log.key.create",
            created_by,
            key,
            {"scopes": list(key.scopes), "apps": list(key.apps), "name": name},
        )
        return key, secret

    def list_keys(self, org_id: str) -> list[ApiKey]:
        """The org's keys, revoked ones included, oldest first."""
        return self.store.list_keys(org_id)

    def revoke_key(self, org_id: str, key_id: str, *, revoked_by: ApiKey | None = None) -> ApiKey:
        """Revoke one of the org's keys; records ``audit_log.key.revoke``.

        Raises:
            KeyError: the org has no such key.
        """
        key = self.store.revoke_key(org_id, key_id, self._clock())
        if key is None:
            raise KeyError(f"org {org_id!r} has no key {key_id!r}")
        self._record_own(org_id, "audit_log.key.revoke", revoked_by, key, {})
        return key

    def authenticate(self, secret: str | None, scope: str) -> ApiKey:
        """The key a request's secret belongs to, if it is valid and has ``scope``.

        Raises:
            AuthError: missing, unknown, expired or revoked key (401), or lacking scope (403).
        """
        if not secret:
            raise AuthError(
                "missing_key", "this request needs an API key: Authorization: Bearer <key>"
            )
        key_id = key_id_of(secret)
        key = self.store.get_key(key_id) if key_id else None
        if key is None or not matches(key, secret):
            raise AuthError("invalid_key", "the API key is not valid")
        return self._usable(key, scope)

    def authenticate_id(self, key_id: str, scope: str, *, session_id: str | None = None) -> ApiKey:
        """The key with this id, if it is still valid and has ``scope``.

        For a session the server signed itself after checking the key's secret (the
        console's cookie): a key revoked or expired since then stops working at once, and
        so does a session signed out (``end_session``) on any server sharing the store.

        Raises:
            AuthError: as ``authenticate``; ``ended_session`` (401) for a signed-out session.
        """
        if session_id is not None and self.store.session_ended(session_id):
            raise AuthError("ended_session", "the console session was signed out; sign in")
        key = self.store.get_key(key_id)
        if key is None:
            raise AuthError("invalid_key", "the API key is not valid")
        return self._usable(key, scope)

    def end_session(self, session_id: str, expires: datetime) -> None:
        """Sign out the console session ``session_id`` on every server sharing the store."""
        self.store.end_session(session_id, expires)

    def _usable(self, key: ApiKey, scope: str) -> ApiKey:
        if key.revoked_at is not None:
            raise AuthError("revoked_key", f"the API key {key.id} was revoked")
        if key.expires_at is not None and key.expires_at <= self._clock():
            raise AuthError(
                "expired_key", f"the API key {key.id} expired at {key.expires_at.isoformat()}"
            )
        if not key.allows(scope):
            raise AuthError(
                "forbidden",
                f"the API key {key.id} lacks the {scope!r} scope (it has {', '.join(key.scopes)})",
            )
        return key

    def limit_to_key(self, filters: Filters, key: ApiKey) -> Filters:
        """``filters`` narrowed to the apps an app-limited key may see."""
        return filters.combine(Filters(match=Match(apps=key.apps))) if key.apps else filters

    def record_read(self, key: ApiKey, operation: str, what: dict[str, Any]) -> None:
        """Record that ``key`` searched, read or exported the log (``audit_log.*``).

        The request's filters go into ``metadata.request``; when they are too large for an
        event (a long list in a JSON search), the record keeps their names and size and
        says ``"truncated": true``, so a valid search is never refused for its record.
        """
        size = len(canonical_json(what))
        metadata: dict[str, Any] = {"request": what}
        if size > _REQUEST_RECORD_BYTES:
            metadata = {"request": {"parameters": sorted(what)}, "truncated": True, "bytes": size}
        self._record_own(key.org_id, operation, key, key, metadata, wait=False)

    def _record_own(
        self,
        org_id: str,
        operation: str,
        actor: ApiKey | None,
        key: ApiKey,
        metadata: dict[str, Any],
        *,
        wait: bool = True,
    ) -> None:
        who = (
            {"id": actor.id, "type": "api_key", "name": actor.name or None}
            if actor is not None
            else {"id": "trailkeeper-admin", "type": "service", "name": "Trailkeeper CLI"}
        )
        event = {
            # Given here, not defaulted: a defaulted time makes ingest look the id up in the
            # store (to deduplicate a resent event), a read per search for a fresh id.
            "id": str(uuid7()),
            "time": format_time(self._clock()),
            "actor": who,
            "operation": operation,
            "targets": [
                {"type": "organization", "id": org_id},
                {"type": "api_key", "id": key.id, "name": key.name or None},
            ],
            "metadata": metadata,
        }
        if wait:
            self.ingest(org_id, [event])
        else:
            self.submit_own(org_id, [event])
