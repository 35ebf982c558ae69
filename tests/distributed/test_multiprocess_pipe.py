"""nlp.pipe(n_process=k) with a memory-mapped KB: the children see the same file."""

import multiprocessing
import os
import pickle

import pytest
import spacy
from spacy.language import Language


@Language.factory("corpus_test_kb_probe")
def make_kb_probe(nlp, name):
    """Records in each doc which process linked it and which file its KB maps."""
    linker = nlp.get_pipe("nel")

    def probe(doc):
        doc.user_data["probe_pid"] = os.getpid()
        doc.user_data["probe_kb_path"] = str(linker.kb.path)
        doc.user_data["probe_kb_read_only"] = bool(linker.kb.is_read_only)
        return doc

    return probe


@pytest.fixture
def start_method():
    """start_method(name): use this multiprocessing start method for the test."""
    previous = multiprocessing.get_start_method(allow_none=True)

    def use(name):
        multiprocessing.set_start_method(name, force=True)

    yield use
    multiprocessing.set_start_method(previous, force=True)


def test_loaded_pipeline_maps_its_kb_read_only(pipeline_dir):
    kb = spacy.load(pipeline_dir).get_pipe("nel").kb
    assert kb.is_read_only
    assert kb.path.resolve() == (pipeline_dir / "nel" / "kb" / "kb.bin").resolve()


def test_kb_of_a_loaded_pipeline_pickles_as_its_path(pipeline_dir):
    kb = spacy.load(pipeline_dir).get_pipe("nel").kb
    payload = pickle.dumps(kb)
    assert str(kb.path).encode() in payload  # the path travels, then the child maps it
    copy = pickle.loads(payload)
    assert copy.path == kb.path and copy.is_read_only
    assert copy.get_alias_strings() == kb.get_alias_strings()
    assert [c.entity_ for c in copy.get_alias_candidates("Paris")] == ["QF", "QT"]


def test_pipe_with_two_processes_equals_one_and_children_map_the_kb(
    pipeline_dir, corpus_texts, link_outputs, start_method
):
    start_method("fork")
    nlp = spacy.load(pipeline_dir)
    nlp.add_pipe("corpus_test_kb_probe")
    texts = corpus_texts(120)
    one = list(nlp.pipe(texts, batch_size=8))
    two = list(nlp.pipe(texts, batch_size=8, n_process=2))
    assert [doc.text for doc in two] == texts
    assert link_outputs(two) == link_outputs(one)
    assert sum(len(doc.ents) for doc in one) > 50
    pids = {doc.user_data["probe_pid"] for doc in two}
    assert len(pids) == 2 and os.getpid() not in pids
    kb_file = str((pipeline_dir / "nel" / "kb" / "kb.bin").resolve())
    assert {doc.user_data["probe_kb_path"] for doc in two} == {kb_file}
    assert all(doc.user_data["probe_kb_read_only"] for doc in two)


def test_nel_pipeline_pickles_and_the_copy_maps_the_same_kb(pipeline_dir):
    nlp = spacy.load(pipeline_dir)
    copy = pickle.loads(pickle.dumps(nlp))
    assert copy.get_pipe("nel").kb.path == nlp.get_pipe("nel").kb.path
    assert copy.get_pipe("nel").kb.is_read_only


def test_pipe_with_two_spawned_processes_equals_one(
    pipeline_dir, corpus_texts, link_outputs, start_method
):
    start_method("spawn")
    nlp = spacy.load(pipeline_dir)
    texts = corpus_texts(40)
    one = list(nlp.pipe(texts, batch_size=8))
    two = list(nlp.pipe(texts, batch_size=8, n_process=2))
    assert link_outputs(two) == link_outputs(one)
