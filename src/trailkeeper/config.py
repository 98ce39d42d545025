"""Settings, from the environment (``TRAILKEEPER_*``) or given directly.

Every setting is listed, with its variable and default, in ``docs/configuration.md``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import orjson

from .events import (
    DEFAULT_LIMITS,
    DEFAULT_SECRET_KEYS,
    Catalogue,
    EventRules,
    Redactor,
    operation_from_config,
)

DEFAULT_DATABASE_URL = "sqlite:///./trailkeeper.db"

#: Environment variable → Settings field. docs/configuration.md documents each one.
ENVIRONMENT: dict[str, str] = {
    "TRAILKEEPER_DATABASE_URL": "database_url",
    "TRAILKEEPER_READ_DATABASE_URL": "read_database_url",
    "TRAILKEEPER_MAX_FUTURE_SECONDS": "max_future_seconds",
    "TRAILKEEPER_MAX_PAST_DAYS": "max_past_days",
    "TRAILKEEPER_REDACT_KEYS": "redact_keys",
    "TRAILKEEPER_OPERATIONS_FILE": "operations_file",
    "TRAILKEEPER_HOST": "host",
    "TRAILKEEPER_PORT": "port",
    "TRAILKEEPER_SESSION_SECRET": "session_secret",
    "TRAILKEEPER_DRAIN_SECONDS": "drain_seconds",
}

#: Seconds a stopping server gives the requests in flight (below Kubernetes' default grace
#: period of 30 s, so they finish before a SIGKILL).
DEFAULT_DRAIN_SECONDS = 25


class ConfigError(ValueError):
    """A setting has a value Trailkeeper can't use; the message names the setting."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a deployment configures.

    Attributes:
        database_url: where the log lives (``sqlite:///path`` or ``postgresql://…``).
        read_database_url: a PostgreSQL replica for searches, scans and charts (optional).
        max_future_seconds: how far ahead of the server clock an event's time may be.
        max_past_days: how far behind the server clock an event's time may be.
        redact_keys: key fragments whose values are redacted; empty turns redaction off.
        operations_file: a JSON file of the deployment's own operations, a list of
            ``{"name", "description", "target_types"}`` objects.
        host, port: where ``trailkeeper serve`` listens.
        session_secret: signs the console's session cookies; every process behind one
            address needs the same (by default each process draws its own at start).
        drain_seconds: how long a stopping server waits for the requests in flight.
    """

    database_url: str = DEFAULT_DATABASE_URL
    read_database_url: str | None = None
    max_future_seconds: int = int(DEFAULT_LIMITS.max_future.total_seconds())
    max_past_days: int = DEFAULT_LIMITS.max_past.days
    redact_keys: tuple[str, ...] = DEFAULT_SECRET_KEYS
    operations_file: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    session_secret: str | None = None
    drain_seconds: int = DEFAULT_DRAIN_SECONDS

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``TRAILKEEPER_*`` variables, defaults for the rest.

        Raises:
            ConfigError: a variable's value is malformed.
        """
        env = os.environ if environ is None else environ
        settings = cls()
        if url := env.get("TRAILKEEPER_DATABASE_URL"):
            settings = replace(settings, database_url=url)
        if read_url := env.get("TRAILKEEPER_READ_DATABASE_URL"):
            settings = replace(settings, read_database_url=read_url)
        if raw := env.get("TRAILKEEPER_MAX_FUTURE_SECONDS"):
            seconds = _whole(raw, "TRAILKEEPER_MAX_FUTURE_SECONDS", "seconds")
            settings = replace(settings, max_future_seconds=seconds)
        if raw := env.get("TRAILKEEPER_MAX_PAST_DAYS"):
            settings = replace(
                settings, max_past_days=_whole(raw, "TRAILKEEPER_MAX_PAST_DAYS", "days")
            )
        if raw := env.get("TRAILKEEPER_DRAIN_SECONDS"):
            seconds = _whole(raw, "TRAILKEEPER_DRAIN_SECONDS", "seconds")
            settings = replace(settings, drain_seconds=seconds)
        if "TRAILKEEPER_REDACT_KEYS" in env:
            keys = tuple(k.strip() for k in env["TRAILKEEPER_REDACT_KEYS"].split(",") if k.strip())
            settings = replace(settings, redact_keys=keys)
        if path := env.get("TRAILKEEPER_OPERATIONS_FILE"):
            settings = replace(settings, operations_file=path)
        if host := env.get("TRAILKEEPER_HOST"):
            settings = replace(settings, host=host)
        if raw_port := env.get("TRAILKEEPER_PORT"):
            if not raw_port.isdigit() or not 0 < int(raw_port) < 65536:
                raise ConfigError(f"TRAILKEEPER_PORT must be a port number, not {raw_port!r}")
            settings = replace(settings, port=int(raw_port))
        if secret := env.get("TRAILKEEPER_SESSION_SECRET"):
            if len(secret) < 32:
                raise ConfigError(
                    "TRAILKEEPER_SESSION_SECRET must be at least 32 characters "
                    "(make one with: python3 -c 'import secrets; print(secrets.token_hex(32))')"
                )
            settings = replace(settings, session_secret=secret)
        return settings

    def rules(self) -> EventRules:
        """The validation rules these settings describe.

        Raises:
            ConfigError: the operations file is missing or malformed.
        """
        extra = []
        if self.operations_file:
            try:
                entries = orjson.loads(Path(self.operations_file).read_bytes())
            except (OSError, orjson.JSONDecodeError) as exc:
                raise ConfigError(f"operations file {self.operations_file}: {exc}") from None
            if not isinstance(entries, list):
                raise ConfigError(f"operations file {self.operations_file}: expected a list")
            try:
                extra = [operation_from_config(e) for e in entries]
                catalogue = Catalogue.default(extra)
            except (ValueError, AttributeError) as exc:
                raise ConfigError(f"operations file {self.operations_file}: {exc}") from None
        else:
            catalogue = Catalogue.default()
        limits = replace(
            DEFAULT_LIMITS,
            max_future=timedelta(seconds=self.max_future_seconds),
            max_past=timedelta(days=self.max_past_days),
        )
        redactor = Redactor(self.redact_keys) if self.redact_keys else None
        return EventRules(catalogue=catalogue, limits=limits, redactor=redactor)


def _whole(raw: str, name: str, unit: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number of {unit}, not {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative")
    return value
