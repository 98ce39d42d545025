"""Tile layout against tlog-tiles' own examples, and proofs served from tiles."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trailkeeper import tlog


def mth(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def test_the_spec_example_index_1234067_is_x001_x234_067() -> None:
    assert tlog.Tile(0, 1234067).path == "tile/0/x001/x234/067"
    assert tlog.parse_tile_path("tile/0/x001/x234/067") == tlog.Tile(0, 1234067)


@pytest.mark.parametrize(
    ("tile", "path"),
    [
        (tlog.Tile(0, 0), "tile/0/000"),
        (tlog.Tile(0, 999), "tile/0/999"),
        (tlog.Tile(0, 1000), "tile/0/x001/000"),
        (tlog.Tile(2, 67, 1), "tile/2/067.p/1"),
        (tlog.Tile(1, 1234067, 255), "tile/1/x001/x234/067.p/255"),
        (tlog.Tile(63, 0), "tile/63/000"),
        (tlog.Tile(0, 1234067, entries=True), "tile/entries/x001/x234/067"),
        (tlog.Tile(0, 5, 17, entries=True), "tile/entries/005.p/17"),
    ],
)
def test_tile_paths_round_trip(tile: tlog.Tile, path: str) -> None:
    assert tile.path == path
    assert tlog.parse_tile_path(path) == tile


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/67",  # not three digits
        "tile/0/001/234",  # "x" missing
        "tile/0/x000/067",  # a leading zero group
        "tile/00/000",  # a level with a leading zero
        "tile/64/000",  # a level above 63
        "tile/0/000.p/0",  # width 0
        "tile/0/000.p/256",  # a full tile is not partial
        "tile/0/000.p/08",  # a width with a leading zero
        "tile/entries/000.p/",
        "tile/0/000/",
        "/tile/0/000",
        "tile/data/000",
        "tile/0/\u0661\u0662\u0663",  # Arabic-Indic digits are not ASCII digits
    ],
)
def test_malformed_tile_paths_are_refused(path: str) -> None:
    with pytest.raises(tlog.FormatError):
        tlog.parse_tile_path(path)


def test_the_spec_example_tree_of_70000() -> None:
    tiles = list(tlog.tiles_for_size(70000))
    full = [t for t in tiles if t.full]
    partial = [t for t in tiles if not t.full]
    assert [t for t in full if t.level == 0] == [tlog.Tile(0, n) for n in range(273)]
    assert [t for t in full if t.level > 0] == [tlog.Tile(1, 0)]
    assert partial == [tlog.Tile(0, 273, 112), tlog.Tile(1, 1, 17), tlog.Tile(2, 0, 1)]


def test_the_spec_example_tree_of_256_has_a_partial_level_1_tile() -> None:
    assert list(tlog.tiles_for_size(256)) == [tlog.Tile(0, 0), tlog.Tile(1, 0, 1)]


@pytest.mark.parametrize("size", [1, 255, 257, 65535, 65536, 70000, 16777217])
def test_partial_widths_follow_the_spec_formula(size: int) -> None:
    partial = {t.level: t.width for t in tlog.tiles_for_size(size) if not t.full}
    level = 0
    while size // 256**level:
        width = (size // 256**level) % 256
        assert partial.pop(level, 0) == width
        level += 1
    assert partial == {}


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 300_000), st.integers(0, 300_000))
def test_growing_writes_exactly_the_new_and_changed_tiles(a: int, b: int) -> None:
    old, new = min(a, b), max(a, b)
    before, after = set(tlog.tiles_for_size(old)), set(tlog.tiles_for_size(new))
    assert set(tlog.tiles_added(old, new)) == after - before


def test_tile_contents_and_proofs_served_from_tiles() -> None:
    size = 256 * 256 + 3 * 256 + 77  # full level 0 and level 1 tiles and partial ones
    leaves = [tlog.leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    levels = [leaves]
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append([mth(below[i : i + 2]) for i in range(0, len(below) - 1, 2)])

    def stored(level: int, index: int) -> bytes:
        return levels[level][index]

    served = {t: tlog.tile_data(t, stored) for t in tlog.tiles_for_size(size)}
    assert served[tlog.Tile(0, 0)] == b"".join(leaves[:256])
    assert served[tlog.Tile(1, 0)] == b"".join(
        mth(leaves[i : i + 256]) for i in range(0, 65536, 256)
    )
    assert len(served[tlog.Tile(0, 259, 77)]) == 77 * 32
    assert tlog.parse_tile(served[tlog.Tile(2, 0, 1)]) == [mth(leaves[:65536])]

    reads: list[tlog.Tile] = []

    def read_tile(tile: tlog.Tile) -> bytes:
        # A store keeps full tiles and the current edge: it answers with the one it has.
        reads.append(tile)
        have = [t for t in served if (t.level, t.index) == (tile.level, tile.index)]
        assert have
        assert have[0].width >= tile.width
        return served[have[0]]

    from_tiles = tlog.hash_at_from_tiles(read_tile)
    root = mth(leaves)
    assert tlog.tree_hash(size, from_tiles) == root
    for index in (0, 255, 256, 40000, 65535, 65536, size - 1):
        proof = tlog.inclusion_proof(index, size, from_tiles)
        assert proof == tlog.inclusion_proof(index, size, stored)
        tlog.verify_inclusion(leaves[index], index, size, proof, root)
    reads.clear()
    tlog.inclusion_proof(40000, size, from_tiles)
    assert len(reads) <= 2 * size.bit_length()  # O(log n) tile reads for one proof
    old = 65536 + 100
    assert tlog.consistency_proof(old, size, from_tiles) == tlog.consistency_proof(
        old, size, stored
    )


def test_the_stored_hash_index_maps_levels_to_tiles_of_height_8() -> None:
    assert tlog.tile_for_hash(0, 1234) == (tlog.Tile(0, 4, 211), 210, 1)
    assert tlog.tile_for_hash(3, 40) == (tlog.Tile(0, 1, 72), 64, 8)
    assert tlog.tile_for_hash(8, 300) == (tlog.Tile(1, 1, 45), 44, 1)
    assert tlog.tile_for_hash(15, 1) == (tlog.Tile(1, 0, 256), 128, 128)
    assert tlog.tile_for_hash(16, 0) == (tlog.Tile(2, 0, 1), 0, 1)


def test_tiles_are_whole_hashes_and_at_most_256() -> None:
    for bad in (b"", bytes(31), bytes(33), bytes(32 * 257)):
        with pytest.raises(tlog.FormatError):
            tlog.parse_tile(bad)
    with pytest.raises(tlog.FormatError, match="no run"):
        tlog.hash_from_tile(bytes(64), 0, 4)


def test_entry_bundles_are_uint16_length_prefixed() -> None:
    entries = [b"", b"a", b"x" * 300, b"\xff" * 65535]
    bundle = tlog.entry_bundle(entries)
    assert bundle[:7] == b"\x00\x00\x00\x01a\x01\x2c"
    assert tlog.parse_entry_bundle(bundle) == entries
    with pytest.raises(ValueError, match="uint16"):
        tlog.entry_bundle([b"x" * 65536])
    with pytest.raises(ValueError, match=r"1\.\.256"):
        tlog.entry_bundle([b"x"] * 257)
    for bad in (b"", b"\x00", b"\x00\x02a", bundle[:-1]):
        with pytest.raises(tlog.FormatError):
            tlog.parse_entry_bundle(bad)


def test_entry_bundles_sit_beside_level_0_tiles_only() -> None:
    assert tlog.Tile(0, 3, 9).with_entries().path == "tile/entries/003.p/9"
    with pytest.raises(ValueError, match="level 0"):
        tlog.Tile(1, 3).with_entries()
    with pytest.raises(ValueError, match="width"):
        tlog.Tile(0, 0, 0)
