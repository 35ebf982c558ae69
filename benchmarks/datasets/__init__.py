"""Loaders of the external corpora the benchmarks use (data stays outside the repo).

* ``benchmarks.datasets.aida``: the AIDA-CoNLL development half as KB arrays and Examples;
* ``benchmarks.datasets.geo``: the LGL and TR-News toponym corpora as spaCy docs.
"""
