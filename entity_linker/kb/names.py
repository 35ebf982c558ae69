"""Entity names: the display name of each entity ("Leicester City F.C." for Q19481).

Stored as CSR of UTF-8 bytes over entity rows, two sections of the KB file
(``name_offsets``, ``name_strings``; format version 4): entity row ``e`` is
named ``name_strings[name_offsets[e]:name_offsets[e + 1]]``, the empty string
where it has no name. The linker reads names as evidence (``scoring.name_
context``: the name's other words in the doc, "rugby" for "Italy national
rugby union team"); tools show them beside the ids.

A mapped KB serves the names from the file (views, decoded on demand). The
offsets are checked against the file in O(1) when it is opened; each name's
bounds are checked where it is read, so a corrupt file raises ``KBFormatError``
and never reads out of bounds.
"""

from typing import Dict, List, Optional, Sequence

import numpy

from ..errors import KBFormatError

OFFSET_DTYPE = numpy.dtype("<u8")


class EntityNames:
    """The names of a KB's entities, by row.

    offsets, data: the CSR arrays (read-only views of a mapped file, or
        arrays); both None for a KB without names.
    source (str): Where the arrays come from, for error messages.
    """

    def __init__(self, offsets: Optional[numpy.ndarray] = None,
                 data: Optional[numpy.ndarray] = None, source: str = "the KB") -> None:
        if (offsets is None) != (data is None):
            raise ValueError("Give both the name offsets and the name bytes, or neither.")
        if offsets is not None and not len(offsets):
            offsets = data = None
        self._offsets = offsets
        self._data = data
        self._source = source
        # Names set on a writable KB (row -> name), merged on the next bulk read.
        self._changed: Dict[int, str] = {}

    @classmethod
    def from_views(cls, views: Dict[str, numpy.ndarray], source: str) -> "EntityNames":
        """The names of a file image (``format.open_views`` checked their shape)."""
        return cls(views["name_offsets"], views["name_strings"], source)

    def __bool__(self) -> bool:
        return self._offsets is not None or bool(self._changed)

    def copy(self) -> "EntityNames":
        """A writable copy (arrays copied out of any mapping)."""
        self._merge()
        if self._offsets is None:
            return EntityNames(source=self._source)
        return EntityNames(numpy.array(self._offsets), numpy.array(self._data), self._source)

    def set(self, rows: Sequence[int], names: Sequence[str]) -> None:
        """Name the entity rows (validated by the KB); "" removes a name."""
        for row, name in zip(rows, names):
            self._changed[int(row)] = name

    def name_of(self, row: int) -> str:
        """The name of one entity row ("" when it has none)."""
        if row in self._changed:
            return self._changed[row]
        if self._offsets is None or not 0 <= row < len(self._offsets) - 1:
            return ""
        start, end = int(self._offsets[row]), int(self._offsets[row + 1])
        if not 0 <= start <= end <= len(self._data):
            raise self._corrupt(f"the name of row {row} lies outside name_strings")
        try:
            return self._data[start:end].tobytes().decode("utf8")
        except UnicodeDecodeError:
            raise self._corrupt(f"the name of row {row} is not valid UTF-8") from None

    def names_of(self, rows: Sequence[int]) -> List[str]:
        """The names of many entity rows ("" where one has none)."""
        return [self.name_of(int(row)) for row in rows]

    def arrays(self, n_entities: int) -> Dict[str, numpy.ndarray]:
        """The two file sections, sized for ``n_entities`` (both empty when no
        entity has a name)."""
        self._merge()
        if self._offsets is None:
            return {}
        offsets = numpy.asarray(self._offsets, dtype=OFFSET_DTYPE)
        n = len(offsets) - 1
        if n < n_entities:  # entities added after the last name
            offsets = numpy.concatenate(
                [offsets, numpy.full(n_entities - n, offsets[-1], dtype=OFFSET_DTYPE)])
        elif n > n_entities:
            raise ValueError(f"Names of {n} rows for a KB of {n_entities} entities.")
        return {"name_offsets": offsets,
                "name_strings": numpy.asarray(self._data, dtype=numpy.uint8)}

    def _merge(self) -> None:
        """Fold the names set since the last merge into the CSR arrays."""
        if not self._changed:
            return
        n_old = len(self._offsets) - 1 if self._offsets is not None else 0
        n = max(n_old, max(self._changed) + 1)
        encoded = [self.name_of(row).encode("utf8") for row in range(n)]
        offsets = numpy.zeros(n + 1, dtype=OFFSET_DTYPE)
        numpy.cumsum([len(b) for b in encoded], out=offsets[1:])
        data = numpy.frombuffer(b"".join(encoded), dtype=numpy.uint8).copy()
        if not int(offsets[-1]):  # every name removed
            self._offsets = self._data = None
        else:
            self._offsets, self._data = offsets, data
        self._changed = {}

    def _corrupt(self, what: str) -> KBFormatError:
        return KBFormatError(
            f"{self._source}: the entity names are corrupt ({what}). Check the file "
            "with `entity-linker kb validate` and rebuild it."
        )
