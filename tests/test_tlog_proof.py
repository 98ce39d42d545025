"""Receipts (tlog-proof v1): the text layout, round trips, and that any changed byte fails."""

from __future__ import annotations

import base64

import pytest

from trailkeeper import tlog

ORIGIN = "trailkeeper.example/acme"
LOG = tlog.generate_signer(ORIGIN)
ENTRIES = [f"event {i}".encode() for i in range(11)]
LEAVES = [tlog.leaf_hash(e) for e in ENTRIES]


def hash_at(level: int, index: int) -> bytes:
    return tlog.merkle_tree_hash(LEAVES[index << level : (index + 1) << level])


def receipt_for(index: int, extra: bytes = b"") -> tlog.Receipt:
    size = len(ENTRIES)
    checkpoint = tlog.Checkpoint(ORIGIN, size, tlog.tree_hash(size, hash_at))
    return tlog.Receipt(
        index,
        tuple(tlog.inclusion_proof(index, size, hash_at)),
        tlog.sign_checkpoint(checkpoint, [LOG]),
        extra,
    )


def test_the_text_layout_follows_the_spec() -> None:
    receipt = receipt_for(5, extra=b"context")
    lines = receipt.text.split("\n")
    assert lines[0] == "c2sp.org/tlog-proof@v1"
    assert lines[1] == "extra " + base64.b64encode(b"context").decode()
    assert lines[2] == "index 5"
    assert [base64.b64decode(line) for line in lines[3:7]] == list(receipt.proof)
    assert lines[7] == ""
    assert "\n".join(lines[8:]) == receipt.checkpoint
    assert lines[8:11] == [ORIGIN, "11", base64.b64encode(tlog.merkle_tree_hash(LEAVES)).decode()]
    assert "extra" not in receipt_for(5).text


@pytest.mark.parametrize("index", range(len(ENTRIES)))
def test_receipts_round_trip_and_verify(index: int) -> None:
    receipt = receipt_for(index)
    assert tlog.parse_receipt(receipt.text) == receipt
    checkpoint = tlog.verify_receipt(receipt.text, ENTRIES[index], [LOG.verifier], origin=ORIGIN)
    assert checkpoint.size == len(ENTRIES)


def test_a_receipt_for_a_tree_of_one_has_no_proof_lines() -> None:
    checkpoint = tlog.Checkpoint(ORIGIN, 1, LEAVES[0])
    receipt = tlog.Receipt(0, (), tlog.sign_checkpoint(checkpoint, [LOG]))
    assert receipt.text.startswith("c2sp.org/tlog-proof@v1\nindex 0\n\n" + ORIGIN + "\n1\n")
    assert tlog.parse_receipt(receipt.text) == receipt
    tlog.verify_receipt(receipt.text, ENTRIES[0], [LOG.verifier])


def test_any_single_changed_byte_fails_verification() -> None:
    text = receipt_for(6, extra=b"x").text.encode()
    extra_line = text.index(b"extra ")
    extra_end = text.index(b"\n", extra_line)
    for at in range(len(text)):
        if extra_line + len(b"extra ") <= at < extra_end:
            continue  # the extra data is unauthenticated by design (and checked below)
        for delta in (1, 0x80):
            changed = bytearray(text)
            changed[at] = (changed[at] + delta) % 256
            try:
                tampered = bytes(changed).decode()
            except UnicodeDecodeError:
                continue  # not even text; nothing to parse
            with pytest.raises(tlog.TlogError):
                tlog.verify_receipt(tampered, ENTRIES[6], [LOG.verifier], origin=ORIGIN)


def test_the_extra_data_is_not_authenticated_but_must_be_well_formed() -> None:
    text = receipt_for(6, extra=b"one").text
    other = text.replace(base64.b64encode(b"one").decode(), base64.b64encode(b"two").decode())
    assert tlog.parse_receipt(other).extra == b"two"
    tlog.verify_receipt(other, ENTRIES[6], [LOG.verifier])
    with pytest.raises(tlog.FormatError):
        tlog.parse_receipt(text.replace(base64.b64encode(b"one").decode(), "b25l!"))


def test_the_wrong_entry_or_key_or_log_fails() -> None:
    text = receipt_for(3).text
    with pytest.raises(tlog.ProofError):
        tlog.verify_receipt(text, ENTRIES[4], [LOG.verifier])
    with pytest.raises(tlog.UnverifiedNoteError):
        tlog.verify_receipt(text, ENTRIES[3], [tlog.generate_signer(ORIGIN).verifier])
    with pytest.raises(tlog.FormatError, match="not 'elsewhere'"):
        tlog.verify_receipt(text, ENTRIES[3], [LOG.verifier], origin="elsewhere")


def test_an_index_past_the_tree_fails() -> None:
    good = receipt_for(3)
    past = tlog.Receipt(11, good.proof, good.checkpoint)
    with pytest.raises(tlog.ProofError, match="not in a tree"):
        tlog.verify_receipt(past.text, ENTRIES[3], [LOG.verifier])


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("c2sp.org/tlog-proof@v1", "c2sp.org/tlog-proof@v2"),
        ("index 3", "index 03"),
        ("index 3", "index  3"),
        ("index 3", "Index 3"),
        ("index 3\n", "index 3\nextra AA==\n"),  # extra goes before the index
        ("index 3\n", ""),
        ("\n\n", "\n"),  # no blank line before the checkpoint
    ],
)
def test_malformed_receipts_are_refused(old: str, new: str) -> None:
    text = receipt_for(3).text
    assert old in text
    with pytest.raises(tlog.FormatError):
        tlog.parse_receipt(text.replace(old, new, 1))


def test_an_empty_extra_line_is_refused() -> None:
    text = receipt_for(3).text.replace("index 3", "extra \nindex 3")
    with pytest.raises(tlog.FormatError, match="extra"):
        tlog.parse_receipt(text)
