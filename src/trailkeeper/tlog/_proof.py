"""tlog-proof (c2sp.org/tlog-proof@v1): an offline-verifiable receipt that an entry is logged.

A receipt is the header line, an optional ``extra`` line, the entry's ``index``, its
inclusion proof (one base64 hash a line), a blank line, then the signed checkpoint verbatim.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ._checkpoint import Checkpoint, open_checkpoint
from ._errors import FormatError, ProofError
from ._hash import HASH_SIZE, leaf_hash, verify_inclusion
from ._note import Verifier, decode_base64

HEADER = "c2sp.org/tlog-proof@v1"

_INDEX = re.compile(r"index (0|[1-9][0-9]*)", re.ASCII)


@dataclass(frozen=True, slots=True)
class Receipt:
    """A parsed tlog-proof.

    Attributes:
        index: the entry's zero-based index in the log.
        proof: the inclusion proof, from the leaf's sibling up to the root's child.
        checkpoint: the signed checkpoint, verbatim (a signed note, ending in a newline).
        extra: opaque, unauthenticated extra data (empty: none).
    """

    index: int
    proof: tuple[bytes, ...]
    checkpoint: str
    extra: bytes = b""

    def __post_init__(self) -> None:
        if self.index < 0:
            raise ValueError(f"entry index {self.index} is negative")
        if any(len(h) != HASH_SIZE for h in self.proof):
            raise ValueError("proof hashes are 32 bytes")
        if not self.checkpoint.endswith("\n"):
            raise ValueError("a signed checkpoint ends in a newline")

    @property
    def text(self) -> str:
        """The receipt in the tlog-proof text format."""
        lines = [HEADER]
        if self.extra:
            lines.append("extra " + base64.b64encode(self.extra).decode())
        lines.append(f"index {self.index}")
        lines += [base64.b64encode(h).decode() for h in self.proof]
        return "\n".join(lines) + "\n\n" + self.checkpoint


def parse_receipt(text: str) -> Receipt:
    """Parse a tlog-proof without verifying it.

    Raises:
        FormatError: not in the tlog-proof v1 format.
    """
    head, sep, checkpoint = text.partition("\n\n")
    if not sep:
        raise FormatError("a receipt has a blank line before its checkpoint")
    lines = head.split("\n")
    if lines[0] != HEADER:
        raise FormatError(f"a receipt starts with {HEADER}")
    at = 1
    extra = b""
    if at < len(lines) and lines[at].startswith("extra "):
        extra = decode_base64(lines[at].removeprefix("extra "), "a receipt's extra data")
        if not extra:
            raise FormatError("an extra line carries data; without data there is no line")
        at += 1
    found = _INDEX.fullmatch(lines[at]) if at < len(lines) else None
    if found is None:
        raise FormatError("a receipt's index line is 'index' and a decimal number")
    proof = []
    for line in lines[at + 1 :]:
        digest = decode_base64(line, "a receipt's proof hash")
        if len(digest) != HASH_SIZE:
            raise FormatError("a receipt's proof hashes are 32 bytes")
        proof.append(digest)
    if not checkpoint.endswith("\n"):
        raise FormatError("a receipt ends with its signed checkpoint and a newline")
    return Receipt(int(found[1]), tuple(proof), checkpoint, extra)


def verify_receipt(
    text: str, entry: bytes, verifiers: Sequence[Verifier], *, origin: str | None = None
) -> Checkpoint:
    """Check that a receipt proves ``entry`` is in a log whose checkpoint a known key signed.

    Args:
        text: the receipt.
        entry: the entry's bytes (its leaf hash is computed here).
        verifiers: the keys trusted to sign the checkpoint.
        origin: if given, the log the checkpoint must come from.

    Returns:
        The verified checkpoint the entry is included in.

    Raises:
        FormatError: a malformed receipt or checkpoint, or another origin.
        SignatureError: the checkpoint is not signed by a known key, or a signature fails.
        ProofError: the inclusion proof does not lead to the checkpoint's root hash.
    """
    receipt = parse_receipt(text)
    checkpoint, _ = open_checkpoint(receipt.checkpoint, verifiers, origin=origin)
    if receipt.index >= checkpoint.size:
        raise ProofError(f"entry {receipt.index} is not in a tree of size {checkpoint.size}")
    verify_inclusion(
        leaf_hash(entry), receipt.index, checkpoint.size, receipt.proof, checkpoint.root_hash
    )
    return checkpoint
