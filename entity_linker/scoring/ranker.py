"""The learned ranker of ``scoring = "learned"``: its input features
(``FEATURES``), its initial weights and its loading from older pipelines.

``reset_ranker`` reads ``LOGIT_SCALE``, ``COREFERENCE_WEIGHT``,
``NAME_WEIGHTS`` and ``RANKER_GAIN`` of this module when it is called.
"""

import numpy
import srsly
from thinc.api import Linear, Model

from .segments import segment_max

LOGIT_SCALE = 10.0
# The ranker's input columns, in order.
FEATURES = (
    "cosine",  # context encoding vs entity vector
    "log_prior",  # log p(entity | alias)
    "top_prior",  # 1 for the mention's highest-prior candidate(s)
    "log_freq",  # log(1 + freq) minus the mention's highest; <= 0
    "coherence",  # fit with the doc's other mentions
    "coreference",  # prior under a longer mention of the doc ("Chris Harris" for "Harris")
    "containment",  # a place that contains it (or that it contains) is named in the doc
    "name_context",  # share of the name's other words found in the doc ("rugby")
    "name_coherence",  # the doc's other mentions have candidates sharing a name word ("F.C.")
)
# The columns ``name_evidence`` returns, in FEATURES order.
NAME_FEATURES = ("name_context", "name_coherence")
# The ranker computes RANKER_GAIN * (x · w + b): Adam moves each weight by about
# the learning rate per step, so the gain lets the few ranker weights move as
# far in a few hundred steps as the combination needs.
RANKER_GAIN = 20.0
_EPS = 1e-6
# The coreference feature's initial weight in the ranker (learned from there).
COREFERENCE_WEIGHT = 0.0
# The name features' initial weights (NAME_FEATURES order; learned from there),
# chosen on the AIDA dev split (BENCHMARKS.md).
NAME_WEIGHTS = (1.0, 2.0)


def feature_matrix(offsets, priors, freqs, sims, coherence_values, incl_prior: bool,
                   incl_context: bool, coreference_values=None,
                   containment_values=None, name_values=None) -> numpy.ndarray:
    """The ranker's input: one row of ``FEATURES`` per candidate (float32).
    Columns of an excluded term (incl_prior / incl_context) are 0."""
    n = len(priors)
    features = numpy.zeros((n, len(FEATURES)), dtype=numpy.float32)
    if incl_context:
        features[:, 0] = sims
    if incl_prior:
        priors = numpy.asarray(priors, dtype=numpy.float64)
        features[:, 1] = numpy.log(priors + _EPS)
        features[:, 2] = priors >= segment_max(priors, offsets)
    if freqs is not None and n:
        log_freqs = numpy.log1p(numpy.maximum(numpy.asarray(freqs, dtype=numpy.float64), 0))
        features[:, 3] = log_freqs - segment_max(log_freqs, offsets)
    if coherence_values is not None:
        features[:, 4] = coherence_values
    if coreference_values is not None and incl_prior:
        features[:, 5] = coreference_values
    if containment_values is not None:
        features[:, 6] = containment_values
    if name_values is not None:
        features[:, 7:9] = name_values
    return features


def build_ranker(coherence_weight: float = 0.0, containment_weight: float = 0.0) -> Model:
    """The learned combination: Linear(FEATURES -> 1), initialised to the
    ``"softmax"`` scoring (LOGIT_SCALE on the cosine, 1 on the log prior,
    ``coherence_weight`` on the coherence, ``containment_weight`` on the
    containment, 0 elsewhere)."""
    ranker = Linear(nO=1, nI=len(FEATURES))
    ranker.initialize()
    reset_ranker(ranker, coherence_weight, containment_weight)
    return ranker


def reset_ranker(ranker: Model, coherence_weight: float = 0.0,
                 containment_weight: float = 0.0) -> None:
    """Set the ranker's weights back to the ``"softmax"`` scoring."""
    weights = numpy.zeros((1, len(FEATURES)), dtype=numpy.float32)
    weights[0, FEATURES.index("cosine")] = LOGIT_SCALE
    weights[0, FEATURES.index("log_prior")] = 1.0
    weights[0, FEATURES.index("coherence")] = coherence_weight
    weights[0, FEATURES.index("containment")] = containment_weight
    weights[0, FEATURES.index("coreference")] = COREFERENCE_WEIGHT
    for name, weight in zip(NAME_FEATURES, NAME_WEIGHTS):
        weights[0, FEATURES.index(name)] = weight
    ranker.set_param("W", ranker.ops.asarray2f(weights / RANKER_GAIN))
    ranker.set_param("b", ranker.ops.alloc1f(1))


def load_ranker(ranker: Model, data: bytes) -> None:
    """Load the ranker's weights (``Model.to_bytes``). A ranker saved before the
    last FEATURES were added reads fewer columns: each new one gets weight 0,
    so it scores as it did."""
    msg = srsly.msgpack_loads(data)
    node = msg["nodes"][0]
    n_saved = int(node["dims"].get("nI") or 0)
    if n_saved > len(FEATURES):
        raise ValueError(
            f"The saved ranker reads {n_saved} features; this entity_linker knows "
            f"{len(FEATURES)}. Upgrade entity_linker to load the pipeline."
        )
    if 0 < n_saved < len(FEATURES):
        node["dims"]["nI"] = len(FEATURES)
        weights = numpy.asarray(msg["params"][0]["W"])
        padded = numpy.zeros((weights.shape[0], len(FEATURES)), dtype=weights.dtype)
        padded[:, :n_saved] = weights
        msg["params"][0]["W"] = padded
    ranker.from_dict(msg)
