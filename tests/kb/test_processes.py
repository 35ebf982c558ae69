"""A KB file mapped by several processes, and mapped KBs pickled into child processes."""

import multiprocessing
import pickle
import sys
from pathlib import Path

import pytest

from entity_linker import InMemoryLookupKB

ALIASES = ["alias_paris", "alias_texas", "alias_three", "alias_unknown"]
ENTITIES = ["Q1", "Q2", "Q3", "Q4", "Q_unknown"]


def describe(kb):
    """What a process sees in a KB: candidates, priors, vectors, strings, mapping state."""
    return {
        "candidates": {
            alias: [
                (c.entity_, c.alias_, float(c.prior_prob), float(c.entity_freq),
                 [float(x) for x in c.entity_vector])
                for c in kb.get_alias_candidates(alias)
            ]
            for alias in ALIASES
        },
        "priors": {(e, a): kb.get_prior_prob(e, a) for e in ENTITIES for a in ALIASES},
        "vectors": {e: [float(x) for x in kb.get_vector(e)] for e in ENTITIES},
        "entities": sorted(kb.get_entity_strings()),
        "aliases": sorted(kb.get_alias_strings()),
        "lookup": [array.tolist() for array in kb.lookup_aliases(ALIASES)],
        "read_only": kb.is_read_only,
        "path": str(kb.path) if kb.path is not None else None,
    }


def open_from_disk_worker(path):
    """Child process: map the KB file itself and report what it sees."""
    from spacy.vocab import Vocab

    import entity_linker

    kb = InMemoryLookupKB(Vocab(), 1).from_disk(path)
    return describe(kb), entity_linker.__file__


def unpickle_worker(payload):
    """Child process: unpickle a KB and report what it sees."""
    kb = pickle.loads(payload)
    return describe(kb)


@pytest.fixture(scope="module")
def spawn_pool():
    # The children import this module by name: make its directory importable there too.
    here = str(Path(__file__).parent)
    added = here not in sys.path
    if added:
        sys.path.insert(0, here)
    context = multiprocessing.get_context("spawn")
    pool = context.Pool(3)
    try:
        yield pool
    finally:
        pool.close()
        pool.join()
        if added:
            sys.path.remove(here)


@pytest.fixture
def importable_worker_module(monkeypatch):
    """Register this module under its plain file name, which the spawned children import."""
    module = sys.modules[__name__]
    monkeypatch.setitem(sys.modules, "test_processes", module)
    for worker in (open_from_disk_worker, unpickle_worker):
        monkeypatch.setattr(worker, "__module__", "test_processes")
    return module


def test_three_processes_map_the_same_file_and_see_the_parents_candidates(
    spawn_pool, importable_worker_module, mapped_kb, small_kb_dir
):
    expected = describe(mapped_kb)
    assert expected["candidates"]["alias_paris"]  # the KB is not trivially empty
    results = spawn_pool.map(open_from_disk_worker, [str(small_kb_dir)] * 3, chunksize=1)
    assert len(results) == 3
    for seen, package_file in results:
        assert seen == expected
        assert Path(package_file).resolve().parent == Path(
            sys.modules["entity_linker"].__file__).resolve().parent


def test_mapped_kb_pickled_into_child_process_maps_the_file_again(
    spawn_pool, importable_worker_module, mapped_kb, small_kb_dir
):
    payload = pickle.dumps(mapped_kb)
    [seen] = spawn_pool.map(unpickle_worker, [payload])
    assert seen == describe(mapped_kb)
    assert seen["read_only"] is True
    assert seen["path"] is not None
    assert Path(seen["path"]).resolve() == (small_kb_dir / "kb.bin").resolve()


def test_in_memory_kb_pickled_into_child_process_arrives_writable_with_same_content(
    spawn_pool, importable_worker_module, small_kb
):
    small_kb.append_alias("alias_texas", "Q4", 0.25)
    [seen] = spawn_pool.map(unpickle_worker, [pickle.dumps(small_kb)])
    expected = describe(small_kb)
    assert seen == expected
    assert seen["read_only"] is False and seen["path"] is None
