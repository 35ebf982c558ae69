"""Learned weights of (context word, candidate-name word) pairs, for
``scoring = "learned"`` with ``word_pairs_rows > 0``.

A candidate's logit gains the sum of one learned weight per pair of a word
around its mention and a word of its KB name that the mention does not have
("soccer" x "f.c." for "Bologna F.C. 1909", "basketball" x "cavaliers" for
"Cleveland Cavaliers"). A candidate whose name adds nothing to the mention
(the city "Cleveland") pairs the context words with a marker word instead,
so "standings" x <same> can learn that a bare place name is unlikely in a
results table. The pairs are hashed into a fixed table of weights, so the
memory is ``rows`` floats whatever the vocabulary; the weights start at 0
and are learned with the ranker from the candidate loss. This is what a KB
without descriptions or types lets a linker learn of what kind of entity a
context wants: the name words shared by many entities ("national", "team",
"F.C.") carry over to entities never seen in training.
"""

from functools import lru_cache
from itertools import chain
from typing import Dict, List, Optional, Sequence, Tuple

import numpy
from spacy.strings import hash_string
from spacy.tokens import Doc, Span
from thinc.api import Model

from .evidence import _words, name_words

# Words of context on each side of the mention (tokens, the mention excluded).
PAIR_WINDOW = 25
# Adam moves a weight by about the learning rate per step; the gain lets a
# candidate's term (a mean over its pairs) reach the size of the prior's
# log-odds within the ~60 steps of 8 epochs on 58 docs. Chosen on the AIDA
# 2-fold dev protocol (BENCHMARKS.md): 20 learned nothing there, 120-240
# the most, 480 and more overshoot.
PAIR_GAIN = 120.0
# Stands for "no word beyond the mention's" in a candidate's name.
_SAME = "<same-as-mention>"
_MIX_1 = numpy.uint64(0x9E3779B97F4A7C15)
_MIX_2 = numpy.uint64(0xBF58476D1CE4E5B9)
_MIX_3 = numpy.uint64(0x94D049BB133111EB)


@lru_cache(maxsize=1 << 18)
def _word_hash(word: str) -> int:
    return hash_string(word)


def _hashes(words) -> numpy.ndarray:
    return numpy.fromiter((_word_hash(w) for w in words), dtype=numpy.uint64)


def _mix(context: numpy.ndarray, name: numpy.ndarray) -> numpy.ndarray:
    """One well-spread uint64 per (context word, name word) pair (all pairs)."""
    with numpy.errstate(over="ignore"):
        keys = (context[:, None] * _MIX_1 + name[None, :]).ravel()
        keys ^= keys >> numpy.uint64(30)
        keys *= _MIX_2
        keys ^= keys >> numpy.uint64(27)
        keys *= _MIX_3
        keys ^= keys >> numpy.uint64(31)
    return keys


# name_words' own cache holds names and mentions; a corpus' tokens would
# crowd them out of it, so they have a cache of their own.
@lru_cache(maxsize=1 << 18)
def _token_words(lower: str) -> Tuple[str, ...]:
    return _words(lower)


def _doc_words(doc: Doc) -> List[Tuple[str, ...]]:
    """Each token's words (lower case, stopwords out), in doc order."""
    return [_token_words(token.lower_) for token in doc]


def context_words(mention: Span, window: int = PAIR_WINDOW,
                  doc_words: Optional[List[Tuple[str, ...]]] = None) -> Tuple[str, ...]:
    """The distinct words (lower case, stopwords out) within ``window`` tokens
    of the mention, the mention's own words left out. doc_words: the doc's
    ``_doc_words``, when the caller has them for several mentions."""
    if doc_words is None:
        doc_words = _doc_words(mention.doc)
    return _context(mention, window, doc_words, set(name_words(mention.text)))


def _context(mention: Span, window: int, doc_words: List[Tuple[str, ...]],
             own: set) -> Tuple[str, ...]:
    around = chain(doc_words[max(0, mention.start - window):mention.start],
                   doc_words[mention.end:mention.end + window])
    return tuple(w for w in dict.fromkeys(chain.from_iterable(around)) if w not in own)


@lru_cache(maxsize=1 << 16)
def _name_hashes(name: str) -> Tuple[Tuple[str, int], ...]:
    return tuple((w, _word_hash(w)) for w in name_words(name))


def pair_keys(offsets: numpy.ndarray, names: Sequence[str], mentions: Sequence[Span],
              window: int = PAIR_WINDOW
              ) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """The hashed (context word, name word) pairs of every candidate.

    offsets: the candidate table's offsets (one mention per row of
    ``mentions``); names: each candidate's KB name. RETURNS (keys, owners,
    shares): uint64 pair keys, for each the index of its candidate, and its
    share of the candidate's term (1 / the number of context words: a
    candidate's term is the mean over its context words, so that a step of
    the optimizer moves it as far in a long window as in a short one).
    """
    keys: List[numpy.ndarray] = []
    owners: List[numpy.ndarray] = []
    shares: List[numpy.ndarray] = []
    same = _word_hash(_SAME)
    doc_words: Dict[int, List[Tuple[str, ...]]] = {}  # per doc, for its mentions
    for i, mention in enumerate(mentions):
        start, end = int(offsets[i]), int(offsets[i + 1])
        if start == end:
            continue
        words = doc_words.get(id(mention.doc))
        if words is None:
            words = doc_words[id(mention.doc)] = _doc_words(mention.doc)
        own = set(name_words(mention.text))
        context = _hashes(_context(mention, window, words, own))
        if not len(context):
            continue
        # All candidates' name words in one row, with the candidate of each:
        # one _mix per mention, not per candidate.
        name: List[int] = []
        owner: List[int] = []
        for c in range(start, end):
            extra = [h for w, h in _name_hashes(names[c]) if w not in own] or [same]
            name.extend(extra)
            owner.extend([c] * len(extra))
        keys.append(_mix(context, numpy.asarray(name, dtype=numpy.uint64)))
        owners.append(numpy.tile(numpy.asarray(owner, dtype=numpy.int64), len(context)))
        shares.append(numpy.full(len(context) * len(name), 1.0 / len(context)))
    if not keys:
        return (numpy.zeros(0, dtype=numpy.uint64), numpy.zeros(0, dtype=numpy.int64),
                numpy.zeros(0, dtype=numpy.float64))
    return numpy.concatenate(keys), numpy.concatenate(owners), numpy.concatenate(shares)


def build_word_pairs(n_rows: int) -> Model:
    """The pair weights: (keys, owners, shares, n_candidates) -> one float64
    logit term per candidate, the sum of its pairs' weights times their shares
    (``n_rows`` hashed weights, starting at 0)."""
    return Model("word_pairs", _pairs_forward, init=_pairs_init,
                 params={"W": None}, dims={"nV": n_rows}, attrs={"gain": PAIR_GAIN})


def _pairs_init(model: Model, X=None, Y=None) -> None:
    model.set_param("W", model.ops.alloc1f(model.get_dim("nV")))


def _pairs_forward(model: Model, inputs, is_train: bool):
    keys, owners, shares, n_candidates = inputs
    gain = model.attrs["gain"]
    rows = (keys % numpy.uint64(model.get_dim("nV"))).astype(numpy.int64)
    weights = model.ops.to_numpy(model.get_param("W"))
    out = gain * numpy.bincount(owners, weights=weights[rows] * shares,
                                minlength=n_candidates)

    def backprop(d_out: numpy.ndarray) -> None:
        d_weights = numpy.bincount(rows, weights=gain * shares * numpy.asarray(d_out)[owners],
                                   minlength=len(weights)).astype(numpy.float32)
        model.inc_grad("W", model.ops.asarray1f(d_weights))

    return out, backprop
