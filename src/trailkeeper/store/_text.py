"""Free text as both backends index and search it: one normalisation, one tokeniser.

What an event's free text is (``fts_text``), how it becomes words (``words``), and how a word
becomes the token an index holds (``org_tokens``). Both backends index exactly these tokens and
look up exactly these tokens, so a word matches the same events on SQLite and PostgreSQL:

- NFKC, then full case folding: full-width letters are ASCII (U+FF3A is ``z``), the
  ligature ``ﬁ`` is ``fi``, ``²`` is ``2``, ``ß`` and ``SS`` are both ``ss``;
- accents removed: the combining marks of the canonical decomposition go (``Café`` is
  ``cafe``, ``Ärger`` is ``arger``);
- words are runs of letters and digits; everything else separates them (``build-42.7`` is
  ``build 42 7``); a word is cut to 500 characters.

Every token carries its org: the word ``zebra`` of the org whose key is 17 is indexed as
``17_zebra`` (a word never holds ``_``, so the prefix is unambiguous). A term's list of
matches in the index (FTS5's posting list, the GIN index's) then holds one org's events only:
what a search costs, and how long it takes, depends on the searching org's own events, never
on how often the word occurs in other orgs' logs.
"""

from __future__ import annotations

import re
import unicodedata

from ..events import Event

_WORD = re.compile(r"[^\W_]+")
_ASCII_WORD = re.compile(r"[a-z0-9]+")
# PostgreSQL's lexemes stop at 2046 bytes: 500 characters of at most 4 bytes each, plus the
# org prefix, always fit. The cut is the same in events and in queries.
MAX_WORD = 500


def fts_text(event: Event) -> str:
    """What free text searches: description, details, names, and the error."""
    parts = [event.description, *event.details]
    if event.actor.name:
        parts.append(event.actor.name)
    parts.extend(t.name for t in event.targets if t.name)
    if event.error is not None:
        parts.append(event.error.code)
        parts.append(event.error.message)
    return "\n".join(parts)


def fold(text: str) -> str:
    """``text`` normalised for search: NFKC, case-folded, accents removed."""
    if text.isascii():  # NFKC leaves ASCII alone; casefold is lower
        return text.lower()
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    plain = "".join([c for c in folded if not unicodedata.combining(c)])
    return unicodedata.normalize("NFC", plain)


def words(text: str) -> list[str]:
    """The words of ``text`` as free-text search sees them (see the module's rules)."""
    if text.isascii():  # the common case: a cheaper pattern
        return [w[:MAX_WORD] for w in _ASCII_WORD.findall(text.lower())]
    return [w[:MAX_WORD] for w in _WORD.findall(fold(text))]


def org_tokens(org_key: int, text: str) -> list[str]:
    """The words of ``text`` as the index tokens of the org whose key is ``org_key``."""
    prefix = f"{org_key}_"
    return [prefix + w for w in words(text)]


def query_tokens(org_key: int, terms: tuple[str, ...]) -> list[list[str]] | None:
    """Each term (a word or a phrase) as the org's tokens, in order; ``None`` when a term has
    no word at all (only punctuation): such a term matches nothing."""
    found = [org_tokens(org_key, term) for term in terms]
    return None if any(not tokens for tokens in found) else found
