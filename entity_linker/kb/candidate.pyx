"""A candidate entity for a mention: one (alias, entity, prior) triple."""
from typing import List

from .kb cimport KnowledgeBase


cdef class Candidate:
    """A `Candidate` pairs a textual mention (its ``alias``) with one ``entity``
    of the KB that it may refer to, with the prior probability p(entity | alias).

    Same API as ``spacy.kb.Candidate``: ``entity_vector`` is a list of floats,
    as spaCy's; ``vector`` is the same vector as a read-only numpy view into
    the KB's vector matrix (no copy).
    """

    def __init__(
        self,
        KnowledgeBase kb,
        entity_hash,
        entity_freq,
        entity_vector,
        alias_hash,
        prior_prob,
    ):
        self.kb = kb
        self.entity_hash = entity_hash
        self.entity_freq = entity_freq
        self._entity_vector = entity_vector
        self.alias_hash = alias_hash
        self.prior_prob = prior_prob
        self.entity_row = -1
        self.alias_row = -1

    @property
    def entity(self) -> int:
        """RETURNS (int): hash of the entity's KB id."""
        return self.entity_hash

    @property
    def entity_(self) -> str:
        """RETURNS (str): the entity's KB id."""
        return self.kb._entity_string(self.entity_hash, self.entity_row)

    @property
    def alias(self) -> int:
        """RETURNS (int): hash of the alias."""
        return self.alias_hash

    @property
    def alias_(self) -> str:
        """RETURNS (str): the alias text."""
        return self.kb._alias_string(self.alias_hash, self.alias_row)

    @property
    def entity_freq(self) -> float:
        """RETURNS (float): the entity's frequency."""
        return self.entity_freq

    @property
    def entity_vector(self) -> List[float]:
        """RETURNS (List[float]): the entity's vector, as spaCy returns it."""
        vector = self._entity_vector
        return vector.tolist() if hasattr(vector, "tolist") else list(vector)

    @property
    def vector(self):
        """RETURNS (numpy.ndarray): the entity's vector, a read-only view (no copy)."""
        return self._entity_vector

    @property
    def prior_prob(self) -> float:
        """RETURNS (float): p(entity | alias)."""
        return self.prior_prob

    def __repr__(self):
        return (
            f"Candidate(entity={self.entity_!r}, alias={self.alias_!r}, "
            f"prior_prob={self.prior_prob:.4g})"
        )
