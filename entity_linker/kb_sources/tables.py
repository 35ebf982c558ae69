"""What the readers return: the entity and alias tables, skipped rows, source errors.

The column names of the files, ``KBSourceError`` (a problem with a file and
line), ``SkippedRow`` (a row left out by ``skip_invalid``), ``EntityTable``
and ``AliasTable`` (the arrays of a bulk KB build).
"""

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy

from ..errors import KBError

PathLike = Union[str, Path]

ENTITY_COLUMNS = ("id", "freq", "name", "description", "vector")
ALIAS_COLUMNS = ("alias", "entity", "prior", "count")
META_FILE = "meta.json"
# Priors of one alias may exceed 1 by rounding in the input.
PRIOR_SUM_TOLERANCE = 1e-4


class KBSourceError(KBError):
    """A KB source file is malformed; the message names the file and line."""

    def __init__(self, message: str, path: Optional[PathLike] = None, line: Optional[int] = None):
        self.reason = message
        self.path = str(path) if path is not None else None
        self.line = line
        if self.path is not None and line is not None:
            message = f"{self.path}:{line}: {message}"
        elif self.path is not None:
            message = f"{self.path}: {message}"
        super().__init__(message)


@dataclass
class SkippedRow:
    """A row left out of the KB by ``skip_invalid``, and why."""

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass
class EntityTable:
    """Entities read from a file, in file order."""

    ids: List[str]
    freqs: numpy.ndarray
    vectors: Optional[numpy.ndarray]  # (n, L) float32, or None when the file has none
    texts: List[str]  # name and description, for an encoder ("" when absent)
    lines: List[int]
    path: str
    skipped: List[SkippedRow] = field(default_factory=list)
    names: List[str] = field(default_factory=list)  # the name column ("" when absent)

    def __len__(self) -> int:
        return len(self.ids)

    def index(self) -> Dict[str, int]:
        """RETURNS (Dict[str, int]): position of every entity id."""
        return {entity: i for i, entity in enumerate(self.ids)}


@dataclass
class AliasTable:
    """Aliases in the CSR layout of ``InMemoryLookupKB.from_arrays``.

    Alias i owns candidates [offsets[i], offsets[i + 1]); ``entities`` holds
    positions in the EntityTable; candidates are sorted by prior, highest first.
    """

    texts: List[str]
    offsets: numpy.ndarray
    entities: numpy.ndarray
    priors: numpy.ndarray
    skipped: List[SkippedRow] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def n_candidates(self) -> int:
        return len(self.entities)



def skipped_summary(skipped: Sequence[SkippedRow], limit: int = 5) -> str:
    """A short, human-readable list of skipped rows."""
    out = io.StringIO()
    for row in list(skipped)[:limit]:
        out.write(f"  {row}\n")
    if len(skipped) > limit:
        out.write(f"  ... and {len(skipped) - limit} more\n")
    return out.getvalue().rstrip("\n")
