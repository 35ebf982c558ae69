"""Fixtures for corpus-scale linking: a small saved pipeline, a corpus, a Dask cluster.

The pipeline is sentencizer + entity_ruler (the aliases below as patterns) +
nel with a small untrained encoder and a KB saved with it (nel/kb/kb.bin, so
it is memory-mapped on load). Untrained weights are fixed by the seed, so
every process that loads the folder computes the same scores.

Test modules are imported with --import-mode=importlib: helpers are fixtures.
"""

import copy
import json
import random
import shutil

import pytest
import spacy
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import fix_random_seed

from entity_linker import InMemoryLookupKB

ENTITIES = {
    "QF": (100.0, (1.0, 0.0, 0.0)), "QT": (10.0, (0.0, 1.0, 0.0)),
    "QL": (90.0, (0.0, 0.0, 1.0)), "QO": (5.0, (1.0, 1.0, 0.0)),
    "QB": (50.0, (0.0, 1.0, 1.0)), "QS": (20.0, (1.0, 0.0, 1.0)),
}
ALIASES = {
    "Paris": (("QF", 0.8), ("QT", 0.2)),
    "Texas": (("QT", 0.9),),
    "London": (("QL", 0.7), ("QO", 0.3)),
    "Berlin": (("QB", 1.0),),
    "Springfield": (("QS", 0.5), ("QO", 0.4)),
}
# Recognised by the ruler but not in the KB: linked to NIL.
UNKNOWN_PLACES = ("Atlantis", "Eldorado")
FILLER = ("the", "mayor", "of", "visited", "and", "near", "river", "in", "France",
          "said", "people", "from", "went", "to", "today")
SMALL_MODEL = {
    "@architectures": "entity_linker.EntityLinker.v1",
    "tok2vec": {
        "@architectures": "spacy.HashEmbedCNN.v2", "pretrained_vectors": None, "width": 32,
        "depth": 1, "embed_size": 500, "window_size": 1, "maxout_pieces": 2,
        "subword_features": True,
    },
}


def _kb_loader(vocab):
    kb = InMemoryLookupKB(vocab, entity_vector_length=3)
    for entity, (freq, vector) in ENTITIES.items():
        kb.add_entity(entity, freq, list(vector))
    for alias, candidates in ALIASES.items():
        kb.add_alias(alias, [e for e, _ in candidates], [p for _, p in candidates])
    return kb


def build_pipeline(extra_pipes=()):
    """The test pipeline in memory; extra_pipes: (factory, config) added after nel."""
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    ruler = nlp.add_pipe("entity_ruler")
    nel = nlp.add_pipe("nel", config={"model": copy.deepcopy(SMALL_MODEL)})
    nel.set_kb(_kb_loader)
    fix_random_seed(0)
    predicted = nlp.make_doc("Paris is in Texas .")
    reference = Doc(nlp.vocab, words=[t.text for t in predicted])
    reference.ents = [Span(reference, 0, 1, label="GPE", kb_id="QT")]
    nlp.initialize(lambda: [Example(predicted, reference)])
    # After initialize: the ruler's initialize() clears its patterns.
    ruler.add_patterns([{"label": "GPE", "pattern": place}
                        for place in list(ALIASES) + list(UNKNOWN_PLACES)])
    for factory, config in extra_pipes:
        nlp.add_pipe(factory, config=config)
    return nlp


@pytest.fixture(scope="session")
def pipeline_dir(tmp_path_factory):
    """A saved nel pipeline whose KB is saved with it (do not modify; copy it)."""
    path = tmp_path_factory.mktemp("corpus_pipeline") / "pipeline"
    build_pipeline().to_disk(path)
    assert (path / "nel" / "kb" / "kb.bin").is_file()
    return path


@pytest.fixture
def copy_pipeline(pipeline_dir, tmp_path):
    """copy_pipeline(name) -> a private copy of the saved pipeline (e.g. to break it)."""

    def copy_to(name="pipeline_copy"):
        target = tmp_path / name
        shutil.copytree(pipeline_dir, target)
        return target

    return copy_to


def make_text(rng: random.Random) -> str:
    words = [rng.choice(FILLER) for _ in range(rng.randint(3, 12))]
    places = list(ALIASES) + list(UNKNOWN_PLACES)
    for _ in range(rng.randint(0, 3)):
        words.insert(rng.randint(0, len(words)), rng.choice(places))
    return " ".join(words) + " ."


@pytest.fixture
def write_corpus(tmp_path):
    """write_corpus(seed=0, special=None) -> the input files of a small corpus.

    a.txt: 60 lines (one blank); sub/a.txt: 25 lines (its stem clashes with
    a.txt); b.jsonl: 40 records with "id" and "source". special: a text put in
    the middle of b.jsonl (e.g. a trigger for a test component).
    """

    def write(seed=0, special=None):
        rng = random.Random(seed)
        root = tmp_path / f"corpus{seed}"
        (root / "sub").mkdir(parents=True)
        lines = [make_text(rng) for _ in range(60)]
        lines[17] = ""
        (root / "a.txt").write_text("\n".join(lines) + "\n", encoding="utf8")
        (root / "sub" / "a.txt").write_text(
            "\n".join(make_text(rng) for _ in range(25)), encoding="utf8")  # no final newline
        records = [{"id": f"b{i}", "text": make_text(rng), "source": "test"} for i in range(40)]
        if special is not None:
            records[20]["text"] = special
        (root / "b.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in records), encoding="utf8")
        return [root / "a.txt", root / "sub" / "a.txt", root / "b.jsonl"]

    return write


def read_outputs(folder):
    """{file name: list of parsed lines} of the JSONL files in an output folder."""
    return {
        path.name: [json.loads(line) for line in path.read_text(encoding="utf8").splitlines()]
        for path in sorted(folder.glob("*.jsonl"))
    }


@pytest.fixture
def outputs():
    """outputs(folder) -> {file name: parsed lines} of the output files."""
    return read_outputs


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of 2 worker processes (1 thread each), shared by a test module."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as local_cluster:
        yield local_cluster


@pytest.fixture(scope="module")
def client(cluster):
    from distributed import Client

    with Client(cluster) as dask_client:
        dask_client.wait_for_workers(2, timeout=60)
        yield dask_client


@pytest.fixture
def corpus_texts():
    """corpus_texts(n, seed=0) -> n short texts with known, unknown and no places."""

    def texts(n, seed=0):
        rng = random.Random(seed)
        return [make_text(rng) for _ in range(n)]

    return texts


@pytest.fixture
def link_outputs():
    """link_outputs(docs) -> what the linker wrote, as comparable plain data.

    Candidates are compared as tuples: docs sent back from nlp.pipe's child
    processes went through msgpack, which turns tuples into lists.
    """

    def outputs(docs):
        return [[(e.start_char, e.end_char, e.label_, e.kb_id_, e._.kb_score,
                  [tuple(c) for c in e._.kb_candidates or ()]) for e in doc.ents]
                for doc in docs]

    return outputs
