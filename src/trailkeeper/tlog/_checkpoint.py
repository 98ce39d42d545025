"""tlog-checkpoint (c2sp.org/tlog-checkpoint@v1.0.0): a log's signed tree head as note text."""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ._errors import FormatError
from ._hash import HASH_SIZE
from ._note import Note, Signer, Verifier, decode_base64, open_note, sign_note

# Tree sizes are kept to what a signed 64-bit integer holds, as the Go reference does.
MAX_TREE_SIZE = (1 << 63) - 1

_SIZE = re.compile(r"0|[1-9][0-9]*", re.ASCII)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tree head: which log, how many entries, and the root hash of that tree.

    Attributes:
        origin: the log's identity, e.g. ``trailkeeper.example/org/acme``.
        size: the number of entries in the tree.
        root_hash: the 32-byte RFC 6962 root hash of the tree.
        extensions: optional extra lines (the spec does not recommend them).
    """

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for line in (self.origin, *self.extensions):
            if not line or "\n" in line:
                raise ValueError("checkpoint lines are non-empty and hold no newline")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise ValueError(f"tree size {self.size} is out of range")
        if len(self.root_hash) != HASH_SIZE:
            raise ValueError("a root hash is 32 bytes")

    @property
    def text(self) -> str:
        """The checkpoint's note text (what the log signs), ending in a newline."""
        root = base64.b64encode(self.root_hash).decode()
        return "".join(
            f"{line}\n" for line in (self.origin, str(self.size), root, *self.extensions)
        )


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint's note text (not the signed note: see :func:`open_checkpoint`).

    Args:
        text: origin, size and root hash lines, then any extension lines, each ending in a
            newline.

    Returns:
        The checkpoint.

    Raises:
        FormatError: fewer than three lines, an empty line, a size with a sign, leading
            zeroes or non-ASCII digits, or a root hash that is not canonical base64 of 32 bytes.
    """
    if not text.endswith("\n"):
        raise FormatError("a checkpoint's text ends in a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3 or not all(lines):
        raise FormatError("a checkpoint is at least three non-empty lines")
    origin, size, root, *extensions = lines
    if not _SIZE.fullmatch(size) or int(size) > MAX_TREE_SIZE:
        raise FormatError("a checkpoint's size is a decimal number without leading zeroes")
    root_hash = decode_base64(root, "a checkpoint's root hash")
    if len(root_hash) != HASH_SIZE:
        raise FormatError("a checkpoint's root hash is 32 bytes")
    try:
        return Checkpoint(origin, int(size), root_hash, tuple(extensions))
    except ValueError as exc:
        raise FormatError(str(exc)) from None


def sign_checkpoint(checkpoint: Checkpoint, signers: Sequence[Signer]) -> str:
    """The checkpoint as a signed note.

    Args:
        checkpoint: the tree head.
        signers: the log's key(s); the first one's name should be the origin.

    Returns:
        The signed note.
    """
    return sign_note(checkpoint.text, signers)


def open_checkpoint(
    message: str | bytes, verifiers: Sequence[Verifier], *, origin: str | None = None
) -> tuple[Checkpoint, Note]:
    """Verify a signed checkpoint and parse it.

    Args:
        message: the signed note.
        verifiers: the keys trusted to sign it (the log's, witnesses').
        origin: if given, the origin the checkpoint must name.

    Returns:
        The checkpoint and the opened note (which signatures verified).

    Raises:
        FormatError: a malformed note or checkpoint, or another origin.
        SignatureError: a known key's signature fails, or no known key signed it.
    """
    note = open_note(message, verifiers)
    checkpoint = parse_checkpoint(note.text)
    if origin is not None and checkpoint.origin != origin:
        raise FormatError(f"the checkpoint is from {checkpoint.origin!r}, not {origin!r}")
    return checkpoint, note
