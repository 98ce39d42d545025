"""tlog-tiles (c2sp.org/tlog-tiles@v0.1.0): tile coordinates, paths, contents, entry bundles.

A tile at level ``L`` holds up to 256 consecutive hashes of tree level ``8 * L``: level 0
tiles hold leaf hashes, a hash in a level 1 tile is the root of a full level 0 tile, and so
on. A tile is identified by its level, its index ``N`` within the level and its width ``W``
(256 for a full tile, 1..255 for the partial tile at a tree's right edge).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from ._errors import FormatError
from ._hash import HASH_SIZE, HashAt, merkle_tree_hash

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_TILE_LEVEL = 63
MAX_ENTRY_SIZE = 0xFFFF

# A path element of N: three digits, "x" before all but the last.
_INDEX = r"(?:x\d{3}/)*\d{3}"
_PATH = re.compile(
    rf"tile/(?:(?P<level>0|[1-9]\d?)|(?P<entries>entries))/(?P<index>{_INDEX})"
    r"(?:\.p/(?P<width>[1-9]\d{0,2}))?",
    re.ASCII,
)


@dataclass(frozen=True, slots=True)
class Tile:
    """One tile (or, with ``entries=True``, the entry bundle beside a level 0 tile).

    Attributes:
        level: the tile level, 0..63 (always 0 for an entry bundle).
        index: the tile's index ``N`` within its level.
        width: how many hashes (entries) it holds, 1..256; 256 is a full tile.
        entries: whether this is the entry bundle rather than the hash tile.
    """

    level: int
    index: int
    width: int = TILE_WIDTH
    entries: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.level <= MAX_TILE_LEVEL:
            raise ValueError(f"tile level {self.level} is not in 0..{MAX_TILE_LEVEL}")
        if self.entries and self.level != 0:
            raise ValueError("entry bundles sit beside level 0 tiles only")
        if self.index < 0:
            raise ValueError(f"tile index {self.index} is negative")
        if not 1 <= self.width <= TILE_WIDTH:
            raise ValueError(f"tile width {self.width} is not in 1..{TILE_WIDTH}")

    @property
    def full(self) -> bool:
        """Whether the tile holds all 256 hashes."""
        return self.width == TILE_WIDTH

    @property
    def path(self) -> str:
        """The tile's path below the log's prefix: ``tile/<L>/<N>[.p/<W>]``."""
        level = "entries" if self.entries else str(self.level)
        partial = "" if self.full else f".p/{self.width}"
        return f"tile/{level}/{_encode_index(self.index)}{partial}"

    @property
    def start(self) -> int:
        """The index of the first entry the tile covers: ``N * 256**(L+1)``."""
        return self.index << (TILE_HEIGHT * (self.level + 1))

    def with_entries(self) -> Tile:
        """The entry bundle beside this level 0 tile."""
        if self.level != 0:
            raise ValueError(f"{self.path} is not a level 0 tile and has no entry bundle")
        return Tile(0, self.index, self.width, entries=True)


def _encode_index(n: int) -> str:
    groups: list[str] = []
    while True:
        n, rest = divmod(n, 1000)
        groups.append(f"{rest:03d}")
        if n == 0:
            break
    groups.reverse()
    return "/".join([f"x{g}" for g in groups[:-1]] + groups[-1:])


def parse_tile_path(path: str) -> Tile:
    """Parse a tile or entry bundle path, ``tile/<L>/<N>[.p/<W>]`` or ``tile/entries/...``.

    Args:
        path: the path below the log's prefix, without a leading slash.

    Returns:
        The tile it names.

    Raises:
        FormatError: the path is not in the spec's form (leading zeroes, a missing ``x``,
            a level above 63, a width outside 1..255).
    """
    found = _PATH.fullmatch(path)
    if found is None:
        raise FormatError(f"not a tile path: {path!r}")
    level = 0 if found["entries"] else int(found["level"])
    index = int("".join(found["index"].replace("x", "").split("/")))
    width = int(found["width"]) if found["width"] else TILE_WIDTH
    if level > MAX_TILE_LEVEL or (found["width"] and width >= TILE_WIDTH):
        raise FormatError(f"not a tile path: {path!r}")
    tile = Tile(level, index, width, entries=bool(found["entries"]))
    if tile.path != path:  # an index like x000/001 that has a shorter spelling
        raise FormatError(f"not the canonical path of {tile.path}: {path!r}")
    return tile


def tiles_for_size(size: int) -> Iterator[Tile]:
    """Every hash tile a tree of ``size`` leaves has: the full ones and the partial right edge.

    Args:
        size: the tree size.

    Yields:
        Tiles level by level, by index; a level's partial tile (if any) after its full ones.
    """
    return tiles_added(0, size)


def tiles_added(old_size: int, new_size: int) -> Iterator[Tile]:
    """The hash tiles a log writes when its tree grows from ``old_size`` to ``new_size``.

    These are the full tiles completed by the growth and the partial tiles of the new size
    (a partial tile of the old size whose full tile now exists is superseded, not listed).

    Args:
        old_size: the earlier tree size.
        new_size: the later tree size.

    Yields:
        Tiles level by level, by index.
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"a tree does not grow from size {old_size} to {new_size}")
    level = 0
    while new_size >> (TILE_HEIGHT * level) and level <= MAX_TILE_LEVEL:
        span = TILE_HEIGHT * (level + 1)
        for n in range(old_size >> span, new_size >> span):
            yield Tile(level, n)
        width = (new_size >> (TILE_HEIGHT * level)) % TILE_WIDTH
        changed = old_size >> (TILE_HEIGHT * level) != new_size >> (TILE_HEIGHT * level)
        if width and changed:
            yield Tile(level, new_size >> span, width)
        level += 1


def tile_for_hash(level: int, index: int) -> tuple[Tile, int, int]:
    """Where the stored hash at tree ``(level, index)`` lives in the tiles.

    Hashes of tree levels that are multiples of 8 are stored as they are; the levels between
    are recomputed from a run of ``2**(level % 8)`` hashes of the tile below.

    Args:
        level: the tree level of the complete subtree.
        index: its index within that level.

    Returns:
        ``(tile, start, count)``: the smallest tile holding the run (its width ends at the
        run's end) and the run's position within it.
    """
    if level < 0 or index < 0:
        raise ValueError(f"no stored hash at level {level}, index {index}")
    tile_level, sub = divmod(level, TILE_HEIGHT)
    first = index << sub
    start = first % TILE_WIDTH
    count = 1 << sub
    return Tile(tile_level, first // TILE_WIDTH, start + count), start, count


def hash_from_tile(tile_data: bytes, start: int, count: int) -> bytes:
    """The hash of a run of ``count`` (a power of two) hashes of a tile, from its bytes.

    Args:
        tile_data: a tile's bytes, of at least ``start + count`` hashes.
        start: where the run starts.
        count: how many hashes it spans.

    Returns:
        The Merkle hash of the run.

    Raises:
        FormatError: the tile is shorter than the run.
    """
    hashes = parse_tile(tile_data)
    if start + count > len(hashes):
        raise FormatError(f"a tile of {len(hashes)} hashes has no run {start}..{start + count}")
    return merkle_tree_hash(hashes[start : start + count])


def hash_at_from_tiles(read_tile: Callable[[Tile], bytes]) -> HashAt:
    """A :data:`HashAt` that reads stored hashes out of tiles.

    Args:
        read_tile: returns the bytes of the tile asked for, or of a wider tile at the same
            level and index (a full tile always does).

    Returns:
        A function for :func:`inclusion_proof`, :func:`consistency_proof`, :func:`tree_hash`.
    """

    def hash_at(level: int, index: int) -> bytes:
        tile, start, count = tile_for_hash(level, index)
        return hash_from_tile(read_tile(tile), start, count)

    return hash_at


def tile_data(tile: Tile, hash_at: HashAt) -> bytes:
    """Build a hash tile's bytes from the stored hashes of tree level ``8 * tile.level``.

    Args:
        tile: the (non-entries) tile to build.
        hash_at: reads stored complete-subtree hashes.

    Returns:
        ``tile.width`` concatenated 32-byte hashes.
    """
    if tile.entries:
        raise ValueError("an entry bundle is built from entries, not hashes")
    level = TILE_HEIGHT * tile.level
    first = tile.index * TILE_WIDTH
    return b"".join(hash_at(level, first + i) for i in range(tile.width))


def parse_tile(data: bytes) -> list[bytes]:
    """Split a tile's bytes into its hashes.

    Raises:
        FormatError: the length is not 1..256 whole hashes.
    """
    count, rest = divmod(len(data), HASH_SIZE)
    if rest or not 1 <= count <= TILE_WIDTH:
        raise FormatError(f"a tile of {len(data)} bytes is not 1..256 hashes")
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def entry_bundle(entries: Sequence[bytes]) -> bytes:
    """Encode an entry bundle: each entry as a big-endian uint16 length and its bytes.

    Raises:
        ValueError: no entries, more than 256, or an entry longer than 65,535 bytes.
    """
    if not 1 <= len(entries) <= TILE_WIDTH:
        raise ValueError(f"an entry bundle holds 1..256 entries, not {len(entries)}")
    out = bytearray()
    for entry in entries:
        if len(entry) > MAX_ENTRY_SIZE:
            raise ValueError(f"an entry of {len(entry)} bytes does not fit a uint16 length")
        out += len(entry).to_bytes(2, "big") + entry
    return bytes(out)


def parse_entry_bundle(data: bytes) -> list[bytes]:
    """Decode an entry bundle into its entries.

    Raises:
        FormatError: a length runs past the end, or the count is not 1..256.
    """
    entries: list[bytes] = []
    at = 0
    while at < len(data):
        if at + 2 > len(data):
            raise FormatError("an entry bundle ends inside a length prefix")
        size = int.from_bytes(data[at : at + 2], "big")
        at += 2
        if at + size > len(data):
            raise FormatError("an entry bundle ends inside an entry")
        entries.append(data[at : at + size])
        at += size
    if not 1 <= len(entries) <= TILE_WIDTH:
        raise FormatError(f"an entry bundle holds 1..256 entries, not {len(entries)}")
    return entries
