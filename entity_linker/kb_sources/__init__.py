"""Read entity and alias files (JSONL, CSV, TSV) into arrays for a bulk KB build.

Entity files have one entity per row::

    id (required)  freq  name  description  vector

Alias files have one (alias, entity) pair per row, with either a prior
p(entity | alias) or a raw count (priors are then count / total count of the
alias)::

    alias  entity  prior | count

JSONL alias rows may also list an alias's candidates at once:
``{"alias": "Paris", "entities": ["Q90", "Q830149"], "priors": [0.9, 0.1]}``
(or ``"counts"``). CSV and TSV files need a header row naming the columns;
extra columns are ignored. A ``vector`` cell holds numbers separated by
spaces or commas (a JSON list also works). Files must be UTF-8; ``.gz``
files are decompressed on the fly.

Every problem is reported as a ``KBSourceError`` naming the file and line.
With ``skip_invalid``, bad rows are skipped and collected as ``SkippedRow``s
instead; problems with a whole file (unknown format, missing columns, no
rows, UTF-16) always raise.

The package's modules: ``tables`` (what the readers return), ``rows`` (raw
rows and field parsing), ``entities`` and ``aliases`` (the two readers) and
``folder`` (building the KB, writing and reading KB folders). Import the
public names from here.
"""

from .aliases import read_aliases
from .entities import read_entities
from .folder import build_kb, entity_texts, read_kb_meta, write_kb_directory
from .rows import detect_format, iter_rows
from .tables import (
    ALIAS_COLUMNS,
    ENTITY_COLUMNS,
    META_FILE,
    PRIOR_SUM_TOLERANCE,
    AliasTable,
    EntityTable,
    KBSourceError,
    SkippedRow,
    skipped_summary,
)

__all__ = [
    "ALIAS_COLUMNS", "ENTITY_COLUMNS", "META_FILE", "PRIOR_SUM_TOLERANCE", "AliasTable",
    "EntityTable", "KBSourceError", "SkippedRow", "build_kb", "detect_format", "entity_texts",
    "iter_rows", "read_aliases", "read_entities", "read_kb_meta", "skipped_summary",
    "write_kb_directory",
]
