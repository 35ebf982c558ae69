"""Developer tools (not part of the installed package): the KB-format fuzzer and
spaCy's own tests run against entity_linker. Run from the repository root, e.g.
``python -m tools.fuzz_kb_format --seconds 60``.
"""
