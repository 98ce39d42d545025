"""IP addresses: validation, the one normal form, and the 16-byte sort key.

Real traffic repeats a small set of addresses, so results are memoised (bounded); a miss
goes through the C parser of the socket module rather than ``ipaddress``.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence

_V4_PREFIX = b"\x00" * 10 + b"\xff\xff"
_CACHE_LIMIT = 65_536
_normal: dict[str, tuple[str, bytes] | None] = {}


def _parse(value: str) -> tuple[str, bytes] | None:
    try:
        packed = socket.inet_pton(socket.AF_INET, value)
    except OSError:
        pass
    else:
        # inet_pton accepts exactly dotted quads; ipaddress also refuses leading zeros.
        if any(len(part) > 1 and part[0] == "0" for part in value.split(".")):
            return None
        return socket.inet_ntop(socket.AF_INET, packed), _V4_PREFIX + packed
    try:
        packed = socket.inet_pton(socket.AF_INET6, value)
    except OSError:
        return None
    if packed.startswith(_V4_PREFIX):  # IPv4-mapped IPv6 is stored as the IPv4 address
        v4 = packed[12:]
        return socket.inet_ntop(socket.AF_INET, v4), packed
    return str(ipaddress.IPv6Address(packed)), packed


def normalize_ip(value: str) -> tuple[str, bytes] | None:
    """The normal text form and sort key of an IP address, or ``None`` if it isn't one.

    IPv4 in dotted-quad form; IPv6 in RFC 5952 form (lower case, longest zero run as
    ``::``); IPv4-mapped IPv6 (``::ffff:10.0.0.1``) becomes the IPv4 address. The key is
    16 bytes: IPv6 as is, IPv4 mapped into ``::ffff:0:0/96``, so CIDR ranges compare as bytes.
    """
    hit = _normal.get(value, False)
    if hit is not False:
        return hit  # type: ignore[return-value]
    result = _parse(value)
    if len(_normal) >= _CACHE_LIMIT:
        _normal.clear()
    _normal[value] = result
    return result


def ip_key(address: str) -> bytes:
    """The 16-byte sort key of a valid IP address (see ``normalize_ip``).

    Raises:
        ValueError: ``address`` is not an IP address.
    """
    parsed = normalize_ip(address)
    if parsed is None:
        raise ValueError(f"{address!r} is not an IP address")
    return parsed[1]


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_address(
    peer: str | None, forwarded: str | None, proxies: Sequence[Network]
) -> str | None:
    """The client's address behind trusted proxies.

    ``peer`` is the connection's address; ``forwarded`` the ``X-Forwarded-For`` value (its
    hops joined by commas). Only when ``peer`` is one of ``proxies`` is the header believed,
    walked from the nearest hop back to the first address no trusted proxy vouches for.
    Anything that is not an address gives ``None``: better no source IP than a made-up one.
    """
    if peer is None or not proxies or forwarded is None or not _trusted(peer, proxies):
        return plain_address(peer)
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            return plain_address(hop)
    return plain_address(hops[0]) if hops else plain_address(peer)


def _trusted(address: str, proxies: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def plain_address(value: str | None) -> str | None:
    """``value`` as one IP address in normal form (an IPv6 zone dropped), or ``None``."""
    if value and "%" in value:  # a link-local peer's zone (fe80::1%eth0): the address alone
        value = value.partition("%")[0]
    try:
        return str(ipaddress.ip_address(value)) if value else None
    except ValueError:
        return None
