"""The GeoNames KB as a word feature for the toponym NER: a small static-vectors table.

Trained from scratch on a few hundred news articles, the NER sees only hashed
shape and affix features, so it misses frequent places its training data
lacks ("Georgia", "Israel", "Ohio"). This table tells it, for each
word, what the KB knows: whether the word alone names a country, a
first-level division, a county or a city (and how populous the largest one
is), where it sits in multi-word names ("New", "York"), and how ambiguous it
is. spaCy's ``StaticVectors`` (the NER's ``pretrained_vectors``) projects the
features into the tok2vec like any word vectors, and they are saved with the
pipeline's vocab, so no code is needed at run time.

Only names a reader of English news meets are kept, to hold the table to a
few MB: Latin-script aliases of countries, continents and first-level
divisions; the names of counties; the names of cities of at least
``min_population`` people and the Latin aliases of cities of at least
``alias_population``.
"""

import math
import re
from typing import Dict, List, Tuple

import numpy
import spacy
from spacy.language import Language
from spacy.strings import get_string_id
from spacy.vectors import Vectors

from entity_linker.geonames import load_geonames_kb, load_geonames_metadata
from entity_linker.geonames.metadata import CITY, CONTINENT, COUNTRY, COUNTY, STATE

# Columns of the feature table (one row per word, all its spellings share it).
FEATURES = (
    "country", "state", "county", "city",  # the word alone names one of these
    "log_population",  # of the largest place the word alone names
    "first", "inside", "last",  # position in a multi-word name
    "log_population_multi",  # of the largest multi-word name it is part of
    "ambiguity",  # how many places the word alone names (log scale)
    "known",  # the word is in the table
)
WIDTH = len(FEATURES)
_COLUMN = {name: i for i, name in enumerate(FEATURES)}
_KIND_COLUMN = {COUNTRY: "country", CONTINENT: "country", STATE: "state", COUNTY: "county",
                CITY: "city"}
_LATIN = re.compile(r"^[\x20-\x7e\u00c0-\u024f\u2019]+$")
_MAX_LOG_POPULATION = 9.0  # log10 of the largest populations (about 1e9)


def _log_population(population: int) -> float:
    return min(1.0, math.log10(1 + max(0, int(population))) / _MAX_LOG_POPULATION)


def gazetteer_names(min_population: int = 10000,
                    alias_population: int = 100000) -> List[Tuple[str, int, int]]:
    """The (name, kind, population) triples of the GeoNames KB the table is built from."""
    kb = load_geonames_kb()
    metadata = load_geonames_metadata()
    aliases = kb.get_alias_strings()
    offsets, rows, _ = kb.lookup_aliases(aliases)
    names: List[Tuple[str, int, int]] = []
    for i, alias in enumerate(aliases):
        if not _LATIN.match(alias):
            continue
        for row in rows[offsets[i] : offsets[i + 1]]:
            kind = int(metadata.kind[row])
            population = int(metadata.population[row])
            if kind in (COUNTRY, CONTINENT, STATE):
                keep = True
            elif kind == COUNTY:
                keep = alias == metadata.name(row)
            elif kind == CITY:
                # not airport codes ("THE") nor lowercase words
                keep = not (alias[0].islower() or (len(alias) <= 3 and alias.isupper())) and (
                    population >= alias_population or (
                    population >= min_population and alias == metadata.name(row)))
            else:
                keep = False
            if keep:
                names.append((alias, kind, population))
    return names


def gazetteer_table(nlp: Language, names: List[Tuple[str, int, int]]
                    ) -> Tuple[Dict[str, int], numpy.ndarray]:
    """The words of ``names`` (tokenized like ``nlp``'s, in a scratch vocab) and
    their features: a map from each spelling (as in the KB, capitalised, upper
    case) to a row of a table of distinct feature rows (populations in tenths
    of the log scale)."""
    features: Dict[str, numpy.ndarray] = {}
    counts: Dict[str, int] = {}
    spellings: Dict[str, set] = {}

    def row(token) -> numpy.ndarray:
        word = token.lower_
        if word not in features:
            features[word] = numpy.zeros((WIDTH,), dtype="float32")
            features[word][_COLUMN["known"]] = 1.0
            spellings[word] = {word[:1].upper() + word[1:], word.upper()}
        spellings[word].add(token.text)
        return features[word]

    texts = [name for name, _, _ in names]
    # A scratch pipeline: tokenizing would fill nlp's StringStore (saved with it).
    scratch = spacy.blank(nlp.lang)
    for doc, (_, kind, population) in zip(scratch.tokenizer.pipe(texts, batch_size=10000),
                                          names):
        tokens = [token for token in doc if not token.is_space]
        size = _log_population(population)
        if len(tokens) == 1:
            vector = row(tokens[0])
            vector[_COLUMN[_KIND_COLUMN[kind]]] = 1.0
            vector[_COLUMN["log_population"]] = max(vector[_COLUMN["log_population"]], size)
            counts[tokens[0].lower_] = counts.get(tokens[0].lower_, 0) + 1
            continue
        for position, token in enumerate(tokens):
            vector = row(token)
            place = ("first" if position == 0 else "last" if position == len(tokens) - 1
                     else "inside")
            vector[_COLUMN[place]] = 1.0
            column = _COLUMN["log_population_multi"]
            vector[column] = max(vector[column], size)
    for word, count in counts.items():
        features[word][_COLUMN["ambiguity"]] = min(1.0, math.log1p(count) / math.log(100))
    words = sorted(features)
    if not words:
        return {}, numpy.zeros((0, WIDTH), dtype="float32")
    table = numpy.round(numpy.stack([features[word] for word in words]) * 10) / 10
    distinct, rows = numpy.unique(table, axis=0, return_inverse=True)
    keys = {spelling: int(r) for word, r in zip(words, rows.ravel())
            for spelling in spellings[word]}
    return keys, distinct.astype("float32")


def add_gazetteer_vectors(nlp: Language, min_population: int = 10000,
                          alias_population: int = 100000) -> int:
    """Set ``nlp.vocab.vectors`` to the gazetteer table; returns its number of keys.

    Keys are spellings (spaCy's default ORTH keys: a ``Vectors`` keyed by LOWER
    loses that setting when saved and loaded, in spaCy 3.8) and hashes, not
    strings, so the words need not be in the pipeline's StringStore."""
    keys, data = gazetteer_table(nlp, gazetteer_names(min_population, alias_population))
    vectors = Vectors(data=data, name="geonames_gazetteer")
    for spelling, row in keys.items():
        vectors.add(get_string_id(spelling), row=row)
    nlp.vocab.vectors = vectors
    return len(keys)
