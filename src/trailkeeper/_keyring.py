"""API keys: making, listing, revoking and checking them, each change recorded in the log."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from ._trail import OwnTrail, RequestContext
from .events import ID_RULE, EventValidationError
from .events._limits import ID_PATTERN, REFUSED_IN_LINE
from .keys import SCOPES, ApiKey, AuthError, key_id_of, matches, new_secret
from .store import LogStore


class Keyring:
    """The org's API keys, over the store; every change is recorded in the org's log.

    Args:
        store: where keys live.
        trail: records ``audit_log.key.create`` and ``audit_log.key.revoke``.
        clock: the time of creation, revocation and the expiry checks.
    """

    def __init__(self, store: LogStore, trail: OwnTrail, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._trail = trail
        self._clock = clock

    def create(
        self,
        org_id: str,
        scopes: Sequence[str],
        *,
        apps: Sequence[str] = (),
        name: str = "",
        expires_in: timedelta | None = None,
        created_by: ApiKey | None = None,
        context: RequestContext | None = None,
    ) -> tuple[ApiKey, str]:
        """Make a key; returns it and its secret (shown only now).

        The key and its ``audit_log.key.create`` record are stored in one transaction: a key
        the log does not record is never stored.

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
        if REFUSED_IN_LINE.search(name):
            raise ValueError("a key name must not contain control characters or line breaks")
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
        record = self._trail.event(
            "audit_log.key.create",
            org_id,
            actor=created_by,
            key=key,
            metadata={"scopes": list(key.scopes), "apps": list(key.apps), "name": name},
            context=context,
        )
        try:
            prepared = self._trail.prepare(org_id, record)
        except EventValidationError as exc:
            raise ValueError(f"the key can't be recorded: {exc}") from None
        self._store.append(org_id, prepared, key=key)
        return key, secret

    def list(self, org_id: str) -> list[ApiKey]:
        """The org's keys, revoked ones included, oldest first."""
        return self._store.list_keys(org_id)

    def revoke(
        self,
        org_id: str,
        key_id: str,
        *,
        revoked_by: ApiKey | None = None,
        context: RequestContext | None = None,
    ) -> ApiKey:
        """Revoke one of the org's keys; records ``audit_log.key.revoke``.

        Revoking a revoked key changes nothing and records nothing.

        Raises:
            KeyError: the org has no such key.
        """
        before = self._store.get_key(key_id)
        if before is None or before.org_id != org_id:
            raise KeyError(f"org {org_id!r} has no key {key_id!r}")
        if before.revoked_at is not None:
            return before
        key = replace(before, revoked_at=self._clock())
        record = self._trail.event(
            "audit_log.key.revoke", org_id, actor=revoked_by, key=key, metadata={}, context=context
        )
        # One transaction: a revocation the log does not record never happens.
        self._store.append(org_id, self._trail.prepare(org_id, record), key=key)
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
        key = self._store.get_key(key_id) if key_id else None
        if key is None or not matches(key, secret):
            raise AuthError("invalid_key", "the API key is not valid")
        return self.usable(key, scope)

    def authenticate_id(self, key_id: str, scope: str, *, session_id: str | None = None) -> ApiKey:
        """The key with this id, if it is still valid and has ``scope``.

        For a session the server signed itself after checking the key's secret (the
        console's cookie): a key revoked or expired since then stops working at once, and
        so does a session signed out (``end_session``) on any server sharing the store.

        Raises:
            AuthError: as ``authenticate``; ``ended_session`` (401) for a signed-out session.
        """
        if session_id is not None and self._store.session_ended(session_id):
            raise AuthError("ended_session", "the console session was signed out; sign in")
        key = self._store.get_key(key_id)
        if key is None:
            raise AuthError("invalid_key", "the API key is not valid")
        return self.usable(key, scope)

    def end_session(self, session_id: str, expires: datetime) -> None:
        """Sign out the console session ``session_id`` on every server sharing the store."""
        self._store.end_session(session_id, expires)

    def recheck(
        self, key: ApiKey, scope: str, *, session: tuple[str, datetime] | None = None
    ) -> ApiKey:
        """``key`` as stored now, if it is still usable: for reads that last (streams).

        ``session``: the console session (its id and end) the read was made in, which must
        not have been signed out or have ended either.

        Raises:
            AuthError: the key was revoked or expired since, or is gone; the session was
                signed out (``ended_session``) or is over (``expired_session``).
        """
        if session is not None and session[1] <= self._clock():
            raise AuthError("expired_session", "the console session has ended; sign in")
        return self.authenticate_id(
            key.id, scope, session_id=session[0] if session is not None else None
        )

    def usable(self, key: ApiKey, scope: str) -> ApiKey:
        """``key`` if it is neither revoked nor expired and has ``scope``.

        Raises:
            AuthError: as ``authenticate``.
        """
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
