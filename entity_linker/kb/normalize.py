"""Alias normalisation: the key of the KB's second alias index.

Two spellings of one name should meet on one key: "St. Louis", "Saint Louis"
and "SAINT-LOUIS" all become "saint louis". The steps, in order:

1. Unicode NFKC (compatibility forms: ligatures, full-width letters);
2. case folding ("Straße" -> "strasse");
3. diacritics removed (NFD, then combining marks dropped: "Zürich" -> "zurich");
4. apostrophes and periods deleted, so abbreviations keep together ("U.S." -> "us",
   "O'Fallon" -> "ofallon"); every other non-alphanumeric character becomes a space;
5. whitespace collapsed, and each word replaced by its expansion if it has one
   ("st" -> "saint", "mt" -> "mount").

The same normaliser builds the index and normalises queries: a KB file stores
its expansions, so queries always use the table the index was built with.
"""

import unicodedata
from typing import Dict, Iterable, List, Optional

from ..errors import KBError

# Word expansions for place names (the default; any table can be configured).
DEFAULT_EXPANSIONS: Dict[str, str] = {
    "st": "saint",
    "ste": "sainte",
    "mt": "mount",
    "mtn": "mountain",
    "ft": "fort",
    "pt": "point",
}
# Deleted rather than turned into a space: they sit inside abbreviations and names.
_DELETED = ".'’`´"
_FORMAT_VERSION = 1


def _ascii_table() -> Dict[int, Optional[str]]:
    table: Dict[int, Optional[str]] = {}
    for code in range(128):
        char = chr(code)
        if char in _DELETED:
            table[code] = None
        elif char.isalnum():
            table[code] = char.lower()
        else:
            table[code] = " "
    return table


_ASCII = _ascii_table()


class _FoldTable(dict):
    """str.translate table for casefolded NFD text, filled in as characters are
    met: combining marks and _DELETED go, other non-alphanumerics become spaces."""

    def __missing__(self, code: int) -> Optional[str]:
        char = chr(code)
        if unicodedata.combining(char) or char in _DELETED:
            value = None
        else:
            value = char if char.isalnum() else " "
        self[code] = value
        return value


_UNICODE = _FoldTable()


def decompose(text: str) -> str:
    """Steps 1-3 of the normalisation of a non-ASCII text: NFKC, case folding
    and NFD (the marks go in step 4)."""
    return unicodedata.normalize("NFD", unicodedata.normalize("NFKC", text).casefold())


def fold_char(code: int) -> Optional[str]:
    """Step 4 for one code point of a decomposed text: None when it is
    deleted, else the character itself or a space."""
    return _UNICODE[code]


def _fold(text: str) -> str:
    """Steps 1-4 of the normalisation (no word expansion)."""
    if text.isascii():  # the common case: NFKC, NFD and casefold reduce to lower()
        return text.translate(_ASCII)
    return decompose(text).translate(_UNICODE)


class AliasNormalizer:
    """Maps an alias or mention text to its normalised key.

    expansions (Optional[Dict[str, str]]): Word -> replacement, applied to each
        word after folding (keys and values are normalised too). None gives
        DEFAULT_EXPANSIONS; {} turns expansion off.
    """

    def __init__(self, expansions: Optional[Dict[str, str]] = None) -> None:
        if expansions is None:
            expansions = DEFAULT_EXPANSIONS
        if not isinstance(expansions, dict):
            raise KBError(
                f"expansions must be a dict of word -> replacement, got "
                f"{type(expansions).__name__}."
            )
        table = {}
        for word, replacement in expansions.items():
            if not isinstance(word, str) or not isinstance(replacement, str):
                raise KBError(f"Expansion {word!r} -> {replacement!r}: both must be str.")
            key = " ".join(_fold(word).split())
            if not key or " " in key:
                raise KBError(
                    f"Expansion key {word!r} must be a single word (it normalises to "
                    f"{key!r})."
                )
            table[key] = " ".join(_fold(replacement).split())
        self.expansions: Dict[str, str] = table

    def __call__(self, text: str) -> str:
        """The normalised key of text ("" when nothing alphanumeric is left)."""
        if not isinstance(text, str):
            raise KBError(f"Expected str to normalise, got {type(text).__name__} {text!r}.")
        words = _fold(text).split()
        if self.expansions:
            get = self.expansions.get
            words = [get(word, word) for word in words]
        return " ".join(words)

    def normalize_many(self, texts: Iterable[str]) -> List[str]:
        """The normalised key of each text."""
        return [self(text) for text in texts]

    def to_dict(self) -> dict:
        """The settings, as stored in a KB file."""
        return {"version": _FORMAT_VERSION, "expansions": dict(self.expansions)}

    @classmethod
    def from_dict(cls, data: dict) -> "AliasNormalizer":
        """The normaliser described by ``to_dict()`` output."""
        if not isinstance(data, dict) or data.get("version") != _FORMAT_VERSION:
            raise KBError(
                f"Unknown alias normaliser settings {data!r}: this entity_linker reads "
                f"version {_FORMAT_VERSION}. Rebuild the index with kb.build_alias_index()."
            )
        return cls(data.get("expansions", {}))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AliasNormalizer) and other.expansions == self.expansions

    def __repr__(self) -> str:
        return f"AliasNormalizer(expansions={self.expansions!r})"
