"""The spotter's n-grams: enumerating a doc's token n-grams that pass the
token-level filters (numpy, no strings built), the doc's text, and the greedy
resolution of overlapping matches."""

from typing import Any, Dict, List, Sequence, Tuple

import numpy
from spacy.attrs import (
    IDX,
    IS_PUNCT,
    IS_SPACE,
    IS_STOP,
    IS_UPPER,
    LENGTH,
    LOWER,
    ORTH,
    SENT_START,
    SPACY,
)
from spacy.tokens import Doc

TOKEN_ATTRS = [IDX, LENGTH, IS_PUNCT, IS_SPACE, IS_STOP, IS_UPPER, ORTH, LOWER, SENT_START, SPACY]
(_IDX, _LENGTH, _PUNCT, _SPACE, _STOP, _UPPER, _ORTH, _LOWER, _SENT, _SPACY) = range(
    len(TOKEN_ATTRS))


def enumerate_ngrams(doc: Doc, attrs: numpy.ndarray, cfg: Dict[str, Any]):
    """(token starts, token ends, char starts, char ends) of the doc's n-grams
    that pass the token-level filters, longest first (attrs: TOKEN_ATTRS; cfg: the
    spotter's settings)."""
    empty = numpy.zeros(0, dtype=numpy.int64)
    n = len(doc)
    if n == 0:
        return empty, empty, empty, empty
    char_starts = attrs[:, _IDX]
    char_ends = char_starts + attrs[:, _LENGTH]
    can_edge = (attrs[:, _PUNCT] == 0) & (attrs[:, _SPACE] == 0)
    # A mention never spans whitespace tokens ("\n\n") or sentence starts.
    breaks = attrs[:, _SPACE] != 0
    if doc.has_annotation("SENT_START"):
        breaks |= attrs[:, _SENT] == 1
    block = numpy.cumsum(breaks)
    uppers = numpy.zeros(n + 1, dtype=numpy.int64)
    numpy.cumsum(attrs[:, _ORTH] != attrs[:, _LOWER], out=uppers[1:])
    stops = numpy.zeros(n + 1, dtype=numpy.int64)
    numpy.cumsum((attrs[:, _STOP] != 0) & (attrs[:, _UPPER] == 0), out=stops[1:])
    parts = []
    for width in range(min(cfg["max_words"], n), 0, -1):
        first = numpy.arange(n - width + 1)
        last = first + width - 1
        ok = can_edge[first] & can_edge[last] & (block[first] == block[last])
        ok &= char_ends[last] - char_starts[first] >= cfg["min_length"]
        if cfg["skip_lowercase"]:
            ok &= uppers[last + 1] > uppers[first]
        if cfg["skip_stop_words"]:
            ok &= stops[last + 1] - stops[first] < width
        first = first[ok]
        parts.append((first, first + width))
    token_starts = numpy.concatenate([part[0] for part in parts])
    token_ends = numpy.concatenate([part[1] for part in parts])
    return (token_starts, token_ends, char_starts[token_starts],
            char_ends[token_ends - 1])


def doc_text(doc: Doc, attrs: numpy.ndarray) -> str:
    """doc.text, from the distinct token strings (doc.text makes a Token object
    per token, which costs more than the whole spotter)."""
    orths, inverse = numpy.unique(attrs[:, _ORTH], return_inverse=True)
    strings = doc.vocab.strings
    words = [strings[orth] for orth in orths.tolist()]
    pieces = words + [word + " " for word in words]
    choice = inverse.reshape(-1) + len(words) * (attrs[:, _SPACY] != 0)
    return "".join([pieces[i] for i in choice.tolist()])


def best_per_segment(offsets: numpy.ndarray, entity_rows: numpy.ndarray,
                      priors: numpy.ndarray) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """The highest prior of each CSR segment and its entity row (-1 if empty);
    ties go to the earlier slot."""
    n = len(offsets) - 1
    counts = numpy.diff(offsets)
    best_priors = numpy.zeros(n, dtype=numpy.float32)
    best_rows = numpy.full(n, -1, dtype=numpy.int64)
    filled = numpy.flatnonzero(counts > 0)
    if not len(filled):
        return best_priors, best_rows
    segment = numpy.repeat(numpy.arange(n), counts)
    order = numpy.lexsort((numpy.arange(len(priors)), -priors, segment))
    best = order[offsets[filled]]
    best_priors[filled] = priors[best]
    best_rows[filled] = entity_rows[best]
    return best_priors, best_rows


def resolve_matches(docs: Sequence[Doc], owners: numpy.ndarray, starts: numpy.ndarray,
             ends: numpy.ndarray, priors: numpy.ndarray,
             shown: numpy.ndarray) -> List[List[Tuple[int, int]]]:
    """Greedy non-overlapping matches per doc: more tokens, then higher prior,
    then leftmost first; a chosen match that is not ``shown`` only blocks others."""
    order = numpy.lexsort((starts, -priors, starts - ends, owners))
    results: List[List[Tuple[int, int]]] = [[] for _ in docs]
    taken: Dict[int, bytearray] = {}
    for owner, start, end, show in zip(owners[order].tolist(), starts[order].tolist(),
                                       ends[order].tolist(), shown[order].tolist()):
        used = taken.get(owner)
        if used is None:
            used = taken[owner] = bytearray(len(docs[owner]))
        if any(used[start:end]):
            continue
        used[start:end] = b"\x01" * (end - start)
        if show:
            results[owner].append((start, end))
    for matches in results:
        matches.sort()
    return results
