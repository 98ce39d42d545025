"""Signed notes: the Go note package's documented example as test vectors, and refusals."""

from __future__ import annotations

import base64
import hashlib

import pytest

from trailkeeper import tlog

# The example documented by golang.org/x/mod/sumdb/note (data, used verbatim).
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNX"
    "gKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnW"
    "Lox33WWd1RvMc+QQ=\n"
)

PETER = tlog.parse_verifier_key(PETER_VKEY)
ENOCH = tlog.parse_verifier_key(ENOCH_VKEY)


def test_the_key_id_is_the_first_4_bytes_of_sha256_of_name_newline_type_and_key() -> None:
    public = base64.b64decode(PETER_VKEY.split("+")[2])[1:]
    digest = hashlib.sha256(b"PeterNeumann\n\x01" + public).digest()
    assert tlog.key_id("PeterNeumann", public) == int.from_bytes(digest[:4], "big") == 0xC74F20A3
    assert PETER.key_id == 0xC74F20A3
    assert PETER.vkey == PETER_VKEY


def test_the_documented_signer_key_reproduces_the_documented_signature() -> None:
    signer = tlog.parse_signer_key(PETER_SKEY)
    assert signer.skey == PETER_SKEY
    assert signer.verifier == PETER
    assert tlog.sign_note(TEXT, [signer]) == TEXT + "\n" + PETER_SIG
    assert "AYEKFA" not in repr(signer)  # the private key stays out of logs


def test_the_documented_note_verifies() -> None:
    note = tlog.open_note(TEXT + "\n" + PETER_SIG, [PETER])
    assert note.text == TEXT
    assert [(s.name, s.key_id) for s in note.verified] == [("PeterNeumann", 0xC74F20A3)]
    assert note.unverified == ()
    assert tlog.open_note((TEXT + "\n" + PETER_SIG).encode(), [PETER]) == note


def test_a_doubly_signed_note_verifies_each_known_key_and_keeps_the_unknown() -> None:
    message = TEXT + "\n" + PETER_SIG + ENOCH_SIG
    both = tlog.open_note(message, [PETER, ENOCH])
    assert [s.name for s in both.verified] == ["PeterNeumann", "EnochRoot"]
    one = tlog.open_note(message, [PETER])
    assert [s.name for s in one.verified] == ["PeterNeumann"]
    assert [s.line for s in one.unverified] == [ENOCH_SIG]
    # Cosigning an opened note keeps what it had and adds the new signature after it.
    witness = tlog.generate_signer("witness.example")
    cosigned = tlog.sign_note(one, [witness])
    assert cosigned.startswith(message)
    assert len(tlog.open_note(cosigned, [PETER, ENOCH, witness.verifier]).verified) == 3


def test_a_note_signed_by_no_known_key_is_refused() -> None:
    other = tlog.generate_signer("PeterNeumann")  # same name, another key (another ID)
    with pytest.raises(tlog.UnverifiedNoteError):
        tlog.open_note(TEXT + "\n" + PETER_SIG, [other.verifier])
    with pytest.raises(tlog.UnverifiedNoteError):
        tlog.open_note(TEXT + "\n" + PETER_SIG, [])


def test_a_known_key_whose_signature_fails_rejects_the_whole_note() -> None:
    with pytest.raises(tlog.SignatureError, match="PeterNeumann"):
        tlog.open_note(TEXT.replace("problem,", "problem;") + "\n" + PETER_SIG, [PETER])
    corrupt = PETER_SIG[:60] + "ABCD" + PETER_SIG[64:]
    with pytest.raises(tlog.SignatureError):
        tlog.open_note(TEXT + "\n" + corrupt + ENOCH_SIG, [PETER, ENOCH])


@pytest.mark.parametrize(
    "message",
    [
        TEXT + "\n\n" + PETER_SIG,  # an extra blank line becomes part of the text
        TEXT + "\n" + ENOCH_SIG + "\n" + PETER_SIG,  # a blank line between signatures
    ],
)
def test_extra_blank_lines_change_the_signed_text(message: str) -> None:
    with pytest.raises(tlog.SignatureError):
        tlog.open_note(message, [PETER])


@pytest.mark.parametrize(
    "message",
    [
        TEXT,  # no signatures
        TEXT + "\n",  # a blank line and no signatures
        TEXT + "\n" + PETER_SIG[:-1],  # no final newline
        TEXT + "\n" + PETER_SIG + "\n",  # a trailing blank line
        "\x01" + TEXT + "\n" + PETER_SIG,  # a control character
        TEXT.replace("\n", "\r\n", 1) + "\n" + PETER_SIG,  # CR
        TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Peter Neumann"),  # a space in a name
        TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Peter+Neumann"),  # a plus in a name
        TEXT + "\n" + PETER_SIG.replace("\u2014 ", "- "),  # a hyphen, not an em dash
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        TEXT + "\n" + PETER_SIG.replace("AM=", "AM"),  # unpadded base64
        TEXT + "\n" + PETER_SIG.replace("AM=", "AN="),  # non-canonical base64
        TEXT + "\n\u2014 PeterNeumann AAAA\n",  # a key ID and no signature
        TEXT + "\n" + PETER_SIG * 101,  # too many signatures
    ],
)
def test_malformed_notes_are_refused(message: str) -> None:
    with pytest.raises(tlog.FormatError):
        tlog.open_note(message, [PETER])


def test_notes_must_be_utf8() -> None:
    with pytest.raises(tlog.FormatError, match="UTF-8"):
        tlog.open_note(b"\xff" + (TEXT + "\n" + PETER_SIG).encode(), [PETER])


def test_repeated_signatures_count_once() -> None:
    note = tlog.open_note(TEXT + "\n" + PETER_SIG * 3 + ENOCH_SIG * 2, [PETER])
    assert len(note.verified) == 1
    assert len(note.unverified) == 1


def test_sixteen_signatures_are_accepted() -> None:
    signers = [tlog.generate_signer(f"witness{i}.example") for i in range(16)]
    message = tlog.sign_note(TEXT, signers)
    assert len(tlog.open_note(message, [s.verifier for s in signers]).verified) == 16


def test_verifier_key_manglings_are_refused() -> None:
    for i in range(len(PETER_VKEY)):
        mangled = PETER_VKEY[:i] + chr(ord(PETER_VKEY[i]) + 1) + PETER_VKEY[i + 1 :]
        with pytest.raises(tlog.TlogError):
            tlog.parse_verifier_key(mangled)
    for cut in range(1, len(PETER_VKEY)):
        with pytest.raises(tlog.TlogError):
            tlog.parse_verifier_key(PETER_VKEY[:cut])
    # Not Ed25519 (type byte 0x02), and a 33-byte key: refused even with a matching ID.
    for raw in (b"\x02" + bytes(32), b"\x01" + bytes(33)):
        key_id = int.from_bytes(hashlib.sha256(b"x\n" + raw).digest()[:4], "big")
        with pytest.raises(tlog.FormatError, match="Ed25519"):
            tlog.parse_verifier_key(f"x+{key_id:08x}+{base64.b64encode(raw).decode()}")


def test_signer_key_manglings_are_refused() -> None:
    for i in range(len(PETER_SKEY)):
        mangled = PETER_SKEY[:i] + chr(ord(PETER_SKEY[i]) + 1) + PETER_SKEY[i + 1 :]
        with pytest.raises(tlog.TlogError):
            tlog.parse_signer_key(mangled)


def test_generated_keys_round_trip_through_their_text_forms() -> None:
    signer = tlog.generate_signer("trailkeeper.example/org/acme")
    assert tlog.parse_signer_key(signer.skey).seed == signer.seed
    assert tlog.parse_verifier_key(signer.verifier.vkey) == signer.verifier


def test_signing_refuses_what_could_not_be_opened() -> None:
    signer = tlog.generate_signer("a")
    with pytest.raises(tlog.FormatError, match="newline"):
        tlog.sign_note("no newline", [signer])
    with pytest.raises(tlog.FormatError, match="control"):
        tlog.sign_note("tab\there\n", [signer])
    with pytest.raises(ValueError, match="key name"):
        tlog.generate_signer("bad name")
