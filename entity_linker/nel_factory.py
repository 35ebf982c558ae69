"""The ``nel`` factory: its default model, its default settings, and the function spaCy calls.

``@Language.factory("nel")`` registers ``make_entity_linker``, which builds an
``EntityLinker`` (``entity_linker.pipeline``) from the config. The pyproject
entry point names ``entity_linker.pipeline:make_entity_linker``, which
re-exports it.
"""

from typing import TYPE_CHECKING, Callable, Iterable, Optional

from spacy.language import Language
from spacy.vocab import Vocab
from thinc.api import Config, Model

from .kb import KnowledgeBase

if TYPE_CHECKING:
    from .pipeline import EntityLinker


default_model_config = """
[model]
@architectures = "entity_linker.EntityLinker.v2"
pools = ["window", "doc"]
residual = true

[model.tok2vec]
@architectures = "spacy.HashEmbedCNN.v2"
pretrained_vectors = null
width = 96
depth = 2
embed_size = 2000
window_size = 1
maxout_pieces = 3
subword_features = true
"""
DEFAULT_NEL_MODEL = Config().from_str(default_model_config)["model"]


@Language.factory(
    "nel",
    requires=["doc.ents", "token.ent_iob", "token.ent_type"],
    assigns=["token.ent_kb_id"],
    default_config={
        "model": DEFAULT_NEL_MODEL,
        "labels_discard": [],
        "n_sents": 0,
        "incl_prior": True,
        "incl_context": True,
        "entity_vector_length": 64,
        "get_candidates": {"@misc": "entity_linker.CandidateGenerator.v1"},
        "get_candidates_batch": {"@misc": "entity_linker.CandidateBatchGenerator.v1"},
        "generate_empty_kb": {"@misc": "entity_linker.EmptyKB.v2"},
        "overwrite": True,
        "scorer": {"@scorers": "spacy.entity_linker_scorer.v1"},
        "use_gold_ents": True,
        "candidates_batch_size": 1,
        "threshold": None,
        "top_k": 3,
        "candidate_loss_weight": 0.0,
        "scoring": "spacy",
        "context_encoder": None,
        "context_encoder_weight": 1.0,
        "coherence": 0.0,
        "containment": 0.0,
        "sibling": 0.0,
        "nil_logit": None,
        "prior_gate": None,
        "freq_gate": None,
        "entity_correction_rows": 0,
        "word_pairs_rows": 0,
    },
    default_score_weights={"nel_micro_f": 1.0, "nel_micro_r": None, "nel_micro_p": None},
)
def make_entity_linker(
    nlp: Language,
    name: str,
    model: Model,
    *,
    labels_discard: Iterable[str],
    n_sents: int,
    incl_prior: bool,
    incl_context: bool,
    entity_vector_length: int,
    get_candidates: Callable,
    get_candidates_batch: Callable,
    generate_empty_kb: Callable[[Vocab, int], KnowledgeBase],
    overwrite: bool,
    scorer: Optional[Callable],
    use_gold_ents: bool,
    candidates_batch_size: int,
    threshold: Optional[float] = None,
    top_k: int = 3,
    candidate_loss_weight: float = 0.0,
    scoring: str = "spacy",
    context_encoder: Optional[str] = None,
    context_encoder_weight: float = 1.0,
    coherence: float = 0.0,
    containment: float = 0.0,
    sibling: float = 0.0,
    nil_logit: Optional[float] = None,
    prior_gate: Optional[float] = None,
    freq_gate: Optional[float] = None,
    entity_correction_rows: int = 0,
    word_pairs_rows: int = 0,
) -> "EntityLinker":
    """Create an EntityLinker (factory ``nel``); settings as spaCy's ``entity_linker``."""
    from .pipeline import EntityLinker

    return EntityLinker(
        nlp.vocab,
        model,
        name,
        labels_discard=labels_discard,
        n_sents=n_sents,
        incl_prior=incl_prior,
        incl_context=incl_context,
        entity_vector_length=entity_vector_length,
        get_candidates=get_candidates,
        get_candidates_batch=get_candidates_batch,
        generate_empty_kb=generate_empty_kb,
        overwrite=overwrite,
        scorer=scorer,
        use_gold_ents=use_gold_ents,
        candidates_batch_size=candidates_batch_size,
        threshold=threshold,
        top_k=top_k,
        candidate_loss_weight=candidate_loss_weight,
        scoring=scoring,
        context_encoder=context_encoder,
        context_encoder_weight=context_encoder_weight,
        coherence=coherence,
        containment=containment,
        sibling=sibling,
        nil_logit=nil_logit,
        prior_gate=prior_gate,
        freq_gate=freq_gate,
        entity_correction_rows=entity_correction_rows,
        word_pairs_rows=word_pairs_rows,
    )
