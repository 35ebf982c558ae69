"""The doc-level evidence about each candidate: coherence with the doc's other
mentions, coreference with a longer mention, what the candidate's name says
(``name_evidence``) and containment by (or of) a place the doc names."""

import re
from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Tuple

import numpy

from .ranker import NAME_FEATURES


def coherence(offsets: numpy.ndarray, priors: numpy.ndarray, vectors: numpy.ndarray,
              docs: Sequence[int], groups: Sequence[int],
              include: Optional[Sequence[bool]] = None) -> numpy.ndarray:
    """Per candidate: how well its entity fits the other mentions of its doc.

    Each mention is summarised by the prior-weighted mean of its candidates'
    unit entity vectors. A candidate's coherence is the cosine of its vector
    with the sum of the summaries of the other mentions of the same doc,
    leaving out the mention's own group (mentions with the same text, which
    would only vote for themselves). 0 when the doc has no other mention.
    In a KB whose vectors describe where or what an entity is, this prefers
    the Paris near the doc's other places.

    docs (Sequence[int]): The doc index of each mention.
    groups (Sequence[int]): A group id per mention, equal for same-text
        mentions of one doc.
    include (Optional[Sequence[bool]]): Mentions that vote (default all).
    RETURNS (numpy.ndarray): float32, one value per candidate.
    """
    n = len(offsets) - 1
    counts = numpy.diff(offsets)
    mention = numpy.repeat(numpy.arange(n), counts)
    norms = numpy.linalg.norm(vectors, axis=1, keepdims=True)
    unit = numpy.divide(vectors, norms, out=numpy.zeros_like(vectors),
                        where=norms > 0).astype(numpy.float64)
    priors = numpy.asarray(priors, dtype=numpy.float64)
    totals = numpy.bincount(mention, weights=priors, minlength=n)
    # Priors that sum to 0 (e.g. a KB without them): every candidate weighs the same.
    weights = numpy.where(totals[mention] > 0,
                          priors / numpy.maximum(totals[mention], 1e-300),
                          1.0 / numpy.maximum(counts[mention], 1))
    if include is not None:
        weights = weights * numpy.asarray(include, dtype=bool)[mention]
    summaries = numpy.zeros((n, unit.shape[1]), dtype=numpy.float64)
    numpy.add.at(summaries, mention, weights[:, None] * unit)
    docs = numpy.asarray(docs, dtype=numpy.int64)
    groups = numpy.asarray(groups, dtype=numpy.int64)
    by_doc = numpy.zeros((int(docs.max(initial=-1)) + 1, unit.shape[1]))
    numpy.add.at(by_doc, docs, summaries)
    by_group = numpy.zeros((int(groups.max(initial=-1)) + 1, unit.shape[1]))
    numpy.add.at(by_group, groups, summaries)
    context = by_doc[docs] - by_group[groups]
    context_norms = numpy.linalg.norm(context, axis=1, keepdims=True)
    # Rounding leaves tiny non-zero contexts where no other mention voted.
    context = numpy.divide(context, context_norms, out=numpy.zeros_like(context),
                           where=context_norms > 1e-9)
    return numpy.einsum("ij,ij->i", unit, context[mention]).astype(numpy.float32)


def coreference(offsets: numpy.ndarray, keys: numpy.ndarray, priors: numpy.ndarray,
                docs: Sequence[int], texts: Sequence[str]) -> numpy.ndarray:
    """Per candidate: its highest prior among the candidates of a longer mention
    of the same doc whose words contain this mention's words ("Harris" and
    "Chris Harris"; case-insensitive), 0 where there is none. News names a
    person or team in full once, then shortly: the short mention's entity is
    usually the long one's.

    keys: the candidates' entity keys; docs: the doc index of each mention;
    texts: each mention's text. RETURNS float32, one value per candidate.
    """
    out = numpy.zeros(len(keys), dtype=numpy.float32)
    words = [tuple(text.lower().split()) for text in texts]
    by_doc: Dict[int, List[int]] = {}
    for i, doc in enumerate(docs):
        by_doc.setdefault(int(doc), []).append(i)
    for mentions in by_doc.values():
        for i in mentions:
            n = len(words[i])
            longer = [j for j in mentions if len(words[j]) > n and n and any(
                words[j][k:k + n] == words[i] for k in range(len(words[j]) - n + 1))]
            if not longer:
                continue
            best: Dict[int, float] = {}
            for j in longer:
                for c in range(int(offsets[j]), int(offsets[j + 1])):
                    key = int(keys[c])
                    best[key] = max(best.get(key, 0.0), float(priors[c]))
            for c in range(int(offsets[i]), int(offsets[i + 1])):
                out[c] = best.get(int(keys[c]), 0.0)
    return out


# Names (``name_evidence``): words too common in entity names to say anything.
NAME_STOPWORDS = frozenset(
    "a an and at by de del der des di du for in la le les of on the to van von".split())
# A name word longer than this matches a doc word with the same first STEM
# letters ("cricketer" and "cricket", "Italian" and "Italy" do not: 5 letters).
STEM = 5
_WORD = re.compile(r"[^\W_]+")


def _words(text: str) -> Tuple[str, ...]:
    """The distinct lower-cased words of a text, stopwords left out."""
    return tuple(dict.fromkeys(w for w in _WORD.findall(text.lower()) if w not in NAME_STOPWORDS))


@lru_cache(maxsize=1 << 16)
def name_words(text: str) -> Tuple[str, ...]:
    """The distinct lower-cased words of a name or mention, stopwords left out
    ("Italy national rugby union team" -> ("italy", "national", "rugby", ...)).
    Cached: names and mentions repeat across batches. Whole docs do not (they
    go through ``_words``), and caching them would keep doc texts alive."""
    return _words(text)


def name_evidence(offsets: numpy.ndarray, names: Sequence[str], docs: Sequence[int],
                  groups: Sequence[int], texts: Sequence[str], doc_texts: Sequence[str]
                  ) -> numpy.ndarray:
    """What each candidate's name says beyond the mention: two columns,
    ``NAME_FEATURES``.

    * name_context: the share of the name's words that are not the mention's
      (and not stopwords) found in the mention's doc, a word or its first
      STEM letters: "Italy national rugby union team" in a rugby report.
    * name_coherence: the largest share, over those words, of the doc's other
      mention groups that have a candidate whose name holds the word too: in
      a football results list, "Chester", "York" and "Exeter" all have an
      "... City F.C." candidate.

    names: each candidate's entity name ("" when it has none); docs, groups:
    per mention, its doc index and its group (same doc and text, e.g.
    ``(doc, text.lower())`` numbered); texts: each mention's text; doc_texts:
    the text of each doc. RETURNS float32 (n_candidates, 2); 0 for a
    candidate without such words.
    """
    out = numpy.zeros((len(names), len(NAME_FEATURES)), dtype=numpy.float32)
    n_mentions = len(offsets) - 1
    if not n_mentions or not len(names):
        return out
    doc_words: Dict[int, Tuple[set, set]] = {}
    for doc in set(int(d) for d in docs):
        words = set(_words(doc_texts[doc]))
        doc_words[doc] = (words, {w[:STEM] for w in words if len(w) >= STEM})
    # Each candidate's words beyond its mention, and each group's union of them.
    own: List[Tuple[str, ...]] = []
    group_words: Dict[int, set] = {}
    group_doc: Dict[int, int] = {}
    for i in range(n_mentions):
        mention = set(name_words(texts[i]))
        union = group_words.setdefault(int(groups[i]), set())
        group_doc[int(groups[i])] = int(docs[i])
        for c in range(int(offsets[i]), int(offsets[i + 1])):
            words = tuple(w for w in name_words(names[c]) if w not in mention)
            own.append(words)
            union.update(words)
    # Per doc: its number of groups, and for each word how many groups have it.
    n_groups: Dict[int, int] = {}
    groups_with: Dict[int, Dict[str, int]] = {}
    for group, doc in group_doc.items():
        n_groups[doc] = n_groups.get(doc, 0) + 1
        counts = groups_with.setdefault(doc, {})
        for w in group_words[group]:
            counts[w] = counts.get(w, 0) + 1
    for i in range(n_mentions):
        doc = int(docs[i])
        words_in_doc, stems_in_doc = doc_words[doc]
        n_others = n_groups[doc] - 1
        counts = groups_with[doc]
        for c in range(int(offsets[i]), int(offsets[i + 1])):
            words = own[c]
            if not words:
                continue
            found = sum(1 for w in words if w in words_in_doc
                        or (len(w) >= STEM and w[:STEM] in stems_in_doc))
            out[c, 0] = found / len(words)
            if n_others:
                # The mention's own group has each of its candidates' words.
                out[c, 1] = (max(counts[w] for w in words) - 1) / n_others
    return out


# Containment (``containment``): a place named in the doc but not right
# beside the mention counts this much of one named beside it ("Springfield,
# Illinois", "Paris (Texas)", "Cambridge in England").
DOC_CONTAINMENT = 0.5
# The containment evidence of another mention's candidate is its prior to this
# power. A small prior understates that candidate once the relation is seen:
# of ten Henry Counties, the one that holds the doc's Paris is likely the one
# meant, though its prior is 0.05 (0.23 to the power 0.5).
# Chosen on LGL's dev splits (3 seeds, mean accuracy: 0.839 with 1, 0.844 with
# 0.5; 0.25 and 0 no better); TR-News's (~120 mentions) did not tell them apart.
RELATION_PRIOR_POWER = 0.5


def _max_by_key(keys: numpy.ndarray, values: numpy.ndarray
                ) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """The distinct keys (sorted) and the largest value of each."""
    if not len(keys):
        return keys, values
    order = numpy.lexsort((-values, keys))
    keys, values = keys[order], values[order]
    first = numpy.ones(len(keys), dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    return keys[first], values[first]


def _lookup(table_keys: numpy.ndarray, table_values: numpy.ndarray,
            keys: numpy.ndarray) -> numpy.ndarray:
    """table_values at each of keys (0 where a key is absent)."""
    out = numpy.zeros(len(keys), dtype=numpy.float64)
    if not len(table_keys) or not len(keys):
        return out
    at = numpy.searchsorted(table_keys, keys).clip(0, len(table_keys) - 1)
    found = table_keys[at] == keys
    out[found] = table_values[at[found]]
    return out


def _best_of_other_groups(doc_keys, groups, values, query_keys, query_groups):
    """For each query: the largest value among the entries with its doc key
    whose group differs from the query's group (0 when there is none)."""
    out = numpy.zeros(len(query_keys), dtype=numpy.float64)
    if not len(doc_keys) or not len(query_keys):
        return out
    # The best value of each (key, group), then the two best groups of each key.
    order = numpy.lexsort((-values, groups, doc_keys))
    doc_keys, groups, values = doc_keys[order], groups[order], values[order]
    first = numpy.ones(len(doc_keys), dtype=bool)
    first[1:] = (doc_keys[1:] != doc_keys[:-1]) | (groups[1:] != groups[:-1])
    doc_keys, groups, values = doc_keys[first], groups[first], values[first]
    order = numpy.lexsort((-values, doc_keys))
    doc_keys, groups, values = doc_keys[order], groups[order], values[order]
    starts = numpy.flatnonzero(numpy.r_[True, doc_keys[1:] != doc_keys[:-1]])
    ends = numpy.r_[starts[1:], len(doc_keys)]
    unique = doc_keys[starts]
    at = numpy.searchsorted(unique, query_keys).clip(0, len(unique) - 1)
    found = unique[at] == query_keys
    best = starts[at]
    has_second = ends[at] - starts[at] > 1
    second = numpy.minimum(best + 1, len(doc_keys) - 1)
    use_second = groups[best] == query_groups
    value = numpy.where(use_second, numpy.where(has_second, values[second], 0.0), values[best])
    out[found] = value[found]
    return out


def _ancestor_pairs(offsets: numpy.ndarray, anc_offsets: numpy.ndarray
                    ) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """(mention of each candidate, candidate of each (candidate, ancestor)
    pair, mention of each pair), from the CSR offsets of both."""
    mention = numpy.repeat(numpy.arange(len(offsets) - 1), numpy.diff(offsets))
    pair_cand = numpy.repeat(numpy.arange(len(mention)), numpy.diff(anc_offsets))
    return mention, pair_cand, mention[pair_cand]


def containment(offsets: numpy.ndarray, rows: numpy.ndarray, priors: numpy.ndarray,
                ancestors: Tuple[numpy.ndarray, numpy.ndarray], docs: Sequence[int],
                groups: Sequence[int], next_mention: Sequence[int],
                include: Optional[Sequence[bool]] = None) -> numpy.ndarray:
    """Per candidate: how strongly the doc names a place that contains it, or
    a place it contains, as the KB's relations say (entity -> parents).

    A candidate is contained by another mention's candidate that is one of its
    ancestors ("Springfield, Illinois": Springfield, IL lies in Illinois) and
    contains another mention's candidate of which it is an ancestor ("Oslo is
    the capital of Norway": Norway the country contains Oslo). The evidence is
    that other candidate's prior (1 for a container of any candidate of the
    mention beside it), to the power ``RELATION_PRIOR_POWER``; it counts
    fully when the other mention stands right after this one
    (``next_mention``) or right before it, and
    ``DOC_CONTAINMENT`` times elsewhere in the doc. The value is the largest
    piece of evidence; mentions of the candidate's own group (same text) do
    not count.

    rows: each candidate's entity row; ancestors: (offsets, ancestor rows) per
    candidate, as ``kb.ancestor_rows(rows)`` returns; docs, groups: per
    mention; next_mention: per mention, the mention that follows it as its
    container ("X, Y", "X (Y)", "X in Y"), or -1. include: mentions that may
    give evidence (default all).
    RETURNS (numpy.ndarray): float32 in [0, 1], one value per candidate.
    """
    n = len(offsets) - 1
    m = len(rows)
    out = numpy.zeros(m, dtype=numpy.float64)
    anc_offsets, anc_rows = ancestors
    if not m or not len(anc_rows):
        return out.astype(numpy.float32)
    mention, pair_cand, pair_mention = _ancestor_pairs(offsets, anc_offsets)
    rows = numpy.asarray(rows, dtype=numpy.int64)
    priors = numpy.asarray(priors, dtype=numpy.float64) ** RELATION_PRIOR_POWER
    docs = numpy.asarray(docs, dtype=numpy.int64)
    groups = numpy.asarray(groups, dtype=numpy.int64)
    next_mention = numpy.asarray(next_mention, dtype=numpy.int64)
    previous = numpy.full(n, -1, dtype=numpy.int64)
    linked = next_mention >= 0
    previous[next_mention[linked]] = numpy.flatnonzero(linked)
    votes = numpy.ones(n, dtype=bool) if include is None else numpy.asarray(include, bool)
    known = rows >= 0  # a candidate the KB does not hold has no relations
    n_rows = int(max(rows.max(), anc_rows.max())) + 1
    pair_anc = numpy.asarray(anc_rows, dtype=numpy.int64)
    voting = votes[mention] & known
    # Contained by: an ancestor is a candidate of another mention.
    by_mention_keys, by_mention_priors = _max_by_key(
        (mention * n_rows + rows)[voting], priors[voting])
    by_doc_keys = (docs[mention] * n_rows + rows)[voting]
    for neighbour in (next_mention, previous):
        beside = neighbour[pair_mention]
        ok = beside >= 0
        value = numpy.zeros(len(pair_cand))
        value[ok] = _lookup(by_mention_keys, by_mention_priors,
                            beside[ok] * n_rows + pair_anc[ok])
        numpy.maximum.at(out, pair_cand, value)
    value = _best_of_other_groups(by_doc_keys, groups[mention][voting], priors[voting],
                                  docs[pair_mention] * n_rows + pair_anc,
                                  groups[pair_mention])
    numpy.maximum.at(out, pair_cand, DOC_CONTAINMENT * value)
    # Contains: the candidate is an ancestor of another mention's candidate.
    pair_votes = votes[pair_mention]
    # (mention, ancestor row) of every voting candidate's ancestors.
    contains_keys = (pair_mention * n_rows + pair_anc)[pair_votes]
    for neighbour in (next_mention, previous):
        beside = neighbour[mention]
        ok = beside >= 0
        # Beside it, containing any candidate counts fully ("London, Ontario":
        # the province holds a London, however rare that London is).
        value = numpy.zeros(m)
        value[ok] = numpy.isin(beside[ok] * n_rows + rows[ok], contains_keys)
        out = numpy.maximum(out, value)
    value = _best_of_other_groups((docs[pair_mention] * n_rows + pair_anc)[pair_votes],
                                  groups[pair_mention][pair_votes],
                                  priors[pair_cand][pair_votes],
                                  docs[mention] * n_rows + rows, groups[mention])
    out = numpy.maximum(out, DOC_CONTAINMENT * value)
    out[~known] = 0.0
    return out.astype(numpy.float32)


def regional_ancestors(kb, ancestors: Tuple[numpy.ndarray, numpy.ndarray]) -> numpy.ndarray:
    """Which (candidate, ancestor) pairs of ``ancestors`` are regions: an
    ancestor that has itself at least two ancestors (a state or a county lies
    under a country and a continent; the country and the continent are too
    wide to say that two places are near each other). RETURNS bool per pair."""
    rows = numpy.asarray(ancestors[1], dtype=numpy.int64)
    if not len(rows):
        return numpy.zeros(0, dtype=bool)
    distinct, inverse = numpy.unique(rows, return_inverse=True)
    depth = numpy.diff(kb.ancestor_rows(distinct)[0])
    return depth[inverse] >= 2


def sibling(offsets: numpy.ndarray, priors: numpy.ndarray,
            ancestors: Tuple[numpy.ndarray, numpy.ndarray], regional: numpy.ndarray,
            docs: Sequence[int], groups: Sequence[int],
            include: Optional[Sequence[bool]] = None) -> numpy.ndarray:
    """Per candidate: how strongly the doc names another place in the same
    region (``regional_ancestors``): the largest prior of another mention's
    candidate (other text, same doc) that shares a regional ancestor with it.
    Jordan, Minnesota in a doc that also names Shakopee, Minnesota gets
    Shakopee's prior; Peru, Illinois next to Austin, Texas gets 0. (Unlike
    containment's, the prior is not flattened: a region is a weaker relation,
    shared by chance by far more pairs of small places.)

    ancestors: (offsets, ancestor rows) per candidate (``kb.ancestor_rows``);
    regional: per (candidate, ancestor) pair; docs, groups, include: per
    mention, as ``containment``. RETURNS float32 in [0, 1] per candidate.
    """
    n = len(offsets) - 1
    m = len(priors)
    out = numpy.zeros(m, dtype=numpy.float64)
    anc_offsets, anc_rows = ancestors
    if not m or not len(anc_rows):
        return out.astype(numpy.float32)
    _, pair_cand, pair_mention = _ancestor_pairs(offsets, anc_offsets)
    regional = numpy.asarray(regional, dtype=bool)
    docs = numpy.asarray(docs, dtype=numpy.int64)
    groups = numpy.asarray(groups, dtype=numpy.int64)
    votes = numpy.ones(n, dtype=bool) if include is None else numpy.asarray(include, bool)
    n_rows = int(anc_rows.max()) + 1
    keys = docs[pair_mention] * n_rows + numpy.asarray(anc_rows, dtype=numpy.int64)
    voting = regional & votes[pair_mention]
    value = _best_of_other_groups(keys[voting], groups[pair_mention][voting],
                                  numpy.asarray(priors, dtype=numpy.float64)[pair_cand][voting],
                                  keys[regional], groups[pair_mention][regional])
    numpy.maximum.at(out, pair_cand[regional], value)
    return out.astype(numpy.float32)
