"""How a candidate is scored, and the losses that train the scores.

Every formula of the linker lives here; ``CandidateTable`` only holds data.

    encodings ─ cosine ─▶ sims ─┐
    priors, freqs ──────────────┼─▶ CandidateScorer.logits ─▶ scores (predict)
    coherence ──────────────────┘                         └─▶ candidate_loss (update)

Three ``scoring`` settings define a candidate's score:

* ``"spacy"``: spaCy's ``prior + sim - prior * sim`` (the drop-in default);
* ``"softmax"``: a softmax over each mention's candidates of
  ``LOGIT_SCALE * sim + log(prior) + coherence_weight * coherence
  + containment_weight * containment``;
* ``"learned"``: a softmax of ``w · features + b``, where the ranker (a Thinc
  Linear layer over ``FEATURES``) learns w and b with the encoder. It starts
  as ``"softmax"`` plus the name features (``NAME_WEIGHTS``), which read the
  KB's entity names (0 for a KB without names).

The candidate loss is the cross-entropy of the gold entity among its
mention's candidates under the same logits that prediction ranks by.

The package's modules: ``similarity`` (cosine, the cosine loss),
``evidence`` (coherence, coreference, name evidence, containment, sibling),
``segments`` (softmax and max within each mention's candidates), ``ranker``
(the learned ranker's features and weights) and ``scorer``
(``CandidateScorer``). Import the public names from here.
"""

from .evidence import (
    DOC_CONTAINMENT,
    NAME_STOPWORDS,
    RELATION_PRIOR_POWER,
    STEM,
    coherence,
    containment,
    coreference,
    name_evidence,
    name_words,
    regional_ancestors,
    sibling,
)
from .ranker import (
    COREFERENCE_WEIGHT,
    FEATURES,
    LOGIT_SCALE,
    NAME_FEATURES,
    NAME_WEIGHTS,
    RANKER_GAIN,
    build_ranker,
    feature_matrix,
    load_ranker,
    reset_ranker,
)
from .scorer import SCORINGS, CandidateScorer, spacy_scores
from .segments import segment_max, segment_min, segment_softmax, segment_sum
from .similarity import blend_similarity, cosine, cosine_loss, cosine_with_grads

__all__ = [
    "COREFERENCE_WEIGHT", "DOC_CONTAINMENT", "FEATURES", "LOGIT_SCALE", "NAME_FEATURES",
    "NAME_STOPWORDS", "NAME_WEIGHTS", "RANKER_GAIN", "RELATION_PRIOR_POWER", "SCORINGS", "STEM",
    "CandidateScorer", "blend_similarity", "build_ranker", "coherence", "containment",
    "coreference", "cosine", "cosine_loss", "cosine_with_grads", "feature_matrix",
    "load_ranker", "name_evidence", "name_words", "regional_ancestors",
    "reset_ranker", "segment_max", "segment_min", "segment_softmax", "segment_sum", "sibling",
    "spacy_scores",
]
