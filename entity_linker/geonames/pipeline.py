"""The embedded geographic pipeline: raw text in, places linked to GeoNames out."""

from pathlib import Path
from typing import Iterable

from spacy.language import Language


def geo_pipeline_path() -> Path:
    """The folder of the embedded geographic pipeline shipped in the package
    (the default of ``entity-linker link``, ``serve`` and ``link-corpus``)."""
    return Path(__file__).parent.parent / "data" / "geo_pipeline"


def load_geo_pipeline(*, exclude: Iterable[str] = (), disable: Iterable[str] = ()
                      ) -> Language:
    """Load the embedded geographic pipeline: a sentencizer, a toponym NER, a
    ``kb_spotter`` and ``nel`` over the GeoNames KB (built on first use and
    cached, see ``ensure_geonames_kb``). Each place gets its GeoNames id as
    ``Span.kb_id_`` and its score as ``span._.kb_score``.

    exclude, disable: as ``spacy.load``'s (component names).
    RETURNS (Language): The pipeline.
    """
    import spacy

    import entity_linker  # noqa: F401  (registers the factories and functions)

    # Its tokenizer is spaCy's English default, which the language builds anyway:
    # reading it again from disk doubles the cost of its ~2,700 special cases
    # (about 0.3 s of every cold start).
    return spacy.load(geo_pipeline_path(), exclude=["tokenizer", *exclude],
                      disable=list(disable))
