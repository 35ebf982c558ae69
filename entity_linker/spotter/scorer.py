"""The spotter's default scorer: unlabelled span P/R/F of ``doc.ents``."""

from typing import Any, Callable, Dict, Iterable

from spacy.scorer import Scorer
from spacy.training import Example
from spacy.util import registry


@registry.scorers("entity_linker.spotter_scorer.v1")
def make_spotter_scorer() -> Callable[..., Dict[str, Any]]:
    """Span P/R/F of ``doc.ents``, ignoring labels, as ``spotter_p/r/f``."""
    return spotter_score


def spotter_score(examples: Iterable[Example], **kwargs) -> Dict[str, Any]:
    """Unlabelled span P/R/F of the predicted entities against the gold ones."""
    scores = Scorer.score_spans(examples, "ents", labeled=False, **kwargs)
    return {f"spotter_{key[len('ents_'):]}": value for key, value in scores.items()
            if key in ("ents_p", "ents_r", "ents_f")}
