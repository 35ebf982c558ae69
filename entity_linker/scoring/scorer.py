"""``CandidateScorer``: a candidate's score under each ``scoring`` setting,
and the candidate loss, from the similarity, the priors and the evidence."""

from typing import Callable, Dict, Optional, Tuple

import numpy
from thinc.api import Model

from .ranker import _EPS, FEATURES, LOGIT_SCALE, RANKER_GAIN, feature_matrix
from .segments import segment_max, segment_min, segment_softmax

SCORINGS = ("spacy", "softmax", "learned")
# With ``prior_gate`` or ``freq_gate``, the least local evidence (containment or
# sibling) that lets a gated candidate win.
LOCAL_SUPPORT = 0.1


def spacy_scores(priors, sims, incl_prior: bool, incl_context: bool) -> numpy.ndarray:
    """spaCy's combination: prior + sim - prior * sim (or the one that is included)."""
    if incl_prior and incl_context:
        return priors + sims - priors * sims
    if incl_prior:
        return priors.copy()
    return sims

class CandidateScorer:
    """The one definition of a candidate's score, for prediction and training.

    scoring (str): "spacy", "softmax" or "learned" (see the module docstring).
    incl_prior, incl_context (bool): Which terms enter the score.
    coherence_weight (float): The coherence term's weight ("softmax"; the
        ranker's initial weight with "learned").
    ranker (Optional[Model]): The learned layer (needed for "learned").
    containment_weight (float): The containment term's weight ("softmax").
    sibling_weight (float): The sibling term's weight ("softmax": another
        place of the candidate's region named in the doc).
    nil_logit (Optional[float]): The logit of a NIL option in each mention's
        softmax, for the scores prediction reports ("softmax", "learned");
        None: no NIL option. Training is unchanged.
    prior_gate (Optional[float]): At prediction, a candidate whose prior is
        below ``prior_gate`` times its mention's top prior can only win with
        local evidence: containment or sibling evidence of at least
        ``LOCAL_SUPPORT`` ("Norway, Maine" in a doc that names Maine, not
        beside Austin, Texas). None: no gate. Training is unchanged.
    freq_gate (Optional[float]): At prediction, a candidate whose freq (a
        GeoNames place's population) is below ``freq_gate`` can only win with
        local evidence, as with ``prior_gate``; a mention none of whose
        candidates may win scores 0 and is NIL ("Heathrow" in a doc about
        London is not Heathrow, Florida, 5,896 people, when the KB lacks the
        airport). None: no gate. Training is unchanged.
    word_pairs (Optional[Model]): The learned (context word, name word) pair
        weights (``word_pairs.build_word_pairs``), added to the "softmax" and
        "learned" logits when the pairs (``word_pairs.pair_keys``) are given.
    """

    def __init__(self, scoring: str, incl_prior: bool, incl_context: bool,
                 coherence_weight: float = 0.0, ranker: Optional[Model] = None,
                 containment_weight: float = 0.0,
                 nil_logit: Optional[float] = None,
                 word_pairs: Optional[Model] = None,
                 prior_gate: Optional[float] = None,
                 sibling_weight: float = 0.0,
                 freq_gate: Optional[float] = None) -> None:
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
        self.word_pairs = word_pairs if scoring != "spacy" else None
        self.prior_gate = prior_gate if scoring != "spacy" else None
        self.freq_gate = freq_gate if scoring != "spacy" else None
        self.sibling_weight = sibling_weight if scoring == "softmax" else 0.0

    @property
    def uses_siblings(self) -> bool:
        """Whether the scores read the sibling evidence (its weight or a gate)."""
        return (bool(self.sibling_weight) or self.prior_gate is not None
                or self.freq_gate is not None)

    @property
    def uses_word_pairs(self) -> bool:
        """Whether the scores read the (context word, name word) pairs."""
        return self.word_pairs is not None

    @property
    def uses_coherence(self) -> bool:
        """Whether the scores read the coherence of the candidates."""
        return self.scoring == "learned" or bool(self.coherence_weight)

    @property
    def uses_containment(self) -> bool:
        """Whether the scores read the containment of the candidates."""
        return self.scoring == "learned" or bool(self.containment_weight)

    def _pair_term(self, pairs, n_candidates: int, is_train: bool):
        """(each candidate's word-pairs logit term, or None; its backprop,
        which accumulates the pair weights' gradients, or None)."""
        if self.word_pairs is None or pairs is None:
            return None, None
        term, backprop = self.word_pairs((*pairs, n_candidates), is_train)
        return term, (backprop if is_train else None)

    def logits(self, table, sims, coherence_values=None, is_train: bool = False,
               coreference_values=None, containment_values=None, name_values=None,
               pairs=None, sibling_values=None
               ) -> Tuple[numpy.ndarray, Callable[[numpy.ndarray], numpy.ndarray]]:
        """Each candidate's logit, and a backprop from d(logits) to d(sims).

        table: a CandidateTable (offsets, priors, freqs). pairs: (keys, owners, shares)
        of ``word_pairs.pair_keys``, or None. With "learned" and ``is_train``,
        the backprop also accumulates the ranker's (and the pair weights')
        gradients.
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
            term, pairs_backprop = self._pair_term(pairs, len(logits), is_train)
            if term is not None:
                logits = logits + term
            # The logit is linear in the cosine column.
            d_logit_d_sim = RANKER_GAIN * float(self.ranker.get_param("W")[0, 0])
            if not self.incl_context:
                d_logit_d_sim = 0.0

            def backprop_learned(d_logits):
                if ranker_backprop is not None:  # accumulate the ranker's gradients
                    ranker_backprop(ops.asarray2f(
                        (RANKER_GAIN * d_logits)[:, None].astype(numpy.float32)))
                if pairs_backprop is not None:
                    pairs_backprop(d_logits)
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
        if self.sibling_weight and sibling_values is not None:
            logits += self.sibling_weight * numpy.asarray(sibling_values, numpy.float64)
        term, pairs_backprop = self._pair_term(pairs, len(logits), is_train)
        if term is not None:
            logits += term
        scale = LOGIT_SCALE if self.incl_context else 0.0

        def backprop_softmax(d_logits):
            if pairs_backprop is not None:
                pairs_backprop(d_logits)
            return scale * d_logits

        return logits, backprop_softmax

    def components(self, table, sims, coherence_values=None, coreference_values=None,
                   containment_values=None, name_values=None,
                   pairs=None, sibling_values=None) -> Dict[str, numpy.ndarray]:
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
        else:
            self._softmax_components(out, priors, sims, coherence_values,
                                     containment_values, sibling_values)
        term, _ = self._pair_term(pairs, len(priors), False)
        if term is not None:
            out["word_pairs"] = term
        return out

    def _softmax_components(self, out, priors, sims, coherence_values, containment_values,
                            sibling_values) -> None:
        """The "softmax" logit's terms (``components``), into ``out``."""
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
        if self.sibling_weight and sibling_values is not None:
            out["sibling"] = self.sibling_weight * numpy.asarray(sibling_values, numpy.float64)

    def gates(self, table, containment_values=None, sibling_values=None
              ) -> Tuple[numpy.ndarray, numpy.ndarray]:
        """(the candidates ``prior_gate`` keeps out, those ``freq_gate`` keeps
        out), bool per candidate: only candidates without local evidence."""
        priors = numpy.asarray(table.priors, dtype=numpy.float64)
        prior_gated = numpy.zeros(len(priors), dtype=bool)
        freq_gated = numpy.zeros(len(priors), dtype=bool)
        if (self.prior_gate is None and self.freq_gate is None) or not len(priors):
            return prior_gated, freq_gated
        support = numpy.zeros(len(priors))
        for values in (containment_values, sibling_values):
            if values is not None:
                support = numpy.maximum(support, numpy.asarray(values, numpy.float64))
        unplaced = support < LOCAL_SUPPORT
        if self.prior_gate is not None:
            prior_gated = unplaced & (
                priors < self.prior_gate * segment_max(priors, table.offsets))
        if self.freq_gate is not None and table.freqs is not None:
            freq_gated = unplaced & (numpy.asarray(table.freqs, numpy.float64) < self.freq_gate)
        return prior_gated, freq_gated

    def scores(self, table, sims, coherence_values=None, coreference_values=None,
               containment_values=None, name_values=None, pairs=None,
               sibling_values=None) -> numpy.ndarray:
        """The scores prediction ranks by (float32, one per candidate): softmax
        probabilities in [0, 1] (0 for a candidate a gate keeps out, and for
        every candidate of a mention whose candidates all are);
        with "spacy", spaCy's score, which is below 0 where a cosine is
        negative, as in spaCy."""
        if self.scoring == "spacy":
            return numpy.asarray(
                spacy_scores(table.priors, sims, self.incl_prior, self.incl_context),
                dtype=numpy.float32)
        logits, _ = self.logits(table, sims, coherence_values,
                                coreference_values=coreference_values,
                                containment_values=containment_values,
                                name_values=name_values, pairs=pairs,
                                sibling_values=sibling_values)
        prior_gated, freq_gated = self.gates(table, containment_values, sibling_values)
        gated = prior_gated | freq_gated
        if not gated.any():
            return segment_softmax(logits, table.offsets, self.nil_logit).astype(numpy.float32)
        # prior_gate never gates a mention's top-prior candidate; freq_gate may
        # gate them all, and such a mention scores 0 throughout.
        blocked = segment_min(gated, table.offsets)
        logits[gated & ~blocked] = -numpy.inf
        scores = segment_softmax(logits, table.offsets, self.nil_logit)
        scores[blocked] = 0.0
        return scores.astype(numpy.float32)

    def candidate_loss(self, table, sims, gold_keys: numpy.ndarray, coherence_values=None,
                       weight: float = 1.0, coreference_values=None,
                       containment_values=None, name_values=None,
                       pairs=None, sibling_values=None) -> Tuple[float, numpy.ndarray]:
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
                                       name_values=name_values, pairs=pairs,
                                       sibling_values=sibling_values)
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
