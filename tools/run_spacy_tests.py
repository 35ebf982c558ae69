#!/usr/bin/env python
"""Run spaCy's own KB and entity-linker tests against entity_linker (drop-in check).

Copies spaCy's spacy/tests/pipeline/test_entity_linker.py and
spacy/tests/serialize/test_serialize_kb.py from the installed spaCy into a
temporary folder, with ``spacy.kb``'s InMemoryLookupKB, KnowledgeBase,
Candidate and get_candidates replaced by entity_linker's, spaCy's
EntityLinker class and ``spacy.ml.load_kb`` (KBFromFile) by ours, and every
``entity_linker`` component by a ``nel`` named "entity_linker", then runs
pytest on them:

    python -m tools.run_spacy_tests [-- extra pytest arguments]

Two cases fail by design (README, "The knowledge base"): test_kb_serialize_vocab
and test_kb_serialization expect a loaded KB's strings in the vocab, which
``from_disk`` does not copy (O(1) loading); pass ``add_to_vocab=True`` for that.
The exit code is pytest's, so a failing case makes the run fail; the two
expected ones are deselected unless ``--with-expected`` is given.
"""

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import spacy

FILES = ("pipeline/test_entity_linker.py", "serialize/test_serialize_kb.py")
EXPECTED_FAILURES = ("test_kb_serialize_vocab", "test_kb_serialization")


def rewrite(source: str) -> str:
    """spaCy's test module, pointed at entity_linker."""
    replacements = {
        "from spacy.kb import Candidate, InMemoryLookupKB, KnowledgeBase, get_candidates":
            "from entity_linker import Candidate, InMemoryLookupKB, KnowledgeBase, "
            "get_candidates",
        "from spacy.kb.kb_in_memory import InMemoryLookupKB":
            "from entity_linker import InMemoryLookupKB",
        "from spacy.pipeline import EntityLinker\n": "from entity_linker import EntityLinker\n",
        "from ..util import make_tempdir": "from spacy.tests.util import make_tempdir",
        "from spacy.ml import load_kb": "from entity_linker.registry import load_kb",
        'factory = "entity_linker"': 'factory = "nel"',
    }
    for old, new in replacements.items():
        source = source.replace(old, new)
    # The component with spaCy's current architecture is ours; the legacy v1
    # architecture makes spaCy build its legacy component, which stays spaCy's.
    source = source.replace('("entity_linker", {"@architectures": "spacy.EntityLinker.v2"',
                            '("nel", {"@architectures": "spacy.EntityLinker.v2"')
    source = re.sub(r'add_pipe\(\s*"entity_linker",\s*"entity_linker"',
                    'add_pipe("nel", "entity_linker"', source)
    return re.sub(r'add_pipe\(\s*"entity_linker"', 'add_pipe("nel", name="entity_linker"',
                  source)


def main() -> int:
    args = sys.argv[1:]
    with_expected = "--with-expected" in args
    args = [a for a in args if a not in ("--with-expected", "--")]
    tests = Path(spacy.__file__).parent / "tests"
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for name in FILES:
            path = Path(folder) / name.replace("/", "_")
            path.write_text(rewrite((tests / name).read_text(encoding="utf8")),
                            encoding="utf8")
            paths.append(str(path))
        # spaCy's fixtures (en_vocab ...) and options.
        (Path(folder) / "conftest.py").write_text('pytest_plugins = ["spacy.tests.conftest"]\n')
        deselect = [] if with_expected else ["-k", " and ".join(
            f"not {name}" for name in EXPECTED_FAILURES)]
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                   "--rootdir", folder, *deselect, *args, *paths]
        return subprocess.call(command, cwd=folder)


if __name__ == "__main__":
    sys.exit(main())
