"""The reader of alias files: ``read_aliases`` ((alias, entity, prior or count) pairs -> CSR)."""

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy

from .rows import _number, _Problems, _progress_bar, _RowError, _text, iter_rows
from .tables import (
    PRIOR_SUM_TOLERANCE,
    AliasTable,
    EntityTable,
    KBSourceError,
    PathLike,
    SkippedRow,
)


def _alias_pairs(row: Dict[str, Any]) -> List[Tuple[str, str, Optional[float]]]:
    """(entity, "prior" | "count", raw value) triples of one alias row."""
    has_prior, has_count = row.get("prior") is not None, row.get("count") is not None
    if "entities" in row:
        entities = row["entities"]
        if not isinstance(entities, list) or not entities:
            raise _RowError("'entities' must be a non-empty list of entity ids.")
        kinds = [k for k in ("priors", "counts") if row.get(k) is not None]
        if len(kinds) != 1:
            raise _RowError("give one of 'priors' or 'counts' with 'entities'.")
        values = row[kinds[0]]
        if not isinstance(values, list) or len(values) != len(entities):
            raise _RowError(
                f"'{kinds[0]}' must be a list with one number per entity "
                f"({len(entities)})."
            )
        kind = kinds[0][:-1]
        return [(_text({"entity": e}, "entity", "entity id"), kind, v)
                for e, v in zip(entities, values)]
    entity = _text(row, "entity", "entity id")
    if has_prior == has_count:
        raise _RowError(
            "give either a prior (p(entity | alias) in [0, 1]) or a count, not "
            f"{'both' if has_prior else 'neither'}."
        )
    kind = "prior" if has_prior else "count"
    return [(entity, kind, row[kind])]


def read_aliases(paths: Union[PathLike, Sequence[PathLike]], entities: EntityTable, *,
                 skip_invalid: bool = False, max_candidates: Optional[int] = None,
                 progress: bool = False) -> AliasTable:
    """Read alias files against the entities they refer to.

    paths: One alias file or several (their pairs are merged; counts of the
        same (alias, entity) pair are added up).
    entities (EntityTable): The entities (from ``read_entities``).
    skip_invalid (bool): Skip bad rows / aliases instead of raising.
    max_candidates (Optional[int]): Keep only this many candidates per alias,
        those with the highest priors (the priors are not renormalised).
    progress (bool): Show a progress bar on stderr.
    RETURNS (AliasTable): The aliases in first-seen order.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    if not paths:
        raise KBSourceError("no alias file given.")
    position = entities.index()
    # alias -> [kind, {entity position: value}, first line, path]
    groups: Dict[str, list] = {}
    skipped: List[SkippedRow] = []
    for path in paths:
        path = Path(path)
        problems = _Problems(path, skip_invalid)
        n_rows = 0
        bar = _progress_bar(path, f"Reading {path.name}", progress)
        try:
            rows = iter_rows(path, ("alias", "entity"), bar.update if bar is not None else None,
                             one_of=("prior", "count"))
            for line, row, error in rows:
                n_rows += 1
                if error is not None:
                    problems.report(line, error)
                    continue
                try:
                    alias = _text(row, "alias", "alias")
                    pairs = _alias_pairs(row)
                    group = groups.get(alias)
                    parsed = []
                    for entity, kind, raw in pairs:
                        if entity not in position:
                            raise _RowError(
                                f"unknown entity {entity!r} for alias {alias!r}: it is not in "
                                f"{entities.path}."
                            )
                        value = (_number(raw, "prior", maximum=1.0) if kind == "prior"
                                 else _number(raw, "count"))
                        if group is not None and group[0] != kind:
                            raise _RowError(
                                f"alias {alias!r} has {group[0]}s elsewhere (line {group[2]} of "
                                f"{group[3]}) and a {kind} here: use one kind per alias."
                            )
                        row_pos = position[entity]
                        if kind == "prior" and (
                            (group is not None and row_pos in group[1])
                            or any(p == row_pos for p, _ in parsed)
                        ):
                            raise _RowError(
                                f"duplicate prior for alias {alias!r} and entity {entity!r}."
                            )
                        parsed.append((row_pos, value))
                except _RowError as err:
                    problems.report(line, str(err))
                    continue
                if group is None:
                    group = groups[alias] = [pairs[0][1], {}, line, str(path)]
                for row_pos, value in parsed:
                    group[1][row_pos] = group[1].get(row_pos, 0.0) + value
        finally:
            if bar is not None:
                bar.close()
        if n_rows == 0:
            raise KBSourceError("the file is empty: no aliases.", path)
        skipped.extend(problems.skipped)
    texts: List[str] = []
    offsets = [0]
    candidate_entities: List[int] = []
    candidate_priors: List[float] = []
    for alias, (kind, values, line, path) in groups.items():
        rows = numpy.fromiter(values.keys(), dtype=numpy.int64, count=len(values))
        numbers = numpy.fromiter(values.values(), dtype=numpy.float64, count=len(values))
        total = float(numbers.sum())
        if kind == "count":
            if total <= 0:
                reason = f"the counts of alias {alias!r} add up to 0: no prior can be computed."
                if not skip_invalid:
                    raise KBSourceError(reason, path, line)
                skipped.append(SkippedRow(path, line, reason))
                continue
            numbers = numbers / total
        elif total > 1.0 + PRIOR_SUM_TOLERANCE:
            reason = (
                f"the priors of alias {alias!r} add up to {total:.6g}, more than 1: they are "
                "p(entity | alias), so they must add up to at most 1 (or give counts)."
            )
            if not skip_invalid:
                raise KBSourceError(reason, path, line)
            skipped.append(SkippedRow(path, line, reason))
            continue
        elif total > 1.0:
            numbers = numbers / total
        order = numpy.lexsort((rows, -numbers))
        if max_candidates is not None:
            order = order[:max_candidates]
        texts.append(alias)
        candidate_entities.extend(rows[order].tolist())
        candidate_priors.extend(numbers[order].tolist())
        offsets.append(len(candidate_entities))
    if not texts:
        raise KBSourceError("no valid aliases in " + ", ".join(str(p) for p in paths) + ".")
    return AliasTable(
        texts=texts,
        offsets=numpy.asarray(offsets, dtype=numpy.int64),
        entities=numpy.asarray(candidate_entities, dtype=numpy.int64),
        priors=numpy.asarray(candidate_priors, dtype=numpy.float32),
        skipped=skipped,
    )
