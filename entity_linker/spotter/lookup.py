"""The spotter's KB lookups: each n-gram's candidates (exact for short
texts, else normalised), its best candidate, and whether it names a place
that contains the entity before it (``containers``). ``cfg`` is the
spotter's settings."""

from typing import Any, Dict, List, Sequence, Tuple

import numpy
from spacy.tokens import Doc

from ..candidates import alias_index
from ..kb import InMemoryLookupKB
from .ngrams import best_per_segment


def name_containers(kb: InMemoryLookupKB, docs: Sequence[Doc], owners, starts,
                    texts: List[str], char_lengths: numpy.ndarray,
                    cfg: Dict[str, Any]) -> numpy.ndarray:
    """Which n-grams name a container of the entity right before them: the
    n-gram follows "<entity>,", "<entity> (" or "<entity> in" and one of its
    candidates is an ancestor of one of the entity's candidates ("Portland,
    Maine")."""
    out = numpy.zeros(len(texts), dtype=bool)
    ent_by_end = [{ent.end: ent.text for ent in doc.ents} for doc in docs]
    pairs = []  # (n-gram position, text of the entity before it)
    for i, (owner, start) in enumerate(zip(owners.tolist(), starts.tolist())):
        doc = docs[owner]
        if start >= 2 and doc[start - 1].text in (",", "(", "in"):
            before = ent_by_end[owner].get(start - 1)
            if before is not None:
                pairs.append((i, before))
    if not pairs:
        return out
    befores = [text for _, text in pairs]
    before_rows = candidate_rows(
        kb, befores, numpy.array([len(text) for text in befores]), cfg)
    flat = numpy.concatenate(before_rows) if before_rows else numpy.zeros(0, numpy.int64)
    offsets, ancestors = kb.ancestor_rows(flat)
    own_rows = candidate_rows(kb, [texts[i] for i, _ in pairs],
                              char_lengths[[i for i, _ in pairs]], cfg)
    position = 0
    for (i, _), rows_before, rows_here in zip(pairs, before_rows, own_rows):
        end = position + len(rows_before)
        above = ancestors[int(offsets[position]) : int(offsets[end])]
        position = end
        out[i] = bool(len(numpy.intersect1d(above, rows_here)))
    return out


def candidate_rows(kb: InMemoryLookupKB, texts: List[str], char_lengths: numpy.ndarray,
                   cfg: Dict[str, Any]) -> List[numpy.ndarray]:
    """Every candidate entity row of each text (as the spotter matches it)."""
    out: List[numpy.ndarray] = [numpy.zeros(0, dtype=numpy.int64)] * len(texts)
    for positions, (offsets, rows, _) in lookups(kb, texts, char_lengths, cfg):
        for j, i in enumerate(positions.tolist()):
            out[i] = numpy.asarray(rows[int(offsets[j]) : int(offsets[j + 1])],
                                   dtype=numpy.int64)
    return out


def lookups(kb: InMemoryLookupKB, texts: List[str], char_lengths: numpy.ndarray,
            cfg: Dict[str, Any]):
    """(positions, (offsets, rows, priors)) per lookup: exact for short texts
    (and all texts unless ``normalized``), normalised for the others."""
    n = len(texts)
    if cfg["normalized"]:
        # Short mentions must equal an alias, case included ("US", not "us").
        exact = numpy.flatnonzero(char_lengths <= cfg["case_sensitive_below"])
        loose = numpy.flatnonzero(char_lengths > cfg["case_sensitive_below"])
    else:
        exact = numpy.arange(n)
        loose = numpy.zeros(0, dtype=numpy.int64)
    if len(exact):
        yield exact, kb.lookup_aliases([texts[i] for i in exact])
    if len(loose):
        index = alias_index(kb)
        offsets, rows, slot_priors, _ = index.gather(index.key_rows([texts[i] for i in loose]))
        yield loose, (offsets, rows, slot_priors)


def best_candidates(kb: InMemoryLookupKB, texts: List[str], char_lengths: numpy.ndarray,
                    cfg: Dict[str, Any]) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """The best prior and its entity row (-1: not an alias) of each text."""
    n = len(texts)
    priors = numpy.zeros(n, dtype=numpy.float32)
    entity_rows = numpy.full(n, -1, dtype=numpy.int64)
    if not n:
        return priors, entity_rows
    for positions, (offsets, rows, slot_priors) in lookups(kb, texts, char_lengths, cfg):
        priors[positions], entity_rows[positions] = best_per_segment(offsets, rows,
                                                                     slot_priors)
    return priors, entity_rows
