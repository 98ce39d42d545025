"""Checkpoints: the spec's example, round trips and strict parsing; the pinned public API."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trailkeeper import tlog

# tlog-checkpoint@v1.0.0's example (data, verbatim). Its key is not published.
SPEC_EXAMPLE = (
    "example.com/behind-the-sofa\n"
    "20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    "\n"
    "\u2014 example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/"
    "Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)


def test_the_public_api_is_pinned() -> None:
    assert tlog.__all__ == [
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
    for name in tlog.__all__:
        assert hasattr(tlog, name)


def test_the_spec_example_parses_and_an_unknown_key_cannot_vouch_for_it() -> None:
    text = SPEC_EXAMPLE.split("\n\n")[0] + "\n"
    checkpoint = tlog.parse_checkpoint(text)
    assert checkpoint.origin == "example.com/behind-the-sofa"
    assert checkpoint.size == 20852163
    assert checkpoint.root_hash == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert checkpoint.extensions == ()
    assert checkpoint.text == text
    stranger = tlog.generate_signer("example.com/behind-the-sofa")
    with pytest.raises(tlog.UnverifiedNoteError):
        tlog.open_checkpoint(SPEC_EXAMPLE, [stranger.verifier])


def test_a_signed_checkpoint_opens_with_the_log_key() -> None:
    log = tlog.generate_signer("trailkeeper.example/acme")
    checkpoint = tlog.Checkpoint("trailkeeper.example/acme", 7, bytes(range(32)), ("ext one",))
    signed = tlog.sign_checkpoint(checkpoint, [log])
    assert signed.startswith(
        "trailkeeper.example/acme\n7\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
    )
    opened, note = tlog.open_checkpoint(signed, [log.verifier], origin="trailkeeper.example/acme")
    assert opened == checkpoint
    assert [s.name for s in note.verified] == ["trailkeeper.example/acme"]
    with pytest.raises(tlog.FormatError, match="not 'other'"):
        tlog.open_checkpoint(signed, [log.verifier], origin="other")


@given(
    origin=st.text(
        st.characters(exclude_categories=("Cc", "Cs"), exclude_characters="\n"), min_size=1
    ),
    size=st.integers(0, 2**63 - 1),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(
        st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1), max_size=3
    ),
)
def test_checkpoints_round_trip(origin: str, size: int, root: bytes, extensions: list[str]) -> None:
    checkpoint = tlog.Checkpoint(origin, size, root, tuple(extensions))
    assert tlog.parse_checkpoint(checkpoint.text) == checkpoint


ROOT = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


@pytest.mark.parametrize(
    "text",
    [
        f"log\n1\n{ROOT}",  # no final newline
        "log\n1\n",  # no root hash
        f"\n1\n{ROOT}\n",  # an empty origin
        f"log\n01\n{ROOT}\n",  # a leading zero
        f"log\n+1\n{ROOT}\n",
        f"log\n-1\n{ROOT}\n",
        f"log\n 1\n{ROOT}\n",
        f"log\n1_000\n{ROOT}\n",
        f"log\n\u0661\n{ROOT}\n",  # a non-ASCII digit
        f"log\n{2**63}\n{ROOT}\n",  # past a signed 64-bit size
        f"log\n1\n{ROOT[:-1]}\n",  # unpadded
        f"log\n1\n{ROOT[:-2]}f=\n",  # non-canonical trailing bits
        f"log\n1\n{base64.b64encode(bytes(31)).decode()}\n",  # 31 bytes
        f"log\n1\n{ROOT}\n\n",  # an empty extension line
        f"log\n1\n{ROOT}\next\n\nmore\n",
    ],
)
def test_malformed_checkpoints_are_refused(text: str) -> None:
    with pytest.raises(tlog.FormatError):
        tlog.parse_checkpoint(text)


def test_an_empty_tree_checkpoint_has_size_0() -> None:
    text = f"log\n0\n{base64.b64encode(tlog.EMPTY_ROOT).decode()}\n"
    assert tlog.parse_checkpoint(text).size == 0
