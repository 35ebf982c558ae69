"""Evaluation of a linking pipeline against gold docs.

``evaluate_linking`` gives the pipeline the gold mentions and scores the ids
it chooses (accuracy, micro P/R/F, the prior-only baseline and the oracle:
gold among the candidates). ``evaluate_end_to_end`` starts from raw text, so
mention detection counts too. With GeoNames metadata, both geographic
metrics of the geocoding literature are added: accuracy@161 km and the
median error in km.
"""

import math
import time
from typing import Dict, List, Optional, Sequence

import numpy
from spacy.language import Language
from spacy.tokens import Doc

from .pipeline import NIL

ACCURACY_KM = 161  # 100 miles, the usual threshold in geocoding


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km."""
    p = math.pi / 180
    a = (math.sin((lat2 - lat1) * p / 2) ** 2
         + math.cos(lat1 * p) * math.cos(lat2 * p) * math.sin((lon2 - lon1) * p / 2) ** 2)
    return 12742 * math.asin(math.sqrt(a))


def _prf(tp: int, n_pred: int, n_gold: int) -> Dict[str, float]:
    """Precision, recall and F1 ({"p", "r", "f"}) from counts; 0 where undefined."""
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    return {"p": p, "r": r, "f": 2 * p * r / (p + r) if p + r else 0.0}


def _linked(kb_id: str) -> bool:
    """Whether a kb id names an entity (not "" or NIL)."""
    return kb_id not in ("", NIL)


def gold_mention_docs(nlp: Language, docs: List[Doc]) -> List[Doc]:
    """New docs with the text and entity spans of the gold docs, without kb ids:
    the input a linker gets when it is evaluated with gold mentions."""
    inputs = []
    for doc in docs:
        copy = nlp.make_doc(doc.text)
        copy.ents = [copy.char_span(e.start_char, e.end_char, label=e.label_,
                                    alignment_mode="expand") for e in doc.ents]
        inputs.append(copy)
    return inputs


def evaluate_linking(nlp: Language, docs: List[Doc], metadata=None,
                     component: str = "nel") -> Dict[str, float]:
    """Score the linker on the gold mentions of ``docs``.

    docs (List[Doc]): Gold docs: entities with their gold kb ids ("NIL" = none).
    metadata (Optional[GeoNamesMetadata]): Adds accuracy@161 km and median error.
    RETURNS (Dict[str, float]): mentions, accuracy, micro p/r/f, prior_accuracy,
        oracle and (with metadata) accuracy_161km, median_error_km.
    """
    kb = nlp.get_pipe(component).kb
    inputs = gold_mention_docs(nlp, docs)
    keep = [name for name in nlp.pipe_names if name in ("sentencizer", "senter", component)]
    start = time.perf_counter()
    with nlp.select_pipes(enable=keep):
        predicted = list(nlp.pipe(inputs, batch_size=64))
    seconds = time.perf_counter() - start
    n_gold = n_pred = correct = prior_correct = oracle = 0
    near = n_geo = 0
    errors: List[float] = []
    linked: List[tuple] = []  # (score, right) of every link made
    for gold, pred in zip(docs, predicted):
        for g, p in zip(gold.ents, pred.ents):
            n_pred += _linked(p.kb_id_)
            if _linked(p.kb_id_) and p._.kb_score is not None:
                linked.append((float(p._.kb_score), p.kb_id_ == g.kb_id_))
            if not _linked(g.kb_id_):
                continue
            n_gold += 1
            correct += p.kb_id_ == g.kb_id_
            candidates = kb.get_alias_candidates(g.text)
            if candidates:
                best = max(candidates, key=lambda c: (c.prior_prob, c.entity_freq)).entity_
                prior_correct += best == g.kb_id_
                oracle += any(c.entity_ == g.kb_id_ for c in candidates)
            if metadata is not None:
                truth = metadata.get(g.kb_id_)
                if truth is None or math.isnan(truth.latitude):
                    continue
                n_geo += 1
                guess = metadata.get(p.kb_id_) if _linked(p.kb_id_) else None
                if guess is not None and not math.isnan(guess.latitude):
                    km = haversine_km(truth.latitude, truth.longitude,
                                      guess.latitude, guess.longitude)
                    errors.append(km)
                    near += km <= ACCURACY_KM
    tp = correct
    scores = _prf(tp, n_pred, n_gold)
    result = {
        "mentions": n_gold,
        "accuracy": correct / n_gold if n_gold else 0.0,
        "micro_p": scores["p"], "micro_r": scores["r"], "micro_f": scores["f"],
        "prior_accuracy": prior_correct / n_gold if n_gold else 0.0,
        "oracle": oracle / n_gold if n_gold else 0.0,
        "docs_per_second": len(docs) / seconds if seconds else 0.0,
    }
    if metadata is not None:
        result["accuracy_161km"] = near / n_geo if n_geo else 0.0
        result["median_error_km"] = float(numpy.median(errors)) if errors else float("nan")
    result["reliability"] = reliability(linked)
    result["thresholds"] = {str(t): _prf(sum(r for s, r in linked if s >= t),
                                         sum(1 for s, _ in linked if s >= t), n_gold)
                            for t in THRESHOLDS}
    return result


# Score bins of the reliability table, and the thresholds evaluate_linking tries.
RELIABILITY_BINS = (0.0, 0.5, 0.7, 0.9, 0.99, 1.0)
THRESHOLDS = (0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9)


def reliability(linked: List[tuple]) -> List[Dict[str, float]]:
    """How often a link is right, by its score: one row per score bin of
    ``RELIABILITY_BINS`` with the number of links and their precision (None
    without links; a link to a mention whose gold is NIL is wrong). A calibrated score has a
    precision inside its bin."""
    rows = []
    for low, high in zip(RELIABILITY_BINS[:-1], RELIABILITY_BINS[1:]):
        inside = [right for score, right in linked
                  if low <= score < high or (high == 1.0 and score >= high)]
        rows.append({"low": low, "high": high, "links": len(inside),
                     "precision": sum(inside) / len(inside) if inside else None})
    return rows


def evaluate_end_to_end(nlp: Language, docs: List[Doc],
                        metadata: Optional[object] = None) -> Dict[str, float]:
    """Score the whole pipeline from raw text: a (span, kb id) pair counts when
    both match a gold one exactly; span P/R measures mention detection alone."""
    start = time.perf_counter()
    predicted = list(nlp.pipe((d.text for d in docs), batch_size=64))
    seconds = time.perf_counter() - start
    return end_to_end_scores(docs, predicted) | {
        "docs_per_second": len(docs) / seconds if seconds else 0.0}


def end_to_end_scores(docs: Sequence[Doc], predicted: Sequence[Doc]) -> Dict[str, float]:
    """Link and span P/R/F of predicted docs against the gold ``docs`` (the same
    texts, in order): a (span, kb id) pair counts when both match a gold one
    exactly; span P/R measures mention detection alone."""
    gold = {(i, e.start_char, e.end_char, e.kb_id_)
            for i, d in enumerate(docs) for e in d.ents if _linked(e.kb_id_)}
    gold_spans = {(i, e.start_char, e.end_char) for i, d in enumerate(docs) for e in d.ents}
    pred = {(i, e.start_char, e.end_char, e.kb_id_)
            for i, d in enumerate(predicted) for e in d.ents if _linked(e.kb_id_)}
    pred_spans = {(i, e.start_char, e.end_char) for i, d in enumerate(predicted) for e in d.ents}
    link = _prf(len(gold & pred), len(pred), len(gold))
    spans = _prf(len(gold_spans & pred_spans), len(pred_spans), len(gold_spans))
    return {"link_p": link["p"], "link_r": link["r"], "link_f": link["f"],
            "span_p": spans["p"], "span_r": spans["r"], "span_f": spans["f"]}
