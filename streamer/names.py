"""Records stage, name mentions: which tracked accounts a post's text names by a watch term.

One Aho-Corasick automaton (pyahocorasick) holds every term of every account, normalized
(schemas/terms.py: case, accents, white space); a post's text is normalized the same way and
scanned once, whatever the number of terms, never one regex per term. A hit counts only on word
boundaries: the characters either side are not letters, digits or `_`. So `#CHUToulouse`
matches the hashtag, a term without `#` also matches its hashtag form (`APHP` in `#APHP`, the
`#` is a boundary), and `CHU` never matches inside `CHUV`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final, NamedTuple

import ahocorasick

from schemas.terms import normalize


class Hit(NamedTuple):
    did: str  # the account the term belongs to
    term: str  # the term as written in the accounts or terms file


_Entry = tuple[int, tuple[Hit, ...]]  # (length of the normalized term, its accounts)
_WORD_EXTRA: Final = "_"


def _is_word(char: str) -> bool:
    return char.isalnum() or char == _WORD_EXTRA


class NameMatcher:
    """did → terms, compiled once; `find(text)` is called for every post create."""

    def __init__(self, terms: Mapping[str, Sequence[str]]) -> None:
        entries: dict[str, list[Hit]] = {}
        for did, names in terms.items():
            for term in names:
                hits = entries.setdefault(normalize(term), [])
                if all(h.did != did for h in hits):
                    hits.append(Hit(did, term))
        self.term_count = sum(len(hits) for hits in entries.values())
        self._automaton: ahocorasick.Automaton | None = None
        if entries:
            automaton = ahocorasick.Automaton()
            for key, hits in entries.items():
                automaton.add_word(key, (len(key), tuple(hits)))
            automaton.make_automaton()
            self._automaton = automaton

    def __bool__(self) -> bool:
        return self._automaton is not None

    def find(self, text: str) -> list[Hit]:
        """The accounts `text` names, each once (its first term in the text), in text order."""
        if self._automaton is None or not text:
            return []
        folded = normalize(text)
        last = len(folded) - 1
        found: dict[str, Hit] = {}
        entry: _Entry
        for end, entry in self._automaton.iter(folded):
            length, hits = entry
            start = end - length + 1
            if (start > 0 and _is_word(folded[start - 1])) or (end < last and _is_word(folded[end + 1])):
                continue
            for hit in hits:
                found.setdefault(hit.did, hit)
        return list(found.values())
