"""The errors of the tlog package: one base class, so a caller can catch them all."""

from __future__ import annotations


class TlogError(ValueError):
    """Base class: the input is not a valid transparency-log object."""


class FormatError(TlogError):
    """Text or bytes that do not follow the format's spec (a note, checkpoint, tile, receipt)."""


class ProofError(TlogError):
    """A Merkle proof that does not prove what it claims."""


class SignatureError(TlogError):
    """A note signature from a known key that does not verify, or an unusable key."""


class UnverifiedNoteError(SignatureError):
    """A well-formed note that no known key has signed."""
