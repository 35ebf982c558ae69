"""The reader of entity files: ``read_entities`` (id, freq, name, description, vector)."""

from pathlib import Path
from typing import Dict, List, Optional

import numpy

from .rows import _number, _Problems, _progress_bar, _RowError, _text, _vector, iter_rows
from .tables import EntityTable, KBSourceError, PathLike


def read_entities(path: PathLike, *, skip_invalid: bool = False,
                  progress: bool = False) -> EntityTable:
    """Read an entity file.

    path (PathLike): A .jsonl, .csv or .tsv file (optionally .gz).
    skip_invalid (bool): Skip bad rows (listed in ``skipped``) instead of raising.
    progress (bool): Show a progress bar on stderr.
    RETURNS (EntityTable): The entities, in file order.
    """
    path = Path(path)
    problems = _Problems(path, skip_invalid)
    ids: List[str] = []
    freqs: List[float] = []
    vectors: List[List[float]] = []
    texts: List[str] = []
    names: List[str] = []
    lines: List[int] = []
    first_line: Dict[str, int] = {}
    with_vectors: Optional[bool] = None
    vector_line = 0
    bar = _progress_bar(path, f"Reading {path.name}", progress)
    try:
        for line, row, error in iter_rows(path, ("id",), bar.update if bar is not None else None):
            if error is not None:
                problems.report(line, error)
                continue
            try:
                entity = _text(row, "id", "entity id")
                if entity in first_line:
                    raise _RowError(
                        f"duplicate entity id {entity!r} (first defined at line "
                        f"{first_line[entity]})."
                    )
                freq = _number(row["freq"], "freq") if row.get("freq") is not None else 0.0
                name = _text(row, "name", "name", required=False) or ""
                description = _text(row, "description", "description", required=False) or ""
                vector = _vector(row["vector"]) if row.get("vector") is not None else None
                if with_vectors is None:
                    with_vectors, vector_line = vector is not None, line
                elif with_vectors and vector is None:
                    raise _RowError(
                        f"entity {entity!r} has no vector, but the entity at line "
                        f"{vector_line} has one: give every entity a vector, or none (then "
                        "an encoder computes them from the descriptions)."
                    )
                elif not with_vectors and vector is not None:
                    raise _RowError(
                        f"entity {entity!r} has a vector, but the entity at line "
                        f"{vector_line} has none: give every entity a vector, or none."
                    )
                if vector is not None and vectors and len(vector) != len(vectors[0]):
                    raise _RowError(
                        f"the vector of entity {entity!r} has length {len(vector)}, the "
                        f"one at line {vector_line} has length {len(vectors[0])}."
                    )
            except _RowError as err:
                problems.report(line, str(err))
                continue
            first_line[entity] = line
            ids.append(entity)
            freqs.append(freq)
            texts.append(f"{name} {description}".strip())
            names.append(name)
            lines.append(line)
            if vector is not None:
                vectors.append(vector)
    finally:
        if bar is not None:
            bar.close()
    if not ids:
        reason = "no valid entities" if problems.skipped else "the file is empty: no entities"
        raise KBSourceError(f"{reason}.", path)
    matrix = numpy.asarray(vectors, dtype=numpy.float32) if with_vectors else None
    return EntityTable(
        ids=ids,
        freqs=numpy.asarray(freqs, dtype=numpy.float32),
        vectors=matrix,
        texts=texts,
        lines=lines,
        path=str(path),
        skipped=problems.skipped,
        names=names,
    )
