"""How a candidate is scored, and the losses that train the scores.

Every formula of the linker lives here; ``CandidateTable`` only holds data.

    encodings ─ cosine ─▶ sims ─┐
    priors, freqs ──────────────┼─▶ CandidateScorer.logits ─▶ scores (predict)
    coherence ──────────────────┘                         └─▶ candidate_loss (update)

Three ``scoring`` settings define a candidate's score:

* ``"spacy"``: spaCy's ``prior + sim - prior * sim`` (the drop-in default);
* ``"softmax"``: a softmax over each mention's candidates of
  ``LOGIT_SCALE * sim + log(prior) + coherence_weight * coherence
  + containment_weight * containment``;
* ``"learned"``: a softmax of ``w · features + b``, where the ranker (a Thinc
  Linear layer over ``FEATURES``) learns w and b with the encoder. It starts
  as ``"softmax"`` plus the name features (``NAME_WEIGHTS``), which read the
  KB's entity names (0 for a KB without names).

The candidate loss is the cross-entropy of the gold entity among its
mention's candidates under the same logits that prediction ranks by.
"""

import re
from functools import lru_cache
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy
import srsly
from thinc.api import Linear, Model

LOGIT_SCALE = 10.0
SCORINGS = ("spacy", "softmax", "learned")
# The ranker's input columns, in order.
FEATURES = (
    "cosine",  # context encoding vs entity vector
    "log_prior",  # log p(entity | alias)
    "top_prior",  # 1 for the mention's highest-prior candidate(s)
    "log_freq",  # log(1 + freq) minus the mention's highest; <= 0
    "coherence",  # fit with the doc's other mentions
    "coreference",  # prior under a longer mention of the doc ("Chris Harris" for "Harris")
    "containment",  # a place that contains it (or that it contains) is named in the doc
    "name_context",  # share of the name's other words found in the doc ("rugby")
    "name_coherence",  # the doc's other mentions have candidates sharing a name word ("F.C.")
)
# The columns ``name_evidence`` returns, in FEATURES order.
NAME_FEATURES = ("name_context", "name_coherence")
# The ranker computes RANKER_GAIN * (x · w + b): Adam moves each weight by about
# the learning rate per step, so the gain lets the few ranker weights move as
# far in a few hundred steps as the combination needs.
RANKER_GAIN = 20.0
_EPS = 1e-6
# The coreference feature's initial weight in the ranker (learned from there).
COREFERENCE_WEIGHT = 0.0
# The name features' initial weights (NAME_FEATURES order; learned from there),
# chosen on the AIDA dev split (BENCHMARKS.md).
NAME_WEIGHTS = (1.0, 2.0)


# ------------------------------------------------------------------ similarity


def cosine(encodings: numpy.ndarray, offsets: numpy.ndarray,
           vectors: numpy.ndarray) -> numpy.ndarray:
    """Cosine of each candidate's vector with its mention's encoding (0 for zero vectors).

    encodings: (n_mentions, L); offsets: CSR offsets of the candidates per
    mention; vectors: (n_candidates, L). RETURNS float32 (n_candidates,).
    """
    counts = numpy.diff(offsets)
    norms = numpy.linalg.norm(encodings, axis=1, keepdims=True)
    unit = numpy.divide(encodings, norms, out=numpy.zeros_like(encodings), where=norms > 0)
    dots = numpy.einsum("ij,ij->i", numpy.repeat(unit, counts, axis=0), vectors)
    vector_norms = numpy.linalg.norm(vectors, axis=1)
    return numpy.divide(dots, vector_norms, out=numpy.zeros_like(dots),
                        where=vector_norms > 0).astype(numpy.float32)


def cosine_with_grads(A: numpy.ndarray, B: numpy.ndarray):
    """Row-wise cosine of A and B, and its gradients with respect to A and to B."""
    a_norm = numpy.sqrt((A * A).sum(axis=1)) + 1e-8
    b_norm = numpy.sqrt((B * B).sum(axis=1)) + 1e-8
    cos = (A * B).sum(axis=1) / (a_norm * b_norm)
    d_a = B / (a_norm * b_norm)[:, None] - cos[:, None] * A / (a_norm**2)[:, None]
    d_b = A / (a_norm * b_norm)[:, None] - cos[:, None] * B / (b_norm**2)[:, None]
    return cos, d_a, d_b


def cosine_loss(encodings: numpy.ndarray, gold_vectors: numpy.ndarray):
    """spaCy's loss: mean of 1 - cos(encoding, gold vector), and its gradients
    with respect to the encodings and to the gold vectors."""
    cos, d_a, d_b = cosine_with_grads(encodings, gold_vectors)
    n = max(len(encodings), 1)
    return float((1.0 - cos).sum()) / n, -d_a / n, -d_b / n


def blend_similarity(model_cos, lexical_cos, weight: float):
    """The context similarity with a context encoder: the mean of the model's and the
    lexical cosine, weighted 1 : weight (the same in prediction and in the loss)."""
    return (model_cos + weight * lexical_cos) / (1.0 + weight)


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


@lru_cache(maxsize=1 << 16)
def name_words(text: str) -> Tuple[str, ...]:
    """The distinct lower-cased words of a name or mention, stopwords left out
    ("Italy national rugby union team" -> ("italy", "national", "rugby", ...))."""
    return tuple(dict.fromkeys(w for w in _WORD.findall(text.lower()) if w not in NAME_STOPWORDS))


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
        words = set(name_words(doc_texts[doc]))
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
    groups_of_doc: Dict[int, List[int]] = {}
    for group, doc in group_doc.items():
        groups_of_doc.setdefault(doc, []).append(group)
    for i in range(n_mentions):
        doc, group = int(docs[i]), int(groups[i])
        words_in_doc, stems_in_doc = doc_words[doc]
        others = [group_words[g] for g in groups_of_doc[doc] if g != group]
        for c in range(int(offsets[i]), int(offsets[i + 1])):
            words = own[c]
            if not words:
                continue
            found = sum(1 for w in words if w in words_in_doc
                        or (len(w) >= STEM and w[:STEM] in stems_in_doc))
            out[c, 0] = found / len(words)
            if others:
                out[c, 1] = max(sum(1 for union in others if w in union) for w in words) \
                    / len(others)
    return out


# Containment (``containment``): a place named in the doc but not right
# beside the mention counts this much of one named beside it ("Springfield,
# Illinois", "Paris (Texas)", "Cambridge in England").
DOC_CONTAINMENT = 0.5


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
    mention beside it); it counts fully when the other mention stands right
    after this one (``next_mention``) or right before it, and
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
    counts = numpy.diff(offsets)
    mention = numpy.repeat(numpy.arange(n), counts)
    rows = numpy.asarray(rows, dtype=numpy.int64)
    priors = numpy.asarray(priors, dtype=numpy.float64)
    docs = numpy.asarray(docs, dtype=numpy.int64)
    groups = numpy.asarray(groups, dtype=numpy.int64)
    next_mention = numpy.asarray(next_mention, dtype=numpy.int64)
    previous = numpy.full(n, -1, dtype=numpy.int64)
    linked = next_mention >= 0
    previous[next_mention[linked]] = numpy.flatnonzero(linked)
    votes = numpy.ones(n, dtype=bool) if include is None else numpy.asarray(include, bool)
    known = rows >= 0  # a candidate the KB does not hold has no relations
    n_rows = int(max(rows.max(), anc_rows.max())) + 1
    # (candidate, ancestor row) pairs.
    pair_cand = numpy.repeat(numpy.arange(m), numpy.diff(anc_offsets))
    pair_anc = numpy.asarray(anc_rows, dtype=numpy.int64)
    pair_mention = mention[pair_cand]
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


# ------------------------------------------------------------------ segments


def _segments(offsets: numpy.ndarray) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """For numpy's reduceat: the first candidate of every mention that has one,
    and the index of each candidate's mention among those."""
    counts = numpy.diff(offsets)
    nonempty = counts > 0
    segment_of_mention = numpy.cumsum(nonempty) - 1
    segment = numpy.repeat(segment_of_mention, counts)
    return numpy.asarray(offsets[:-1])[nonempty], segment


def segment_softmax(logits: numpy.ndarray, offsets: numpy.ndarray,
                    nil_logit: Optional[float] = None) -> numpy.ndarray:
    """Softmax of the logits within each mention's candidates (float64). With
    ``nil_logit``, each mention also has a NIL option of that logit, which
    takes its share of the mass: a lone candidate no longer scores 1."""
    logits = numpy.asarray(logits, dtype=numpy.float64)
    if not len(logits):
        return logits.copy()
    starts, segment = _segments(offsets)
    peak = numpy.maximum.reduceat(logits, starts)
    if nil_logit is not None:
        peak = numpy.maximum(peak, nil_logit)
    shifted = numpy.exp(logits - peak[segment])
    total = numpy.add.reduceat(shifted, starts)
    if nil_logit is not None:
        total = total + numpy.exp(nil_logit - peak)
    return shifted / total[segment]


def segment_max(values: numpy.ndarray, offsets: numpy.ndarray) -> numpy.ndarray:
    """Each candidate's mention's maximum of ``values``."""
    values = numpy.asarray(values)
    if not len(values):
        return values.copy()
    starts, segment = _segments(offsets)
    return numpy.maximum.reduceat(values, starts)[segment]


# ------------------------------------------------------------------ scores


def spacy_scores(priors, sims, incl_prior: bool, incl_context: bool) -> numpy.ndarray:
    """spaCy's combination: prior + sim - prior * sim (or the one that is included)."""
    if incl_prior and incl_context:
        return priors + sims - priors * sims
    if incl_prior:
        return priors.copy()
    return sims


def feature_matrix(offsets, priors, freqs, sims, coherence_values, incl_prior: bool,
                   incl_context: bool, coreference_values=None,
                   containment_values=None, name_values=None) -> numpy.ndarray:
    """The ranker's input: one row of ``FEATURES`` per candidate (float32).
    Columns of an excluded term (incl_prior / incl_context) are 0."""
    n = len(priors)
    features = numpy.zeros((n, len(FEATURES)), dtype=numpy.float32)
    if incl_context:
        features[:, 0] = sims
    if incl_prior:
        priors = numpy.asarray(priors, dtype=numpy.float64)
        features[:, 1] = numpy.log(priors + _EPS)
        features[:, 2] = priors >= segment_max(priors, offsets)
    if freqs is not None and n:
        log_freqs = numpy.log1p(numpy.maximum(numpy.asarray(freqs, dtype=numpy.float64), 0))
        features[:, 3] = log_freqs - segment_max(log_freqs, offsets)
    if coherence_values is not None:
        features[:, 4] = coherence_values
    if coreference_values is not None and incl_prior:
        features[:, 5] = coreference_values
    if containment_values is not None:
        features[:, 6] = containment_values
    if name_values is not None:
        features[:, 7:9] = name_values
    return features


def build_ranker(coherence_weight: float = 0.0, containment_weight: float = 0.0) -> Model:
    """The learned combination: Linear(FEATURES -> 1), initialised to the
    ``"softmax"`` scoring (LOGIT_SCALE on the cosine, 1 on the log prior,
    ``coherence_weight`` on the coherence, ``containment_weight`` on the
    containment, 0 elsewhere)."""
    ranker = Linear(nO=1, nI=len(FEATURES))
    ranker.initialize()
    reset_ranker(ranker, coherence_weight, containment_weight)
    return ranker


def reset_ranker(ranker: Model, coherence_weight: float = 0.0,
                 containment_weight: float = 0.0) -> None:
    """Set the ranker's weights back to the ``"softmax"`` scoring."""
    weights = numpy.zeros((1, len(FEATURES)), dtype=numpy.float32)
    weights[0, FEATURES.index("cosine")] = LOGIT_SCALE
    weights[0, FEATURES.index("log_prior")] = 1.0
    weights[0, FEATURES.index("coherence")] = coherence_weight
    weights[0, FEATURES.index("containment")] = containment_weight
    weights[0, FEATURES.index("coreference")] = COREFERENCE_WEIGHT
    for name, weight in zip(NAME_FEATURES, NAME_WEIGHTS):
        weights[0, FEATURES.index(name)] = weight
    ranker.set_param("W", ranker.ops.asarray2f(weights / RANKER_GAIN))
    ranker.set_param("b", ranker.ops.alloc1f(1))


def load_ranker(ranker: Model, data: bytes) -> None:
    """Load the ranker's weights (``Model.to_bytes``). A ranker saved before the
    last FEATURES were added reads fewer columns: each new one gets weight 0,
    so it scores as it did."""
    msg = srsly.msgpack_loads(data)
    node = msg["nodes"][0]
    n_saved = int(node["dims"].get("nI") or 0)
    if n_saved > len(FEATURES):
        raise ValueError(
            f"The saved ranker reads {n_saved} features; this entity_linker knows "
            f"{len(FEATURES)}. Upgrade entity_linker to load the pipeline."
        )
    if 0 < n_saved < len(FEATURES):
        node["dims"]["nI"] = len(FEATURES)
        weights = numpy.asarray(msg["params"][0]["W"])
        padded = numpy.zeros((weights.shape[0], len(FEATURES)), dtype=weights.dtype)
        padded[:, :n_saved] = weights
        msg["params"][0]["W"] = padded
    ranker.from_dict(msg)


class CandidateScorer:
    """The one definition of a candidate's score, for prediction and training.

    scoring (str): "spacy", "softmax" or "learned" (see the module docstring).
    incl_prior, incl_context (bool): Which terms enter the score.
    coherence_weight (float): The coherence term's weight ("softmax"; the
        ranker's initial weight with "learned").
    ranker (Optional[Model]): The learned layer (needed for "learned").
    containment_weight (float): The containment term's weight ("softmax").
    nil_logit (Optional[float]): The logit of a NIL option in each mention's
        softmax, for the scores prediction reports ("softmax", "learned");
        None: no NIL option. Training is unchanged.
    """

    def __init__(self, scoring: str, incl_prior: bool, incl_context: bool,
                 coherence_weight: float = 0.0, ranker: Optional[Model] = None,
                 containment_weight: float = 0.0,
                 nil_logit: Optional[float] = None) -> None:
        if scoring not in SCORINGS:
            raise ValueError(f"scoring must be one of {', '.join(SCORINGS)}, got {scoring!r}.")
        if scoring == "learned" and ranker is None:
            raise ValueError("scoring = \"learned\" needs a ranker model (build_ranker()).")
        self.scoring = scoring
        self.incl_prior = incl_prior
        self.incl_context = incl_context
        self.coherence_weight = coherence_weight
        self.containment_weight = containment_weight
        self.nil_logit = nil_logit
        self.ranker = ranker

    @property
    def uses_coherence(self) -> bool:
        """Whether the scores read the coherence of the candidates."""
        return self.scoring == "learned" or bool(self.coherence_weight)

    @property
    def uses_containment(self) -> bool:
        """Whether the scores read the containment of the candidates."""
        return self.scoring == "learned" or bool(self.containment_weight)

    def logits(self, table, sims, coherence_values=None, is_train: bool = False,
               coreference_values=None, containment_values=None, name_values=None
               ) -> Tuple[numpy.ndarray, Callable[[numpy.ndarray], numpy.ndarray]]:
        """Each candidate's logit, and a backprop from d(logits) to d(sims).

        table: a CandidateTable (offsets, priors, freqs). With "learned" and
        ``is_train``, the backprop also accumulates the ranker's gradients.
        """
        priors = numpy.asarray(table.priors, dtype=numpy.float64)
        sims = numpy.asarray(sims, dtype=numpy.float64)
        if self.scoring == "learned":
            features = feature_matrix(table.offsets, table.priors, table.freqs, sims,
                                      coherence_values, self.incl_prior, self.incl_context,
                                      coreference_values, containment_values, name_values)
            ops = self.ranker.ops
            if is_train:
                Y, ranker_backprop = self.ranker.begin_update(ops.asarray2f(features))
            else:
                Y, ranker_backprop = self.ranker.predict(ops.asarray2f(features)), None
            logits = RANKER_GAIN * ops.to_numpy(Y)[:, 0].astype(numpy.float64)
            # The logit is linear in the cosine column.
            d_logit_d_sim = RANKER_GAIN * float(self.ranker.get_param("W")[0, 0])
            if not self.incl_context:
                d_logit_d_sim = 0.0

            def backprop_learned(d_logits):
                if ranker_backprop is not None:  # accumulate the ranker's gradients
                    ranker_backprop(ops.asarray2f(
                        (RANKER_GAIN * d_logits)[:, None].astype(numpy.float32)))
                return d_logit_d_sim * d_logits

            return logits, backprop_learned
        if self.scoring == "spacy":
            # LOGIT_SCALE times spaCy's score; d(score)/d(sim) is 1 - prior (1
            # without the prior, 0 without the context).
            logits = LOGIT_SCALE * spacy_scores(priors, sims, self.incl_prior, self.incl_context)
            if not self.incl_context:
                d_sims = numpy.zeros_like(sims)
            elif self.incl_prior:
                d_sims = LOGIT_SCALE * (1.0 - priors)
            else:
                d_sims = numpy.full_like(sims, LOGIT_SCALE)
            return logits, lambda d_logits: d_logits * d_sims
        # softmax
        logits = numpy.zeros_like(sims)
        if self.incl_context:
            logits += LOGIT_SCALE * sims
        if self.incl_prior:
            logits += numpy.log(priors + _EPS)
        if self.coherence_weight and coherence_values is not None:
            logits += self.coherence_weight * numpy.asarray(coherence_values, numpy.float64)
        if self.containment_weight and containment_values is not None:
            logits += self.containment_weight * numpy.asarray(containment_values,
                                                              numpy.float64)
        scale = LOGIT_SCALE if self.incl_context else 0.0
        return logits, lambda d_logits: scale * d_logits

    def components(self, table, sims, coherence_values=None, coreference_values=None,
                   containment_values=None, name_values=None) -> Dict[str, numpy.ndarray]:
        """What each piece of evidence adds to each candidate's score, by name
        ("prior", "context", "coherence", "containment", ...): for "softmax"
        and "learned" the terms of the logit (with "learned", each feature
        times its learned weight, the bias left out), for "spacy" the prior
        and what the context adds to it (``sim - prior * sim``). Evidence the
        scorer does not read is left out. For explanations (``link --explain``).
        """
        priors = numpy.asarray(table.priors, dtype=numpy.float64)
        sims = numpy.asarray(sims, dtype=numpy.float64)
        out: Dict[str, numpy.ndarray] = {}
        if self.scoring == "spacy":
            if self.incl_prior:
                out["prior"] = priors
            if self.incl_context:
                out["context"] = sims - priors * sims if self.incl_prior else sims
            return out
        if self.scoring == "learned":
            features = feature_matrix(table.offsets, table.priors, table.freqs, sims,
                                      coherence_values, self.incl_prior, self.incl_context,
                                      coreference_values, containment_values, name_values)
            weights = RANKER_GAIN * self.ranker.ops.to_numpy(self.ranker.get_param("W"))[0]
            named = {"cosine": "context", "log_prior": "prior", "top_prior": "prior",
                     "log_freq": "frequency"}
            for column, name in enumerate(FEATURES):
                key = named.get(name, name)
                out[key] = out.get(key, 0.0) + weights[column] * features[:, column]
            return out
        if self.incl_prior:
            out["prior"] = numpy.log(priors + _EPS)
        if self.incl_context:
            out["context"] = LOGIT_SCALE * sims
        if self.coherence_weight and coherence_values is not None:
            out["coherence"] = self.coherence_weight * numpy.asarray(coherence_values,
                                                                     numpy.float64)
        if self.containment_weight and containment_values is not None:
            out["containment"] = self.containment_weight * numpy.asarray(containment_values,
                                                                         numpy.float64)
        return out

    def scores(self, table, sims, coherence_values=None, coreference_values=None,
               containment_values=None, name_values=None) -> numpy.ndarray:
        """The scores prediction ranks by (float32, one per candidate): softmax
        probabilities in [0, 1]; with "spacy", spaCy's score, which is below 0
        where a cosine is negative, as in spaCy."""
        if self.scoring == "spacy":
            return numpy.asarray(
                spacy_scores(table.priors, sims, self.incl_prior, self.incl_context),
                dtype=numpy.float32)
        logits, _ = self.logits(table, sims, coherence_values,
                                coreference_values=coreference_values,
                                containment_values=containment_values,
                                name_values=name_values)
        return segment_softmax(logits, table.offsets, self.nil_logit).astype(numpy.float32)

    def candidate_loss(self, table, sims, gold_keys: numpy.ndarray, coherence_values=None,
                       weight: float = 1.0, coreference_values=None,
                       containment_values=None, name_values=None) -> Tuple[float, numpy.ndarray]:
        """Cross-entropy of the gold entity among each mention's candidates.

        gold_keys (numpy.ndarray): uint64 hash of each mention's gold entity.
        Mentions whose gold entity is not a candidate, or that have a single
        candidate, add nothing; the first candidate with the gold key is the
        target. The loss is multiplied by ``weight``. RETURNS (mean loss,
        d(loss)/d(sims)); with "learned" the ranker's gradients are accumulated too.
        """
        offsets = table.offsets
        counts = numpy.diff(offsets)
        mention = numpy.repeat(numpy.arange(len(counts)), counts)
        is_gold = numpy.asarray(table.keys) == numpy.asarray(gold_keys, numpy.uint64)[mention]
        has_gold = numpy.zeros(len(counts), dtype=bool)
        has_gold[mention[is_gold]] = True
        used_mentions = has_gold & (counts >= 2)
        d_sims = numpy.zeros(len(mention), dtype=numpy.float64)
        if not used_mentions.any():
            return 0.0, d_sims
        logits, backprop = self.logits(table, sims, coherence_values, is_train=True,
                                       coreference_values=coreference_values,
                                       containment_values=containment_values,
                                       name_values=name_values)
        probs = segment_softmax(logits, offsets)
        target = numpy.zeros(len(mention), dtype=bool)
        gold_positions = numpy.flatnonzero(is_gold & used_mentions[mention])
        _, first = numpy.unique(mention[gold_positions], return_index=True)
        target[gold_positions[first]] = True
        used = used_mentions[mention]
        n_used = int(used_mentions.sum())
        loss = -weight * float(numpy.log(probs[target] + 1e-12).sum()) / n_used
        d_logits = weight * numpy.where(used, probs - target, 0.0) / n_used
        return loss, backprop(d_logits)
