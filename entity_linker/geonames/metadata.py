"""The GeoNames KB's metadata sidecar (``geonames.npz``): its reader and writer.

Coordinates, country, first-level division, kind, name and population of
every entity, row-aligned with the KB's entities. ``GeoNamesMetadata`` reads
it, ``check_geonames_metadata`` checks it against a kb.bin, ``write_metadata``
writes it from the builder's columns.
"""

from pathlib import Path
from typing import Any, Dict, NamedTuple, Optional, Sequence, Union

import numpy

from ..errors import KBFormatError
from ..kb import InMemoryLookupKB

PathLike = Union[str, Path]

METADATA_FILE = "geonames.npz"
# "state": a first-level division (US state, province, England ...); "county":
# a second-level division; "feature": a lake, river, mountain, region ...
# (only from GeoNames' own dumps, see geonames_dump.py).
KINDS = ("city", "country", "state", "continent", "county", "feature")
CITY, COUNTRY, STATE, CONTINENT, COUNTY, FEATURE = range(6)


class GeoNamesRecord(NamedTuple):
    """What the metadata sidecar knows about one GeoNames entity."""

    id: str
    name: str
    kind: str  # "city", "country", "state" or "continent"
    latitude: float  # NaN when unknown
    longitude: float
    country_code: str  # ISO 3166 alpha-2 ("" for continents)
    country: str  # country name
    admin1_code: str  # GeoNames admin1 code (US: the state's postal code)
    admin1: str  # the name of the first-level division it lies in ("" if unknown)
    population: int
    approximate_coordinates: bool  # centroid of the entity's cities



class GeoNamesMetadata:
    """Coordinates, country, kind, ... of the GeoNames KB's entities.

    Arrays are row-aligned with the KB: row i describes ``kb.get_entity_id(i)``,
    so the ``entity_rows`` of ``kb.lookup_aliases`` index them directly.
    """

    def __init__(self, path: PathLike):
        path = Path(path)
        file_path = path / METADATA_FILE if path.is_dir() else path
        if not file_path.exists():
            raise FileNotFoundError(
                f"No GeoNames metadata at {file_path}: build the KB with "
                "`entity-linker kb build --geonames`."
            )
        try:
            with numpy.load(file_path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
        except (OSError, ValueError) as err:
            raise KBFormatError(
                f"{file_path} is not a readable GeoNames metadata file: {err}"
            ) from None
        self.path = file_path
        self.geonameid: numpy.ndarray = arrays["geonameid"]
        self.kind: numpy.ndarray = arrays["kind"]
        self.latitude: numpy.ndarray = arrays["latitude"]
        self.longitude: numpy.ndarray = arrays["longitude"]
        self.population: numpy.ndarray = arrays["population"]
        self.country_code: numpy.ndarray = arrays["country_code"]
        self.admin1_code: numpy.ndarray = arrays["admin1_code"]
        self.approximate_coordinates: numpy.ndarray = arrays["approximate_coordinates"]
        self._name_offsets = arrays["name_offsets"]
        self._names = arrays["names"].tobytes()
        self._countries = dict(zip(arrays["country_codes"].tolist(),
                                   arrays["country_names"].tolist()))
        self._states = dict(zip(arrays["state_codes"].tolist(), arrays["state_names"].tolist()))
        self._order: Optional[numpy.ndarray] = None
        n = len(self.geonameid)
        for name in ("kind", "latitude", "longitude", "population", "country_code",
                     "admin1_code", "approximate_coordinates"):
            if len(arrays[name]) != n:
                raise KBFormatError(f"{file_path}: array {name} has {len(arrays[name])} rows, "
                                    f"geonameid has {n}.")
        if len(self._name_offsets) != n + 1 or int(self._name_offsets[-1]) != len(self._names):
            raise KBFormatError(f"{file_path}: the name table does not match the rows.")

    def __len__(self) -> int:
        return len(self.geonameid)

    def name(self, row: int) -> str:
        """The GeoNames name of the entity at a row."""
        start, end = int(self._name_offsets[row]), int(self._name_offsets[row + 1])
        return self._names[start:end].decode("utf8")

    def country_name(self, code: str) -> str:
        """The name of a country from its ISO 3166 alpha-2 code ("" if unknown)."""
        return self._countries.get(code, "")

    def row(self, row: int) -> GeoNamesRecord:
        """Everything known about the entity at a KB row."""
        if not 0 <= row < len(self):
            raise IndexError(f"Row {row} is out of range (0..{len(self) - 1}).")
        country_code = self.country_code[row].decode("ascii")
        admin1_code = self.admin1_code[row].decode("ascii")
        admin1 = self._states.get(f"{country_code}.{admin1_code}", "")
        return GeoNamesRecord(
            id=str(int(self.geonameid[row])),
            name=self.name(row),
            kind=KINDS[int(self.kind[row])],
            latitude=float(self.latitude[row]),
            longitude=float(self.longitude[row]),
            country_code=country_code,
            country=self.country_name(country_code),
            admin1_code=admin1_code,
            admin1=admin1,
            population=int(self.population[row]),
            approximate_coordinates=bool(self.approximate_coordinates[row]),
        )

    def rows(self, entity_ids: Sequence[Union[str, int]]) -> numpy.ndarray:
        """KB rows of GeoNames ids (strings or ints); -1 where unknown."""
        if self._order is None:
            self._order = numpy.argsort(self.geonameid, kind="stable")
        keys = numpy.asarray([int(e) if str(e).isdigit() else -1 for e in entity_ids],
                             dtype=numpy.int64)
        sorted_ids = self.geonameid[self._order]
        found = numpy.searchsorted(sorted_ids, keys).clip(0, max(len(sorted_ids) - 1, 0))
        rows = self._order[found] if len(sorted_ids) else numpy.zeros(len(keys), numpy.int64)
        hit = len(sorted_ids) > 0 and (sorted_ids[found] == keys)
        return numpy.where(hit, rows, -1).astype(numpy.int64)

    def get(self, entity_id: Union[str, int], default: Any = None) -> Optional[GeoNamesRecord]:
        """The record of a GeoNames id (e.g. "2988507"), or ``default``."""
        row = int(self.rows([entity_id])[0])
        return self.row(row) if row >= 0 else default



def check_geonames_metadata(path: PathLike, kb: Optional[InMemoryLookupKB] = None) -> int:
    """Check a GeoNames KB folder's sidecar against its kb.bin; return the row count.

    Raises KBFormatError when the sidecar is unreadable or does not describe
    the KB's entities row by row.
    """
    path = Path(path)
    meta = GeoNamesMetadata(path)
    if kb is None:
        from spacy.vocab import Vocab

        kb = InMemoryLookupKB(Vocab(), 0).from_disk(path)
    if len(meta) != kb.get_size_entities():
        raise KBFormatError(
            f"{meta.path} describes {len(meta):,} entities, the KB has "
            f"{kb.get_size_entities():,}: rebuild the KB."
        )
    ids = numpy.asarray(kb.get_entity_strings(), dtype=object)
    if len(ids) and not numpy.array_equal(ids, meta.geonameid.astype(str).astype(object)):
        raise KBFormatError(f"{meta.path}: its rows do not match the KB's entity ids.")
    return len(meta)


# ------------------------------------------------------------------ building


def write_metadata(path: Path, builder, country_names: Dict[str, str],
                    state_names: Dict[str, str]) -> None:
    encoded = [name.encode("utf8") for name in builder.names]
    offsets = numpy.zeros(len(encoded) + 1, dtype=numpy.int64)
    numpy.cumsum([len(b) for b in encoded], out=offsets[1:])
    with open(path, "wb") as file:
        numpy.savez(
            file,
            geonameid=numpy.asarray(builder.ids, dtype=numpy.int64),
            kind=numpy.asarray(builder.kinds, dtype=numpy.uint8),
            latitude=numpy.asarray(builder.latitudes, dtype=numpy.float64),
            longitude=numpy.asarray(builder.longitudes, dtype=numpy.float64),
            population=numpy.asarray(builder.populations, dtype=numpy.int64),
            country_code=numpy.asarray(builder.country_codes, dtype="S2"),
            admin1_code=numpy.asarray(
                [c.encode("ascii", "replace") for c in builder.admin1_codes], dtype=bytes
            ),
            approximate_coordinates=numpy.asarray(builder.approximate, dtype=bool),
            name_offsets=offsets,
            names=numpy.frombuffer(b"".join(encoded), dtype=numpy.uint8),
            country_codes=numpy.asarray(sorted(country_names), dtype="U2"),
            country_names=numpy.asarray([country_names[c] for c in sorted(country_names)]),
            state_codes=numpy.asarray(sorted(state_names), dtype=str),
            state_names=numpy.asarray([state_names[c] for c in sorted(state_names)]),
        )
