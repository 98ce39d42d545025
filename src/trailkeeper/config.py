"""Settings, from the environment (``TRAILKEEPER_*``) or given directly.

Every setting is listed, with its variable and default, in ``docs/configuration.md``.
"""

from __future__ import annotations

import ipaddress
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
    target_types_from_config,
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
    "TRAILKEEPER_TRUSTED_PROXIES": "trusted_proxies",
    "TRAILKEEPER_HEADER_TIMEOUT": "header_timeout",
    "TRAILKEEPER_LIMIT_CONCURRENCY": "limit_concurrency",
    "TRAILKEEPER_METRICS_KEY": "metrics_key",
    "TRAILKEEPER_DRAIN_SECONDS": "drain_seconds",
}
#: Who may read /metrics: anyone, or only requests with an admin key.
METRICS_KEYS = ("none", "admin")

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
            ``{"name", "description", "target_types"}`` objects, or an object
            ``{"target_types": [...], "operations": [...]}`` that also registers target types.
        host, port: where ``trailkeeper serve`` listens.
        session_secret: signs the console's session cookies; every process behind one
            address needs the same (by default each process draws its own at start).
        trusted_proxies: addresses or networks (comma-separated in the variable) of the
            proxies in front of the server: their ``X-Forwarded-For`` names the client
            recorded as the source IP of each read of the log.
        header_timeout: seconds a client has to send a request's headers, and at most
            between two pieces of its body, before the server hangs up (408).
        limit_concurrency: connections and requests in progress a server process takes at
            once; beyond, requests are answered 503.
        metrics_key: ``none`` (anyone may read /metrics) or ``admin`` (an admin key).
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
    trusted_proxies: tuple[str, ...] = ()
    header_timeout: float = 10.0
    limit_concurrency: int = 1000
    metrics_key: str = "none"
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
        if raw_proxies := env.get("TRAILKEEPER_TRUSTED_PROXIES"):
            proxies = tuple(p.strip() for p in raw_proxies.split(",") if p.strip())
            for proxy in proxies:
                try:
                    ipaddress.ip_network(proxy, strict=False)
                except ValueError:
                    raise ConfigError(
                        f"TRAILKEEPER_TRUSTED_PROXIES: {proxy!r} is not an address or a "
                        "network (like 10.0.0.0/8)"
                    ) from None
            settings = replace(settings, trusted_proxies=proxies)
        if raw := env.get("TRAILKEEPER_HEADER_TIMEOUT"):
            try:
                timeout = float(raw)
            except ValueError:
                timeout = 0.0
            if not 0 < timeout <= 3600:
                raise ConfigError(
                    f"TRAILKEEPER_HEADER_TIMEOUT must be seconds, over 0 and at most 3600, "
                    f"not {raw!r}"
                )
            settings = replace(settings, header_timeout=timeout)
        if raw := env.get("TRAILKEEPER_LIMIT_CONCURRENCY"):
            if not raw.isdigit() or int(raw) < 1:
                raise ConfigError(
                    f"TRAILKEEPER_LIMIT_CONCURRENCY must be a whole number over 0, not {raw!r}"
                )
            settings = replace(settings, limit_concurrency=int(raw))
        if raw := env.get("TRAILKEEPER_METRICS_KEY"):
            if raw not in METRICS_KEYS:
                raise ConfigError(f"TRAILKEEPER_METRICS_KEY must be none or admin, not {raw!r}")
            settings = replace(settings, metrics_key=raw)
        return settings

    def rules(self) -> EventRules:
        """The validation rules these settings describe.

        Raises:
            ConfigError: the operations file is missing or malformed.
        """
        catalogue = Catalogue.default()
        if self.operations_file:
            try:
                entries = orjson.loads(Path(self.operations_file).read_bytes())
            except (OSError, orjson.JSONDecodeError) as exc:
                raise ConfigError(f"operations file {self.operations_file}: {exc}") from None
            try:
                catalogue = _catalogue_from(entries)
            except (ValueError, AttributeError) as exc:
                raise ConfigError(f"operations file {self.operations_file}: {exc}") from None
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


def _catalogue_from(entries: object) -> Catalogue:
    # Either a list of operations, or {"target_types": [...], "operations": [...]}.
    target_types: list[str] = []
    if isinstance(entries, dict):
        unknown = sorted(set(entries) - {"target_types", "operations"})
        if unknown:
            raise ValueError(
                f"expected a list of operations, or an object of 'target_types' and "
                f"'operations'; unknown keys {unknown}"
            )
        target_types = target_types_from_config(entries.get("target_types", []))
        entries = entries.get("operations", [])
    if not isinstance(entries, list):
        raise ValueError("expected a list of operations, or an object with 'operations'")
    extra = [operation_from_config(e) for e in entries]
    return Catalogue.default(extra, target_types)
