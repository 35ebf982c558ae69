"""Developer tools (not part of the installed package): spaCy's own tests run
against entity_linker (``run_spacy_tests``, run by tests/test_spacy_parity.py).
The KB-format fuzzer lives beside the tests: ``python tests/fuzz/fuzz_kb_format.py
--seconds 60``.
"""
