"""Shared fixtures for the entity_linker test suite.

The KB builders are fixtures that return functions, so test modules (imported
with --import-mode=importlib) do not have to import this file.
"""

import warnings

import numpy
import pytest
import spacy
from spacy.vocab import Vocab

from entity_linker import InMemoryLookupKB

# A small KB used all over the KB tests:
#   entity    freq  vector
#   Q1        10    [1, 0, 0]
#   Q2         5    [0, 1, 0]
#   Q3         2    [0, 0, 1]
#   Q4         1    [1, 1, 1]   (no alias refers to it)
SMALL_ENTITIES = (
    ("Q1", 10.0, (1.0, 0.0, 0.0)),
    ("Q2", 5.0, (0.0, 1.0, 0.0)),
    ("Q3", 2.0, (0.0, 0.0, 1.0)),
    ("Q4", 1.0, (1.0, 1.0, 1.0)),
)
SMALL_ALIASES = (
    ("alias_paris", ("Q1", "Q2"), (0.75, 0.25)),
    ("alias_texas", ("Q2",), (0.5,)),
    ("alias_three", ("Q1", "Q2", "Q3"), (0.125, 0.25, 0.5)),
)


@pytest.fixture(scope="session")
def nlp():
    """A blank English pipeline (its vocab is shared by the KBs under test)."""
    return spacy.blank("en")


@pytest.fixture
def fresh_vocab():
    """A new, empty Vocab (cheap; for checks of what gets added to vocab.strings)."""
    return Vocab()


@pytest.fixture
def small_records():
    """(entities, aliases) of small_kb as records: (id, freq, vector), (alias, ids, priors)."""
    return SMALL_ENTITIES, SMALL_ALIASES


@pytest.fixture
def vocab(nlp):
    return nlp.vocab


@pytest.fixture
def small_kb(vocab):
    """A fresh, writable KB with SMALL_ENTITIES and SMALL_ALIASES (vector length 3)."""
    kb = InMemoryLookupKB(vocab, entity_vector_length=3)
    for entity, freq, vector in SMALL_ENTITIES:
        kb.add_entity(entity, freq, list(vector))
    for alias, entities, priors in SMALL_ALIASES:
        kb.add_alias(alias, list(entities), list(priors))
    return kb


@pytest.fixture
def small_kb_dir(small_kb, tmp_path):
    """A directory holding small_kb written with to_disk."""
    path = tmp_path / "small_kb"
    small_kb.to_disk(path)
    return path


@pytest.fixture
def mapped_kb(vocab, small_kb_dir):
    """small_kb, memory-mapped back from disk (read-only)."""
    return InMemoryLookupKB(vocab, entity_vector_length=3).from_disk(small_kb_dir)


@pytest.fixture
def build_kb(vocab):
    """build_kb(entities, aliases, vector_length) -> a KB built with add_entity/add_alias.

    entities: iterable of (id, freq, vector); aliases: iterable of (alias, ids, priors).
    """

    def build(entities, aliases=(), vector_length=3, kb_vocab=None):
        kb = InMemoryLookupKB(kb_vocab if kb_vocab is not None else vocab, vector_length)
        for entity, freq, vector in entities:
            kb.add_entity(entity, freq, list(vector))
        for alias, entities_of_alias, priors in aliases:
            kb.add_alias(alias, list(entities_of_alias), list(priors))
        return kb

    return build


def _snapshot(kb):
    """Everything the read API tells about a KB, as plain comparable Python data."""
    entity_ids = sorted(kb.get_entity_strings())
    alias_texts = sorted(kb.get_alias_strings())
    entities = {
        entity: [float(x) for x in numpy.asarray(kb.get_vector(entity)).tolist()]
        for entity in entity_ids
    }
    candidates = {
        alias: [
            (
                cand.entity_,
                cand.alias_,
                float(cand.prior_prob),
                float(cand.entity_freq),
                [float(x) for x in numpy.asarray(cand.entity_vector).tolist()],
            )
            for cand in kb.get_alias_candidates(alias)
        ]
        for alias in alias_texts
    }
    return {
        "vector_length": kb.entity_vector_length,
        "n_entities": kb.get_size_entities(),
        "n_aliases": kb.get_size_aliases(),
        "entities": entities,
        "candidates": candidates,
    }


@pytest.fixture
def snapshot():
    """snapshot(kb) -> a dict of everything the read API returns (for equality checks)."""
    return _snapshot


@pytest.fixture
def no_warnings():
    """A context manager that fails the test if any warning is emitted inside it."""

    class _NoWarnings:
        def __enter__(self):
            self._catcher = warnings.catch_warnings(record=True)
            self.caught = self._catcher.__enter__()
            warnings.simplefilter("always")
            return self

        def __exit__(self, *exc_info):
            self._catcher.__exit__(*exc_info)
            if exc_info[0] is not None:
                return False
            messages = [str(w.message) for w in self.caught]
            assert not messages, f"unexpected warnings: {messages}"
            return False

    return _NoWarnings


@pytest.fixture(scope="session")
def real_geonames(tmp_path_factory):
    """The real GeoNames KB, built once per test session into a temporary cache."""
    import time

    from entity_linker.geonames import load_geonames_kb, load_geonames_metadata

    cache = tmp_path_factory.mktemp("entity_linker_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ENTITY_LINKER_CACHE", str(cache))
        started = time.perf_counter()
        kb = load_geonames_kb()
        build_seconds = time.perf_counter() - started
        yield {"cache": cache, "kb": kb, "meta": load_geonames_metadata(),
               "build_seconds": build_seconds}
