"""entity_linker.registry: every registered function is found by spaCy (also
through the package's entry points, without importing entity_linker) and
builds what its name says."""

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from spacy.util import registry
from spacy.vocab import Vocab

import entity_linker.registry  # noqa: F401  (registers the functions)
from entity_linker import InMemoryLookupKB
from entity_linker.candidates import (
    CascadeCandidates,
    ExactCandidates,
    FuzzyCandidates,
    NormalizedCandidates,
)
from entity_linker.errors import KBNotFoundError

PYPROJECT = Path(__file__).parent.parent / "pyproject.toml"


def _ours(table) -> set:
    return {name for name in table.get_all() if name.startswith("entity_linker.")}


@pytest.mark.skipif(not PYPROJECT.exists(), reason="needs the repository's pyproject.toml")
def test_every_registered_function_has_an_entry_point():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    points = tomllib.loads(PYPROJECT.read_text())["project"]["entry-points"]
    assert _ours(registry.misc) == set(points["spacy_misc"])
    assert _ours(registry.architectures) == set(points["spacy_architectures"])


def test_spacy_finds_them_without_importing_entity_linker():
    code = ("import sys; from spacy.util import registry; "
            "registry.misc.get('entity_linker.KBFromFile.v1'); "
            "registry.architectures.get('entity_linker.EntityLinker.v2'); "
            "import spacy; spacy.blank('en').add_pipe('nel'); "
            "print('entity_linker.registry' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300, cwd=tempfile.gettempdir())
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "True"  # loaded through the entry point


@pytest.mark.parametrize("name, settings, kind", [
    ("entity_linker.ExactCandidates.v1", {}, ExactCandidates),
    ("entity_linker.NormalizedCandidates.v1", {"max_candidates": 5}, NormalizedCandidates),
    ("entity_linker.FuzzyCandidates.v1", {"min_score": 0.8}, FuzzyCandidates),
    ("entity_linker.CascadeCandidates.v1", {"k": 10}, CascadeCandidates),
])
def test_generators_are_built_with_their_settings(name, settings, kind):
    generator = registry.misc.get(name)(**settings)
    assert isinstance(generator, kind)
    for key, value in settings.items():
        assert getattr(generator, key) == value


def test_kb_functions(tmp_path):
    vocab = Vocab()
    assert registry.misc.get("entity_linker.EmptyKB.v1")(7)(vocab).entity_vector_length == 7
    empty = registry.misc.get("entity_linker.EmptyKB.v2")()(vocab, 5)
    assert isinstance(empty, InMemoryLookupKB) and empty.is_empty()
    kb = InMemoryLookupKB(vocab, 1)
    kb.add_entity("Q1", 2.0, [1.0])
    kb.add_alias("one", ["Q1"], [1.0])
    kb.to_disk(tmp_path / "kb")
    loader = registry.misc.get("entity_linker.KBFromFile.v1")
    loaded = loader(tmp_path / "kb", verify=True)(vocab)
    assert loaded.is_read_only and [c.entity_ for c in loaded.get_alias_candidates("one")] \
        == ["Q1"]
    with pytest.raises(KBNotFoundError):
        loader(tmp_path / "missing")(vocab)
