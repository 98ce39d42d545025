"""RFC 6962 / RFC 9162 §2.1 Merkle tree hashing, proofs and their verification.

A tree of ``size`` leaves is addressed by complete subtrees: the hash at ``(level, index)``
is the Merkle Tree Hash of leaves ``[index * 2**level, (index + 1) * 2**level)``. Those are
the only hashes a log ever stores (level 0 are the leaf hashes), so proof generation reads
them through a :data:`HashAt` function and never needs the whole tree: an inclusion or a
consistency proof costs O(log n) reads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from ._errors import ProofError

HASH_SIZE = 32

#: Reads the stored hash of the complete subtree at ``(level, index)``.
HashAt = Callable[[int, int], bytes]

#: The Merkle Tree Hash of the empty tree: SHA-256 of the empty string (RFC 9162 §2.1.1).
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(entry: bytes) -> bytes:
    """The hash of a log entry: ``SHA-256(0x00 || entry)``.

    Args:
        entry: the entry's bytes.

    Returns:
        The 32-byte leaf hash.
    """
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: ``SHA-256(0x01 || left || right)``.

    Args:
        left: the left child's hash.
        right: the right child's hash.

    Returns:
        The 32-byte node hash.
    """
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    # The largest power of two smaller than n (n >= 2): where RFC 9162 splits D[n].
    return 1 << ((n - 1).bit_length() - 1)


def merkle_tree_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """The Merkle Tree Hash (MTH) of a list of leaf hashes, computed from scratch.

    Args:
        leaf_hashes: the leaf hashes, in log order.

    Returns:
        The root hash; :data:`EMPTY_ROOT` for an empty list.
    """
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = _split(n)
    return node_hash(merkle_tree_hash(leaf_hashes[:k]), merkle_tree_hash(leaf_hashes[k:]))


def _range_hash(lo: int, hi: int, hash_at: HashAt) -> bytes:
    # MTH(D[lo:hi]) for a range whose left edge sits on a subtree boundary of the tree being
    # split, which is true of every range the proofs below ask for: the range is a run of
    # complete subtrees, largest first, folded from the right.
    parts: list[bytes] = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        parts.append(hash_at(level, lo >> level))
        lo += 1 << level
    result = parts[-1]
    for part in reversed(parts[:-1]):
        result = node_hash(part, result)
    return result


def tree_hash(size: int, hash_at: HashAt) -> bytes:
    """The root hash of the tree of ``size`` leaves, from at most log2(size) + 1 stored hashes.

    Args:
        size: the number of leaves.
        hash_at: reads stored complete-subtree hashes.

    Returns:
        The root hash; :data:`EMPTY_ROOT` for size 0.

    Raises:
        ValueError: ``size`` is negative.
    """
    if size < 0:
        raise ValueError(f"tree size {size} is negative")
    if size == 0:
        return EMPTY_ROOT
    return _range_hash(0, size, hash_at)


def new_subtree_hashes(index: int, leaf: bytes, hash_at: HashAt) -> list[tuple[int, int, bytes]]:
    """The hashes a log stores when it appends the leaf at ``index``.

    Appending a leaf completes one subtree per trailing 1 bit of ``index``; their left halves
    are read through ``hash_at``.

    Args:
        index: the new leaf's index (the tree's size before the append).
        leaf: the new leaf's hash.
        hash_at: reads stored complete-subtree hashes of the tree before the append.

    Returns:
        ``(level, index, hash)`` for the leaf and every subtree it completes, lowest first.
    """
    if index < 0:
        raise ValueError(f"leaf index {index} is negative")
    out = [(0, index, leaf)]
    current, level, i = leaf, 0, index
    while i & 1:
        current = node_hash(hash_at(level, i - 1), current)
        level, i = level + 1, i >> 1
        out.append((level, i, current))
    return out


def inclusion_proof(index: int, size: int, hash_at: HashAt) -> list[bytes]:
    """The RFC 9162 §2.1.3.1 inclusion proof (audit path) of leaf ``index`` in a tree.

    Args:
        index: the leaf's index.
        size: the tree's size.
        hash_at: reads stored complete-subtree hashes.

    Returns:
        The proof hashes, from the leaf's sibling up to the root's child.

    Raises:
        ValueError: ``index`` is not in ``[0, size)``.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    path: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append(_range_hash(lo + k, hi, hash_at))
            hi = lo + k
        else:
            path.append(hash_at((k.bit_length() - 1), lo >> (k.bit_length() - 1)))
            lo += k
    path.reverse()
    return path


def consistency_proof(old_size: int, new_size: int, hash_at: HashAt) -> list[bytes]:
    """The RFC 9162 §2.1.4.1 consistency proof from the tree of ``old_size`` to ``new_size``.

    Args:
        old_size: the earlier tree's size, at least 1.
        new_size: the later tree's size, at least ``old_size``.
        hash_at: reads stored complete-subtree hashes of the later tree.

    Returns:
        The proof hashes (empty when the sizes are equal).

    Raises:
        ValueError: the sizes are not ``0 < old_size <= new_size``.
    """
    if not 0 < old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    proof: list[bytes] = []
    m, lo, hi, complete = old_size, 0, new_size, True
    while m != hi - lo:
        k = _split(hi - lo)
        level = k.bit_length() - 1
        if m <= k:
            proof.append(_range_hash(lo + k, hi, hash_at))
            hi = lo + k
        else:
            proof.append(hash_at(level, lo >> level))
            m, lo, complete = m - k, lo + k, False
    if not complete:
        proof.append(_range_hash(lo, hi, hash_at))
    proof.reverse()
    return proof


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``proof`` shows the leaf hash ``leaf`` at ``index`` in the tree ``root``.

    Args:
        leaf: the leaf hash (see :func:`leaf_hash`).
        index: the leaf's index.
        size: the tree's size.
        proof: the inclusion proof, leaf's sibling first.
        root: the tree's root hash.

    Raises:
        ProofError: the proof does not verify, or has the wrong length.
    """
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of size {size}")
    # Walk down from the root to find, for each level, which side the leaf is on; then
    # hash back up using the proof from its end (the root's child) to its start.
    sides: list[bool] = []  # True: the proof hash is the right sibling
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            sides.append(True)
            hi = lo + k
        else:
            sides.append(False)
            lo += k
    if len(proof) != len(sides):
        raise ProofError(f"an inclusion proof for this tree has {len(sides)} hashes")
    result = leaf
    for sibling, sibling_is_right in zip(proof, reversed(sides), strict=True):
        result = node_hash(result, sibling) if sibling_is_right else node_hash(sibling, result)
    if result != root:
        raise ProofError("the inclusion proof does not lead to the root hash")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that ``proof`` shows the tree ``old_root`` is a prefix of the tree ``new_root``.

    Args:
        old_size: the earlier tree's size.
        new_size: the later tree's size.
        old_root: the earlier root hash.
        new_root: the later root hash.
        proof: the consistency proof.

    Raises:
        ProofError: the proof does not verify, or the sizes are impossible.
    """
    if not 0 <= old_size <= new_size:
        raise ProofError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size == 0 or old_size == new_size:
        # The empty tree is a prefix of every tree; a tree is consistent with itself alone.
        if proof:
            raise ProofError("this consistency proof must be empty")
        if old_size == new_size and old_root != new_root:
            raise ProofError("two trees of the same size have different root hashes")
        return
    # Mirror of consistency_proof: record the walk, then rebuild both roots bottom up.
    steps: list[bool] = []  # True: the old tree lies in the left part
    m, lo, hi, complete = old_size, 0, new_size, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            steps.append(True)
            hi = lo + k
        else:
            steps.append(False)
            m, lo, complete = m - k, lo + k, False
    expected = len(steps) + (0 if complete else 1)
    if len(proof) != expected:
        raise ProofError(f"a consistency proof between these sizes has {expected} hashes")
    hashes = iter(proof)
    old = new = old_root if complete else next(hashes)
    for old_on_left, sibling in zip(reversed(steps), hashes, strict=True):
        if old_on_left:
            new = node_hash(new, sibling)
        else:
            old, new = node_hash(sibling, old), node_hash(sibling, new)
    if old != old_root:
        raise ProofError("the consistency proof does not lead to the old root hash")
    if new != new_root:
        raise ProofError("the consistency proof does not lead to the new root hash")
