"""spaCy's own KB and entity-linker tests, run against entity_linker (drop-in check).

tools/run_spacy_tests.py rewrites spaCy's tests to use our KB, Candidate,
EntityLinker and KBFromFile; all must pass but the two cases that expect a
loaded KB's strings in the vocab (README, "The knowledge base").
"""

import subprocess
import sys
from pathlib import Path

import pytest

# Run by path (not `-m tools.run_spacy_tests` from the root), so that the installed,
# compiled entity_linker is imported rather than the source tree.
SCRIPT = Path(__file__).parent.parent / "tools" / "run_spacy_tests.py"


@pytest.mark.skipif(not SCRIPT.exists(), reason="needs the repository's tools/ folder")
def test_spacy_kb_and_entity_linker_tests_pass_against_entity_linker():
    result = subprocess.run([sys.executable, str(SCRIPT), "-p", "no:randomly"],
                            capture_output=True, text=True, timeout=900)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary and "error" not in summary


@pytest.mark.skipif(not SCRIPT.exists(), reason="needs the repository's tools/ folder")
def test_only_the_two_deliberate_vocab_cases_fail():
    result = subprocess.run([sys.executable, str(SCRIPT), "--with-expected",
                             "-p", "no:randomly", "-rf"],
                            capture_output=True, text=True, timeout=900)
    failed = sorted(line.split("::")[1].split(" ")[0] for line in result.stdout.splitlines()
                    if line.startswith("FAILED"))
    assert failed == ["test_kb_serialization", "test_kb_serialize_vocab"], result.stdout[-3000:]
