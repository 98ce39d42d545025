"""signed-note (c2sp.org/signed-note@v1.0.0): text signed by one or more Ed25519 keys.

Keys travel in the Go checksum database's text forms: a verifier key
``<name>+<hex key id>+<base64(0x01 || public key)>`` and a signer key
``PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || seed)>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ._errors import FormatError, SignatureError, UnverifiedNoteError

#: The signature type byte of Ed25519 note signatures.
ED25519 = 0x01

#: More signatures than this make a note malformed (the spec's floor is 16).
MAX_SIGNATURES = 100

_DASH = "\u2014 "
_HEX8 = re.compile(r"[0-9a-fA-F]{8}", re.ASCII)


def decode_base64(text: str, what: str) -> bytes:
    """Strict standard base64 (RFC 4648 §4): padded, no stray characters, canonical bits.

    Raises:
        FormatError: ``text`` is not the one encoding of some bytes.
    """
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise FormatError(f"{what} is not base64") from None
    if base64.b64encode(raw).decode() != text:
        raise FormatError(f"{what} is not canonical base64")
    return raw


def valid_key_name(name: str) -> bool:
    """Whether ``name`` can name a key: non-empty, no Unicode spaces, no ``+``."""
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def key_id(name: str, public_key: bytes, signature_type: int = ED25519) -> int:
    """The recommended key ID: the first 4 bytes of SHA-256(name || 0x0A || type || key).

    Args:
        name: the key name.
        public_key: the encoded public key (32 bytes for Ed25519).
        signature_type: the signature type byte.

    Returns:
        The key ID as an unsigned 32-bit integer.
    """
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([signature_type]) + public_key)
    return int.from_bytes(digest.digest()[:4], "big")


@dataclass(frozen=True, slots=True)
class Verifier:
    """An Ed25519 public key with its name: what checks a note's signature.

    Attributes:
        name: the key name.
        key_id: the key ID, computed from the name and key.
        public_key: the 32-byte Ed25519 public key.
    """

    name: str
    public_key: bytes
    key_id: int = field(init=False)

    def __post_init__(self) -> None:
        if not valid_key_name(self.name):
            raise ValueError(f"{self.name!r} is not a valid key name")
        if len(self.public_key) != 32:
            raise ValueError("an Ed25519 public key is 32 bytes")
        object.__setattr__(self, "key_id", key_id(self.name, self.public_key))

    @property
    def vkey(self) -> str:
        """The verifier key text, ``<name>+<hex key id>+<base64(0x01 || public key)>``."""
        encoded = base64.b64encode(bytes([ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.key_id:08x}+{encoded}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of ``message``."""
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True, slots=True, repr=False)
class Signer:
    """An Ed25519 private key with its name. Its repr never shows the key.

    Attributes:
        name: the key name.
        seed: the 32-byte Ed25519 private key seed (RFC 8032).
    """

    name: str
    seed: bytes

    def __post_init__(self) -> None:
        if not valid_key_name(self.name):
            raise ValueError(f"{self.name!r} is not a valid key name")
        if len(self.seed) != 32:
            raise ValueError("an Ed25519 private key seed is 32 bytes")

    def __repr__(self) -> str:
        return f"Signer(name={self.name!r}, key_id={self.key_id:08x})"

    @property
    def verifier(self) -> Verifier:
        """The matching public key."""
        public = Ed25519PrivateKey.from_private_bytes(self.seed).public_key()
        return Verifier(self.name, public.public_bytes_raw())

    @property
    def key_id(self) -> int:
        """The key ID of the matching public key."""
        return self.verifier.key_id

    @property
    def skey(self) -> str:
        """The signer key text, ``PRIVATE+KEY+<name>+<hex id>+<base64(0x01 || seed)>``."""
        encoded = base64.b64encode(bytes([ED25519]) + self.seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.key_id:08x}+{encoded}"

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message``."""
        return Ed25519PrivateKey.from_private_bytes(self.seed).sign(message)


def generate_signer(name: str) -> Signer:
    """A new random Ed25519 signer for ``name``."""
    return Signer(name, Ed25519PrivateKey.generate().private_bytes_raw())


def _parse_key(text: str, what: str) -> tuple[str, int, bytes]:
    name, sep1, rest = text.partition("+")
    hex_id, sep2, encoded = rest.partition("+")
    if not (sep1 and sep2 and valid_key_name(name) and _HEX8.fullmatch(hex_id)):
        raise FormatError(f"malformed {what}")
    raw = decode_base64(encoded, what)
    if len(raw) != 33 or raw[0] != ED25519:
        raise FormatError(f"{what} is not an Ed25519 key")
    return name, int(hex_id, 16), raw[1:]


def parse_verifier_key(vkey: str) -> Verifier:
    """Parse a verifier key ``<name>+<hex key id>+<base64(0x01 || public key)>``.

    Raises:
        FormatError: malformed, not Ed25519, or its key ID does not match its name and key.
    """
    name, claimed, public_key = _parse_key(vkey, "verifier key")
    verifier = Verifier(name, public_key)
    if verifier.key_id != claimed:
        raise FormatError("the verifier key's ID does not match its name and key")
    return verifier


def parse_signer_key(skey: str) -> Signer:
    """Parse a signer key ``PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || seed)>``.

    Raises:
        FormatError: malformed, not Ed25519, or its key ID does not match the derived public
            key.
    """
    if not skey.startswith("PRIVATE+KEY+"):
        raise FormatError("a signer key starts with PRIVATE+KEY+")
    name, claimed, seed = _parse_key(skey.removeprefix("PRIVATE+KEY+"), "signer key")
    signer = Signer(name, seed)
    if signer.key_id != claimed:
        raise FormatError("the signer key's ID does not match its name and key")
    return signer


@dataclass(frozen=True, slots=True)
class Signature:
    """One signature line of a note.

    Attributes:
        name: the key name.
        key_id: the key ID (the first 4 bytes of the encoded signature).
        signature: the signature bytes after the key ID.
    """

    name: str
    key_id: int
    signature: bytes

    @property
    def line(self) -> str:
        """The signature line, ``— <name> <base64(key id || signature)>`` with its newline."""
        encoded = base64.b64encode(self.key_id.to_bytes(4, "big") + self.signature).decode()
        return f"{_DASH}{self.name} {encoded}\n"


@dataclass(frozen=True, slots=True)
class Note:
    """An opened note: its text, the signatures that verified, and those from unknown keys.

    Attributes:
        text: the note text, ending in a newline.
        verified: signatures by known keys, all verified.
        unverified: signatures by keys not known to the caller (not checked).
    """

    text: str
    verified: tuple[Signature, ...]
    unverified: tuple[Signature, ...] = ()


def _check_text(text: str) -> None:
    if any(c < " " and c != "\n" for c in text):
        raise FormatError("a note must not contain control characters other than newline")
    try:
        text.encode()
    except UnicodeEncodeError:
        raise FormatError("a note must be valid UTF-8") from None


def sign_note(note: str | Note, signers: Iterable[Signer]) -> str:
    """Sign a note text, or add signatures to an opened note.

    Args:
        note: the text (ending in a newline), or a :class:`Note` whose signatures are kept
            unless one of ``signers`` replaces them (same name and key ID).
        signers: the keys to sign with.

    Returns:
        The signed note: text, a blank line, then one signature line per signature.

    Raises:
        FormatError: the text does not end in a newline or has control characters.
    """
    text, kept = (
        (note, ()) if isinstance(note, str) else (note.text, note.verified + note.unverified)
    )
    if not text.endswith("\n"):
        raise FormatError("a note text ends in a newline")
    _check_text(text)
    message = text.encode()
    fresh = [Signature(s.name, s.key_id, s.sign(message)) for s in signers]
    replaced = {(s.name, s.key_id) for s in fresh}
    lines = [s.line for s in kept if (s.name, s.key_id) not in replaced] + [s.line for s in fresh]
    if not lines:
        raise ValueError("a signed note needs at least one signature")
    return text + "\n" + "".join(lines)


def _parse_note(message: str | bytes) -> tuple[str, list[tuple[Signature, str]]]:
    if isinstance(message, bytes):
        try:
            message = message.decode()
        except UnicodeDecodeError:
            raise FormatError("a note must be valid UTF-8") from None
    _check_text(message)
    split = message.rfind("\n\n")
    if split < 0:
        raise FormatError("a note has no blank line before its signatures")
    text, block = message[: split + 1], message[split + 2 :]
    if not block.endswith("\n"):
        raise FormatError("a note ends with signature lines, each ending in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise FormatError(f"a note has more than {MAX_SIGNATURES} signatures")
    signatures = []
    for line in lines:
        if not line.startswith(_DASH):
            raise FormatError("a signature line starts with an em dash and a space")
        name, _, encoded = line.removeprefix(_DASH).partition(" ")
        if not valid_key_name(name):
            raise FormatError("a signature line has a malformed key name")
        raw = decode_base64(encoded, "a signature")
        if len(raw) < 5:
            raise FormatError("a signature is a key ID and at least one byte")
        signatures.append((Signature(name, int.from_bytes(raw[:4], "big"), raw[4:]), line))
    return text, signatures


def open_note(message: str | bytes, verifiers: Sequence[Verifier]) -> Note:
    """Parse a signed note and verify its signatures by the known keys.

    Signatures by unknown keys (a different name or key ID) are kept, unchecked, in
    ``unverified``; repeated signatures are counted once.

    Args:
        message: the signed note.
        verifiers: the known keys.

    Returns:
        The note, with at least one verified signature.

    Raises:
        FormatError: the note is malformed.
        SignatureError: a known key's signature does not verify.
        UnverifiedNoteError: no known key signed the note.
    """
    known: dict[tuple[str, int], Verifier] = {}
    for v in verifiers:
        if known.setdefault((v.name, v.key_id), v) != v:
            raise ValueError(f"two different keys are named {v.name}+{v.key_id:08x}")
    text, signatures = _parse_note(message)
    encoded = text.encode()
    verified: dict[tuple[str, int], Signature] = {}
    unverified: dict[str, Signature] = {}
    for signature, line in signatures:
        key = (signature.name, signature.key_id)
        verifier = known.get(key)
        if verifier is None:
            unverified.setdefault(line, signature)
        elif key not in verified:
            if not verifier.verify(encoded, signature.signature):
                raise SignatureError(f"the signature by {signature.name} does not verify")
            verified[key] = signature
    if not verified:
        raise UnverifiedNoteError("no known key signed this note")
    return Note(text, tuple(verified.values()), tuple(unverified.values()))
