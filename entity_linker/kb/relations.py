"""Entity relations: each entity's parents (the places or classes that contain it).

Stored as CSR over entity rows, two sections of the KB file (``parent_offsets``,
``parent_rows``; format version 3): entity row ``e`` has the parents
``parent_rows[parent_offsets[e]:parent_offsets[e + 1]]``. A GeoNames KB links a
city to its first-level division and its country and a division to its
country; a Wikidata KB can store P131 (located in) and P17 (country) the same
way. The linker reads them as evidence: a candidate whose ancestor is named
in the same doc ("Springfield, Illinois") is contained by it.

A mapped KB serves the relations from the file (views, read on demand). The
offsets are checked against the file in O(1) when it is opened; every other
index is checked where it is read, so a corrupt file raises ``KBFormatError``
and never reads out of bounds.
"""

from typing import Dict, Optional, Tuple

import numpy

from ..errors import KBFormatError

OFFSET_DTYPE = numpy.dtype("<u8")
ROW_DTYPE = numpy.dtype("<u4")
# Ancestors are followed this many levels up (a city -> county -> state ->
# country chain has 3); a cycle in a corrupt or careless KB stops here too.
MAX_DEPTH = 6


def concatenated_ranges(starts, counts) -> numpy.ndarray:
    """``concatenate([arange(s, s + c) for s, c in zip(starts, counts)])``, vectorised."""
    counts = numpy.asarray(counts, dtype=numpy.int64)
    first = numpy.repeat(numpy.asarray(starts, dtype=numpy.int64)
                         - (numpy.cumsum(counts) - counts), counts)
    return first + numpy.arange(int(counts.sum()), dtype=numpy.int64)


class EntityRelations:
    """The parents of a KB's entities, as rows.

    offsets, parents: the CSR arrays (read-only views of a mapped file, or
        arrays); both None for a KB without relations.
    source (str): Where the arrays come from, for error messages.
    """

    def __init__(self, offsets: Optional[numpy.ndarray] = None,
                 parents: Optional[numpy.ndarray] = None, source: str = "the KB") -> None:
        if (offsets is None) != (parents is None):
            raise ValueError("Give both the parent offsets and the parent rows, or neither.")
        if offsets is not None and not len(offsets):
            offsets = parents = None
        self._offsets = offsets
        self._parents = parents
        self._source = source
        # Changes of a writable KB (row -> parent rows), merged on the next read.
        self._changed: Dict[int, numpy.ndarray] = {}

    @classmethod
    def from_views(cls, views: Dict[str, numpy.ndarray], source: str) -> "EntityRelations":
        """The relations of a file image (``format.open_views`` checked their shape)."""
        return cls(views["parent_offsets"], views["parent_rows"], source)

    def __bool__(self) -> bool:
        return self._offsets is not None or bool(self._changed)

    def copy(self) -> "EntityRelations":
        """A writable copy (arrays copied out of any mapping)."""
        self._merge()
        if self._offsets is None:
            return EntityRelations(source=self._source)
        return EntityRelations(numpy.array(self._offsets), numpy.array(self._parents),
                               self._source)

    def set(self, row: int, parent_rows: numpy.ndarray) -> None:
        """Replace the parents of one entity row (already validated by the KB)."""
        self._changed[int(row)] = numpy.asarray(parent_rows, dtype=ROW_DTYPE)

    def set_all(self, children: numpy.ndarray, parents: numpy.ndarray, n_entities: int) -> None:
        """Replace every relation by the (child row, parent row) pairs given.
        Pairs keep their order within a child; repeated pairs are kept once."""
        children = numpy.asarray(children, dtype=numpy.int64)
        parents = numpy.asarray(parents, dtype=numpy.int64)
        pairs = numpy.stack([children, parents], axis=1)
        _, first = numpy.unique(pairs, axis=0, return_index=True)
        first.sort()
        children, parents = children[first], parents[first]
        order = numpy.argsort(children, kind="stable")
        offsets = numpy.zeros(n_entities + 1, dtype=OFFSET_DTYPE)
        numpy.cumsum(numpy.bincount(children, minlength=n_entities), out=offsets[1:])
        self._offsets = offsets
        self._parents = parents[order].astype(ROW_DTYPE)
        self._changed = {}

    def _merge(self) -> None:
        """Fold the pending changes into the CSR arrays."""
        if not self._changed:
            return
        n = max(len(self._offsets) - 1 if self._offsets is not None else 0,
                max(self._changed) + 1)
        counts = numpy.zeros(n, dtype=numpy.int64)
        if self._offsets is not None:
            counts[: len(self._offsets) - 1] = numpy.diff(self._offsets.astype(numpy.int64))
        for row, rows in self._changed.items():
            counts[row] = len(rows)
        offsets = numpy.zeros(n + 1, dtype=OFFSET_DTYPE)
        numpy.cumsum(counts, out=offsets[1:])
        parents = numpy.zeros(int(offsets[-1]), dtype=ROW_DTYPE)
        for row in range(n):
            start, end = int(offsets[row]), int(offsets[row + 1])
            if start == end:
                continue
            if row in self._changed:
                parents[start:end] = self._changed[row]
            else:
                parents[start:end] = self._old_parents(row)
        self._offsets, self._parents, self._changed = offsets, parents, {}

    def _old_parents(self, row: int) -> numpy.ndarray:
        return self._parents[int(self._offsets[row]) : int(self._offsets[row + 1])]

    def _corrupt(self, what: str) -> KBFormatError:
        return KBFormatError(
            f"{self._source}: the entity relations are corrupt ({what}). Check the file "
            "with `entity-linker kb validate` and rebuild it."
        )

    def parents_of(self, row: int, n_entities: int) -> numpy.ndarray:
        """The parent rows of one entity row (uint32; empty when it has none)."""
        if row in self._changed:
            return self._changed[row]
        if self._offsets is None or row + 1 >= len(self._offsets):
            return numpy.zeros(0, dtype=ROW_DTYPE)
        start, end = int(self._offsets[row]), int(self._offsets[row + 1])
        if not 0 <= start <= end <= len(self._parents):
            raise self._corrupt(f"the parents of row {row} lie outside parent_rows")
        rows = self._parents[start:end]
        if len(rows) and int(rows.max()) >= n_entities:
            raise self._corrupt(f"a parent of row {row} points past the last entity")
        return rows

    def ancestors(self, rows, n_entities: int, max_depth: int = MAX_DEPTH
                  ) -> Tuple[numpy.ndarray, numpy.ndarray]:
        """The ancestors of many entity rows at once: parents, their parents, ...

        RETURNS (offsets, ancestor_rows): CSR by input row (int64 offsets, len
            n + 1; int64 rows); nearest first, each ancestor once, never the row
            itself.
        """
        rows = numpy.asarray(rows, dtype=numpy.int64).reshape(-1)
        n = len(rows)
        self._merge()
        if self._offsets is None or not n:
            return numpy.zeros(n + 1, dtype=numpy.int64), numpy.zeros(0, dtype=numpy.int64)
        offsets = self._offsets
        n_rows = len(offsets) - 1
        found_source, found_rows = [], []
        source = numpy.arange(n, dtype=numpy.int64)
        frontier = rows
        for _ in range(max_depth):
            inside = (frontier >= 0) & (frontier < n_rows)
            source, frontier = source[inside], frontier[inside]
            if not len(frontier):
                break
            starts = offsets[frontier].astype(numpy.int64)
            ends = offsets[frontier + 1].astype(numpy.int64)
            counts = ends - starts
            if numpy.any(counts < 0) or (len(ends) and int(ends.max()) > len(self._parents)):
                raise self._corrupt("parent_offsets are not monotonic or overrun parent_rows")
            next_rows = self._parents[concatenated_ranges(starts, counts)].astype(numpy.int64)
            if len(next_rows) and int(next_rows.max()) >= n_entities:
                raise self._corrupt("a parent points past the last entity")
            source = numpy.repeat(source, counts)
            found_source.append(source)
            found_rows.append(next_rows)
            frontier = next_rows
        if not found_rows:
            return numpy.zeros(n + 1, dtype=numpy.int64), numpy.zeros(0, dtype=numpy.int64)
        source = numpy.concatenate(found_source)
        ancestor = numpy.concatenate(found_rows)
        # Discovery order: level by level, each level's parents in stored order.
        found = numpy.arange(len(source))
        keep = ancestor != rows[source]
        source, ancestor, found = source[keep], ancestor[keep], found[keep]
        # Each (source, ancestor) pair once, where it was found first (nearest).
        order = numpy.lexsort((found, ancestor, source))
        source, ancestor, found = source[order], ancestor[order], found[order]
        first = numpy.ones(len(source), dtype=bool)
        first[1:] = (source[1:] != source[:-1]) | (ancestor[1:] != ancestor[:-1])
        source, ancestor, found = source[first], ancestor[first], found[first]
        # Nearest first, then in discovery order.
        order = numpy.lexsort((found, source))
        source, ancestor = source[order], ancestor[order]
        out_offsets = numpy.zeros(n + 1, dtype=numpy.int64)
        numpy.cumsum(numpy.bincount(source, minlength=n), out=out_offsets[1:])
        return out_offsets, ancestor

    def arrays(self, n_entities: int) -> Dict[str, numpy.ndarray]:
        """The two file sections, compact and sized for ``n_entities`` (both
        empty when there are no relations)."""
        self._merge()
        if self._offsets is None:
            return {}
        offsets = numpy.asarray(self._offsets, dtype=OFFSET_DTYPE)
        n = len(offsets) - 1
        if n < n_entities:  # entities added after the last relation
            offsets = numpy.concatenate(
                [offsets, numpy.full(n_entities - n, offsets[-1], dtype=OFFSET_DTYPE)])
        elif n > n_entities:
            raise ValueError(f"Relations of {n} rows for a KB of {n_entities} entities.")
        return {"parent_offsets": offsets,
                "parent_rows": numpy.asarray(self._parents, dtype=ROW_DTYPE)}
