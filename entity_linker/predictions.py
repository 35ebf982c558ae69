"""What the ``nel`` component outputs: kb ids with scores, and how a choice is explained.

``LinkPredictions`` (what ``EntityLinker.predict`` returns), the Span
extensions ``set_annotations`` fills (``kb_score``, ``kb_candidates``,
``kb_evidence``), ``explain_choices`` (with ``nel.explain``) and the scorer of
kb ids (``entity_linker_score``).
"""

from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
from spacy.scorer import Scorer
from spacy.tokens import Span
from spacy.training import Example

from .candidates import CandidateTable

NIL = "NIL"

# Span extensions with what the linker saw (see README, "Scores").
if not Span.has_extension("kb_score"):
    Span.set_extension("kb_score", default=None)
if not Span.has_extension("kb_candidates"):
    Span.set_extension("kb_candidates", default=None)
if not Span.has_extension("kb_evidence"):
    Span.set_extension("kb_evidence", default=None)


def entity_linker_score(examples: Iterable[Example], **kwargs) -> Dict[str, Any]:
    """Micro P/R/F of kb ids, as spaCy's ``spacy.entity_linker_scorer.v1``."""
    return Scorer.score_links(examples, negative_labels=[NIL], **kwargs)


class LinkPredictions(list):
    """The kb ids ``predict`` returns (a list of str, one per mention, as spaCy's),
    with the score and top-k candidates of each mention attached."""

    def __init__(self, kb_ids: Sequence[str], scores: Sequence[Optional[float]],
                 candidates: Sequence[Optional[list]],
                 evidence: Optional[Sequence[Optional[dict]]] = None):
        super().__init__(kb_ids)
        self.scores = list(scores)
        self.candidates = list(candidates)
        # With nel.explain: per mention, what each piece of evidence gave the winner.
        self.evidence = None if evidence is None else list(evidence)



def explain_choices(table: CandidateTable, order, components: Dict[str, numpy.ndarray],
                    gates: Optional[Tuple[numpy.ndarray, numpy.ndarray]] = None
                    ) -> List[Optional[dict]]:
    """Per mention: what each piece of evidence gave its best candidate, the
    margin of each over the rival, and the one that decided (the largest
    positive margin; "only candidate" when there was no other). The rival is
    the candidate with the highest prior when the best is not it (what
    overturned the prior?), else the runner-up. order: the candidates ranked
    best first (``table.ranked(scores)``). gates: the candidates the scorer's
    ``prior_gate`` and ``freq_gate`` kept out (``CandidateScorer.gates``);
    when one of them had more evidence than the best, it is the rival and
    that gate decided; when they kept out every candidate, "freq gate"
    decided (the mention is NIL)."""
    total = sum(components.values()) if components else None
    gated = None if gates is None else gates[0] | gates[1]
    out: List[Optional[dict]] = []
    for i in range(len(table.offsets) - 1):
        start, end = int(table.offsets[i]), int(table.offsets[i + 1])
        if start == end:
            out.append(None)
            continue
        best = int(order[start])
        values = {name: round(float(value[best]), 4) for name, value in components.items()}
        if gated is not None and gated[start:end].all():
            out.append({"evidence": values, "margins": {}, "decided_by": "freq gate"})
            continue
        if end - start == 1:
            out.append({"evidence": values, "margins": {}, "decided_by": "only candidate"})
            continue
        top_prior = start + int(numpy.argmax(table.priors[start:end]))
        second = top_prior if table.priors[top_prior] > table.priors[best] else int(
            order[start + 1])
        blocked = None
        if gated is not None and total is not None and gated[start:end].any():
            candidates = numpy.flatnonzero(gated[start:end]) + start
            strongest = int(candidates[numpy.argmax(total[candidates])])
            if total[strongest] > total[best]:
                blocked = second = strongest
        margins = {name: round(float(value[best] - value[second]), 4)
                   for name, value in components.items()}
        decided = max(margins, key=margins.get) if margins else "tie"
        if margins and margins[decided] <= 0:
            decided = "tie"
        if blocked is not None:
            decided = "prior gate" if gates[0][blocked] else "freq gate"
        out.append({"evidence": values, "margins": margins, "decided_by": decided,
                    "rival": table.entity_id(second)})
    return out
