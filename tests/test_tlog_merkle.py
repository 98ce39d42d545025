"""Merkle hashing and proofs, checked by a verifier written here from RFC 9162's text.

The two verifiers below follow RFC 9162 §2.1.3.2 and §2.1.4.2 step by step and call nothing
from the package but the two hash functions' definitions, which are restated here too. The
package's own verifiers walk the tree recursively; the RFC's walk the index bits: two
independent readings of the same spec must agree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trailkeeper import tlog


def rfc_leaf(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def rfc_node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def rfc_mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1, MTH(D[n]) over the leaf hashes, from scratch."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return rfc_node(rfc_mth(leaves[:k]), rfc_mth(leaves[k:]))


def rfc_verify_inclusion(
    leaf_index: int, tree_size: int, leaf_hash: bytes, path: list[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2, verifying an inclusion proof."""
    # 1. If leaf_index is greater than or equal to tree_size, then stop and fail.
    if leaf_index >= tree_size:
        return False
    # 2. Set fn to leaf_index and sn to tree_size - 1.
    fn, sn = leaf_index, tree_size - 1
    # 3. Set r to hash.
    r = leaf_hash
    # 4. For each value p in the inclusion_path array:
    for p in path:
        # a. If sn is 0, then stop the iteration and fail the proof verification.
        if sn == 0:
            return False
        # b. If LSB(fn) is set, or if fn is equal to sn, then:
        if fn & 1 or fn == sn:
            # i. Set r to HASH(0x01 || p || r).
            r = rfc_node(p, r)
            # ii. If LSB(fn) is not set, then right-shift both fn and sn equally until
            #     either LSB(fn) is set or fn is 0.
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            # Otherwise: i. Set r to HASH(0x01 || r || p).
            r = rfc_node(r, p)
        # c. Finally, right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # 5. Compare sn to 0. Compare r against the root_hash.
    return sn == 0 and r == root


def rfc_verify_consistency(
    first: int, second: int, first_hash: bytes, second_hash: bytes, path: list[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2, verifying a consistency proof (for 0 < first < second)."""
    path = list(path)
    # 1. If consistency_path is an empty array, stop and fail the proof verification.
    if not path:
        return False
    # 2. If first is an exact power of 2, then prepend first_hash to the consistency_path.
    if first & (first - 1) == 0:
        path.insert(0, first_hash)
    # 3. Set fn to first - 1 and sn to second - 1.
    fn, sn = first - 1, second - 1
    # 4. If LSB(fn) is set, then right-shift both fn and sn equally until LSB(fn) is not set.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5. Set both fr and sr to the first value in the consistency_path array.
    fr = sr = path[0]
    # 6. For each subsequent value c in the consistency_path array:
    for c in path[1:]:
        # a. If sn is 0, then stop the iteration and fail the proof verification.
        if sn == 0:
            return False
        # b. If LSB(fn) is set, or if fn is equal to sn, then:
        if fn & 1 or fn == sn:
            # i. Set fr to HASH(0x01 || c || fr). Set sr to HASH(0x01 || c || sr).
            fr = rfc_node(c, fr)
            sr = rfc_node(c, sr)
            # ii. If LSB(fn) is not set, then right-shift both fn and sn equally until
            #     either LSB(fn) is set or fn is 0.
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            # Otherwise: i. Set sr to HASH(0x01 || sr || c).
            sr = rfc_node(sr, c)
        # c. Finally, right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # 7. Verify fr == first_hash, sr == second_hash and sn == 0.
    return fr == first_hash and sr == second_hash and sn == 0


def leaves_of(size: int) -> list[bytes]:
    return [rfc_leaf(i.to_bytes(4, "big")) for i in range(size)]


def reader(leaves: list[bytes], reads: list[tuple[int, int]] | None = None) -> tlog.HashAt:
    """Stored complete-subtree hashes, recomputed from scratch on every read."""

    def hash_at(level: int, index: int) -> bytes:
        lo, hi = index << level, (index + 1) << level
        assert hi <= len(leaves), f"read past the tree: ({level}, {index})"
        if reads is not None:
            reads.append((level, index))
        return rfc_mth(leaves[lo:hi])

    return hash_at


# The Certificate Transparency reference data (RFC 6962 test inputs used by every CT
# implementation): eight entries and the root of each prefix of them.
CT_ENTRIES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


@pytest.mark.parametrize("size", range(len(CT_ROOTS)))
def test_roots_match_the_certificate_transparency_reference(size: int) -> None:
    leaves = [tlog.leaf_hash(e) for e in CT_ENTRIES[:size]]
    assert tlog.merkle_tree_hash(leaves).hex() == CT_ROOTS[size]
    assert tlog.tree_hash(size, reader(leaves)).hex() == CT_ROOTS[size]


def test_the_empty_tree_hashes_to_sha256_of_nothing() -> None:
    assert hashlib.sha256(b"").digest() == tlog.EMPTY_ROOT
    assert tlog.tree_hash(0, reader([])) == tlog.EMPTY_ROOT


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    assert tlog.leaf_hash(b"ab") == rfc_leaf(b"ab")
    assert tlog.node_hash(b"a" * 32, b"b" * 32) == rfc_node(b"a" * 32, b"b" * 32)
    assert tlog.leaf_hash(b"\x01" + b"a" * 32 + b"b" * 32) != tlog.node_hash(b"a" * 32, b"b" * 32)


def test_the_reference_inclusion_proof_for_leaf_0_of_8() -> None:
    leaves = [tlog.leaf_hash(e) for e in CT_ENTRIES]
    assert [h.hex() for h in tlog.inclusion_proof(0, 8, reader(leaves))] == [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]


@pytest.mark.parametrize("size", range(1, 70))
def test_every_inclusion_proof_of_small_trees_verifies_by_the_rfc(size: int) -> None:
    leaves = leaves_of(size)
    root = rfc_mth(leaves)
    for index in range(size):
        proof = tlog.inclusion_proof(index, size, reader(leaves))
        assert rfc_verify_inclusion(index, size, leaves[index], proof, root)
        tlog.verify_inclusion(leaves[index], index, size, proof, root)


@pytest.mark.parametrize("new", range(1, 40))
def test_every_consistency_proof_of_small_trees_verifies_by_the_rfc(new: int) -> None:
    leaves = leaves_of(new)
    for old in range(1, new + 1):
        proof = tlog.consistency_proof(old, new, reader(leaves))
        old_root, new_root = rfc_mth(leaves[:old]), rfc_mth(leaves)
        if old < new:
            assert rfc_verify_consistency(old, new, old_root, new_root, proof)
        else:
            assert proof == []
        tlog.verify_consistency(old, new, old_root, new_root, proof)


sizes_and_index = st.integers(1, 2000).flatmap(
    lambda size: st.tuples(st.just(size), st.integers(0, size - 1))
)


@settings(max_examples=150, deadline=None)
@given(sizes_and_index)
def test_inclusion_proofs_verify_against_a_from_scratch_tree(case: tuple[int, int]) -> None:
    size, index = case
    leaves = leaves_of(size)
    root = rfc_mth(leaves)
    reads: list[tuple[int, int]] = []
    proof = tlog.inclusion_proof(index, size, reader(leaves, reads))
    assert rfc_verify_inclusion(index, size, leaves[index], proof, root)
    tlog.verify_inclusion(leaves[index], index, size, proof, root)
    assert tlog.tree_hash(size, reader(leaves)) == root
    assert len(reads) <= 2 * size.bit_length()
    # Another leaf at that place, or another place for that leaf, does not verify.
    assert not rfc_verify_inclusion(index, size, rfc_leaf(b"forged"), proof, root)
    with pytest.raises(tlog.ProofError):
        tlog.verify_inclusion(rfc_leaf(b"forged"), index, size, proof, root)
    if size > 1:
        other = (index + 1) % size
        with pytest.raises(tlog.ProofError):
            tlog.verify_inclusion(leaves[index], other, size, proof, root)


@settings(max_examples=150, deadline=None)
@given(st.integers(2, 2000).flatmap(lambda n: st.tuples(st.integers(1, n - 1), st.just(n))))
def test_consistency_proofs_verify_against_a_from_scratch_tree(case: tuple[int, int]) -> None:
    old, new = case
    leaves = leaves_of(new)
    old_root, new_root = rfc_mth(leaves[:old]), rfc_mth(leaves)
    reads: list[tuple[int, int]] = []
    proof = tlog.consistency_proof(old, new, reader(leaves, reads))
    assert rfc_verify_consistency(old, new, old_root, new_root, proof)
    tlog.verify_consistency(old, new, old_root, new_root, proof)
    assert len(reads) <= 2 * new.bit_length()
    # A forked history (one changed old leaf) is caught by both verifiers.
    forked = [rfc_leaf(b"fork"), *leaves[1:]]
    assert not rfc_verify_consistency(old, new, rfc_mth(forked[:old]), new_root, proof)
    with pytest.raises(tlog.ProofError):
        tlog.verify_consistency(old, new, rfc_mth(forked[:old]), new_root, proof)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.integers(1, n - 1 or 1), st.just(n))))
def test_a_tampered_consistency_proof_never_verifies(case: tuple[int, int]) -> None:
    old, new = case
    leaves = leaves_of(new)
    old_root, new_root = rfc_mth(leaves[:old]), rfc_mth(leaves)
    proof = tlog.consistency_proof(old, new, reader(leaves))
    for i in range(len(proof)):
        bad = [*proof[:i], bytes(32), *proof[i + 1 :]]
        with pytest.raises(tlog.ProofError):
            tlog.verify_consistency(old, new, old_root, new_root, bad)
    with pytest.raises(tlog.ProofError):
        tlog.verify_consistency(old, new, old_root, new_root, [*proof, bytes(32)])


def test_proofs_reject_impossible_sizes() -> None:
    hash_at = reader(leaves_of(4))
    for bad_inclusion in ((4, 4), (-1, 4), (0, 0)):
        with pytest.raises(ValueError, match="not in a tree"):
            tlog.inclusion_proof(*bad_inclusion, hash_at)
    for bad_consistency in ((0, 4), (5, 4)):
        with pytest.raises(ValueError, match="no consistency proof"):
            tlog.consistency_proof(*bad_consistency, hash_at)


def test_trivial_consistency_proofs_are_empty_and_checked() -> None:
    root = rfc_mth(leaves_of(5))
    tlog.verify_consistency(0, 5, tlog.EMPTY_ROOT, root, [])
    tlog.verify_consistency(5, 5, root, root, [])
    with pytest.raises(tlog.ProofError, match="same size"):
        tlog.verify_consistency(5, 5, root, bytes(32), [])
    with pytest.raises(tlog.ProofError, match="empty"):
        tlog.verify_consistency(0, 5, tlog.EMPTY_ROOT, root, [root])


def test_appending_stores_the_hashes_of_the_subtrees_each_leaf_completes() -> None:
    stored: dict[tuple[int, int], bytes] = {}
    hash_at: Callable[[int, int], bytes] = lambda level, index: stored[level, index]  # noqa: E731
    leaves = leaves_of(300)
    for index, leaf in enumerate(leaves):
        for level, i, digest in tlog.new_subtree_hashes(index, leaf, hash_at):
            stored[level, i] = digest
        assert tlog.tree_hash(index + 1, hash_at) == rfc_mth(leaves[: index + 1])
    assert stored == {
        (level, i): rfc_mth(leaves[i << level : (i + 1) << level])
        for level in range(9)
        for i in range(300 >> level)
    }
