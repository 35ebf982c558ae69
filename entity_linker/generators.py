"""TEMPORARY path alias: the candidate generators live in entity_linker.candidates.

Only README.md's "Candidates beyond exact match" example (executed by
tests/test_readme.py) still imports ``entity_linker.generators``; README.md
is not edited in the change that moved the generators. Delete this module
in the same commit that changes that README line to
``from entity_linker.candidates import CascadeCandidates``.
"""

from .candidates import CascadeCandidates

__all__ = ["CascadeCandidates"]
