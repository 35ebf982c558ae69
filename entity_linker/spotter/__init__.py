"""The ``kb_spotter`` pipeline component: find KB aliases in raw text.

A dictionary NER: every token n-gram of up to ``max_words`` tokens is looked
up among the KB's aliases (normalised, or exact) in one batched call per
batch of docs, and the matches become entities (or a span group) for the
``nel`` component to link, so a pipeline can link without a trained NER:

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("kb_spotter", config={"min_freq": 1000})
    nel = nlp.add_pipe("nel")   # the spotter shares nel's KB
    ...

The n-grams are enumerated with numpy per doc; the filters that need only
token attributes (length, case, stop words) run before any string is built,
so most n-grams of ordinary text never reach the KB.

The package's modules: ``component`` (the factory and ``KBSpotter``),
``ngrams`` (n-gram enumeration, match resolution), ``lookup`` (the KB
lookups of the n-grams) and ``scorer`` (span P/R/F). Import the public names
from here.
"""

from .component import KBSpotter, make_kb_spotter
from .scorer import make_spotter_scorer, spotter_score

__all__ = ["KBSpotter", "make_kb_spotter", "make_spotter_scorer", "spotter_score"]
