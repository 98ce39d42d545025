"""The transparency log's formats and Merkle math: pure functions, no I/O.

Each org's log is a tiled transparency log. This package computes and checks everything a
stranger needs to verify it with their own tools:

- RFC 6962 / RFC 9162 §2.1 hashing, inclusion and consistency proofs (generated from
  stored complete-subtree hashes through a :data:`HashAt` function);
- tiles and entry bundles (c2sp.org/tlog-tiles@v0.1.0);
- signed notes with Ed25519 keys (c2sp.org/signed-note@v1.0.0);
- checkpoints (c2sp.org/tlog-checkpoint@v1.0.0);
- receipts (c2sp.org/tlog-proof@v1).

It does not store anything: the store keeps tiles and checkpoints, and hands this package
the hashes it reads.
"""

from ._checkpoint import Checkpoint, open_checkpoint, parse_checkpoint, sign_checkpoint
from ._errors import FormatError, ProofError, SignatureError, TlogError, UnverifiedNoteError
from ._hash import (
    EMPTY_ROOT,
    HashAt,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    merkle_tree_hash,
    new_subtree_hashes,
    node_hash,
    tree_hash,
    verify_consistency,
    verify_inclusion,
)
from ._note import (
    Note,
    Signature,
    Signer,
    Verifier,
    generate_signer,
    key_id,
    open_note,
    parse_signer_key,
    parse_verifier_key,
    sign_note,
)
from ._proof import Receipt, parse_receipt, verify_receipt
from ._tiles import (
    TILE_WIDTH,
    Tile,
    entry_bundle,
    hash_at_from_tiles,
    hash_from_tile,
    parse_entry_bundle,
    parse_tile,
    parse_tile_path,
    tile_data,
    tile_for_hash,
    tiles_added,
    tiles_for_size,
)

__all__ = [
    "EMPTY_ROOT",
    "TILE_WIDTH",
    "Checkpoint",
    "FormatError",
    "HashAt",
    "Note",
    "ProofError",
    "Receipt",
    "Signature",
    "SignatureError",
    "Signer",
    "Tile",
    "TlogError",
    "UnverifiedNoteError",
    "Verifier",
    "consistency_proof",
    "entry_bundle",
    "generate_signer",
    "hash_at_from_tiles",
    "hash_from_tile",
    "inclusion_proof",
    "key_id",
    "leaf_hash",
    "merkle_tree_hash",
    "new_subtree_hashes",
    "node_hash",
    "open_checkpoint",
    "open_note",
    "parse_checkpoint",
    "parse_entry_bundle",
    "parse_receipt",
    "parse_signer_key",
    "parse_tile",
    "parse_tile_path",
    "parse_verifier_key",
    "sign_checkpoint",
    "sign_note",
    "tile_data",
    "tile_for_hash",
    "tiles_added",
    "tiles_for_size",
    "tree_hash",
    "verify_consistency",
    "verify_inclusion",
    "verify_receipt",
]
