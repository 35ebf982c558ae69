"""What the other mentions of a doc say of each candidate, for ``nel``'s scorer.

``doc_evidence`` gathers the doc-level evidence that ``scoring.CandidateScorer``
reads (coherence, coreference, containment, name evidence, sibling), and
``container_mentions`` finds the mention that names another's container
("Springfield, Illinois").
"""

import re
from typing import Any, Dict, List, NamedTuple, Optional, Sequence

import numpy
from spacy.tokens import Doc, Span

from .candidates import CandidateTable
from .scoring import (
    CandidateScorer,
    coherence,
    containment,
    coreference,
    name_evidence,
    regional_ancestors,
    sibling,
)


class DocEvidence(NamedTuple):
    """The doc-level evidence of a candidate table, one value per candidate
    (None for what the scorer does not read)."""

    coherence: Optional[numpy.ndarray] = None
    coreference: Optional[numpy.ndarray] = None
    containment: Optional[numpy.ndarray] = None
    names: Optional[numpy.ndarray] = None
    siblings: Optional[numpy.ndarray] = None

    def select(self, positions) -> "DocEvidence":
        """The evidence of the candidates at ``positions`` (``table.positions``)."""
        return DocEvidence(*(None if values is None else values[positions] for values in self))

    @classmethod
    def concatenate(cls, parts: Sequence["DocEvidence"], sizes: Sequence[int]) -> "DocEvidence":
        """The evidence of tables laid end to end (``sizes``: each part's number
        of candidates). A part without candidates may hold None everywhere."""
        fields = []
        for values in zip(*parts):
            known = [v for v in values if v is not None]
            if not known:
                fields.append(None)
                continue
            shape, dtype = known[0].shape[1:], known[0].dtype
            fields.append(numpy.concatenate([
                v if v is not None else numpy.zeros((size,) + shape, dtype=dtype)
                for v, size in zip(values, sizes)]))
        return cls(*fields)

    def scorer_kwargs(self) -> Dict[str, Any]:
        """The keyword arguments of ``CandidateScorer``'s methods that carry it."""
        return {"coherence_values": self.coherence, "coreference_values": self.coreference,
                "containment_values": self.containment, "name_values": self.names,
                "sibling_values": self.siblings}


def doc_evidence(kb, docs: Sequence[Doc], mentions: List[Span], table: CandidateTable,
                 discard, scorer: CandidateScorer) -> DocEvidence:
    """What the doc's other mentions say of each candidate, where the scorer
    reads it: coherence (``scoring.coherence``), containment
    (``scoring.containment``, when the KB has relations) and, with
    "learned", coreference (``scoring.coreference``) and what the candidates'
    names say (``scoring.name_evidence``, when the KB has names), and with a
    ``prior_gate`` or a sibling weight the sibling evidence (``scoring.sibling``,
    when the KB has relations); None for what is not read."""
    fit = coref = contained = named = siblings = None
    if not table.n_candidates or not (scorer.uses_coherence or scorer.uses_containment
                                      or scorer.uses_siblings):
        return DocEvidence()
    doc_of = {id(doc): i for i, doc in enumerate(docs)}
    groups: Dict[tuple, int] = {}
    doc_index = [doc_of[id(m.doc)] for m in mentions]
    group_index = [groups.setdefault((d, m.text.lower()), len(groups))
                   for d, m in zip(doc_index, mentions)]
    if scorer.uses_coherence:
        fit = coherence(table.offsets, table.priors, table.vectors, doc_index,
                        group_index, ~discard)
    rows = None
    if scorer.scoring == "learned":
        texts = [m.text for m in mentions]
        coref = coreference(table.offsets, table.keys, table.priors, doc_index, texts)
        if getattr(kb, "has_names", False):
            rows = table.entity_rows()
            named = name_evidence(table.offsets, kb.names_of_rows(rows), doc_index,
                                  group_index, texts, [doc.text for doc in docs])
    if (scorer.uses_containment or scorer.uses_siblings) and getattr(kb, "has_relations", False):
        rows = table.entity_rows() if rows is None else rows
        ancestors = kb.ancestor_rows(rows)
        contained = containment(table.offsets, rows, table.priors, ancestors, doc_index,
                                group_index, container_mentions(mentions), ~discard)
        if scorer.uses_siblings:
            siblings = sibling(table.offsets, table.priors, ancestors,
                               regional_ancestors(kb, ancestors), doc_index, group_index,
                               ~discard)
    return DocEvidence(fit, coref, contained, named, siblings)


# What may stand between a place and the place that contains it, when the
# second is named as the first's container: "Springfield, Illinois",
# "Paris (Texas)", "Cambridge in England", "Victoria, B.C.".
_CONTAINER_GAP = re.compile(r"\s*(?:,|\(|\bin\b|,\s*in\b)\s*")


def container_mentions(mentions: Sequence[Span]) -> List[int]:
    """For each mention, the next mention of its doc when the text between them
    names it as a container (", ", " (", " in "), else -1."""
    out = [-1] * len(mentions)
    for i in range(len(mentions) - 1):
        here, after = mentions[i], mentions[i + 1]
        if here.doc is not after.doc or after.start_char < here.end_char:
            continue
        gap = here.doc.text[here.end_char : after.start_char]
        if len(gap) <= 8 and _CONTAINER_GAP.fullmatch(gap):
            out[i] = i + 1
    return out
