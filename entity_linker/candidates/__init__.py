"""Candidate generation: from mentions (spaCy Spans) to candidate entities.

Modules, one responsibility each:

- arrays.py: CandidateArrays, a batch's candidates as flat CSR arrays, and
  their maths (merge_stages, concatenated_ranges, ...).
- protocol.py: what a generator is: the ArrayCandidateGenerator protocol and
  the CandidateGenerator base class.
- generators.py: the exact, normalised, fuzzy and cascade generators.
- default.py: spaCy's default generators, get_candidates and
  get_candidates_batch.
- table.py: CandidateTable, the candidates the ``nel`` component scores.
- lookup.py: lookup_candidates, the table of a batch from a generator.
"""

from .arrays import CandidateArrays, concatenated_ranges, merge_stages
from .default import KBBatchCandidates, get_candidates, get_candidates_batch
from .generators import (
    DEFAULT_DISCOUNT,
    CascadeCandidates,
    ExactCandidates,
    FuzzyCandidates,
    NormalizedCandidates,
    alias_index,
)
from .lookup import lookup_candidates
from .protocol import ArrayCandidateGenerator, CandidateGenerator
from .table import CandidateTable

__all__ = [
    "DEFAULT_DISCOUNT",
    "ArrayCandidateGenerator",
    "CandidateArrays",
    "CandidateGenerator",
    "CandidateTable",
    "CascadeCandidates",
    "ExactCandidates",
    "FuzzyCandidates",
    "KBBatchCandidates",
    "NormalizedCandidates",
    "alias_index",
    "concatenated_ranges",
    "get_candidates",
    "get_candidates_batch",
    "lookup_candidates",
    "merge_stages",
]
