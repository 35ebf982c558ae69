"""The ``nel`` pipeline component: link entity mentions to a knowledge base.

A drop-in for spaCy's ``entity_linker`` (same settings, methods and outputs)
that works on whole batches: one encoder pass over the docs, one candidate
lookup for all mentions, one vectorised cosine-similarity step. See
docs/ARCHITECTURE.md for the data flow.

This module holds the ``EntityLinker`` class; the ``nel`` factory is in
``nel_factory``, the outputs (``LinkPredictions``, ``explain_choices``) in
``predictions``, the doc-level evidence in ``doc_evidence``. Their public
names are re-exported here.
"""

from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union

import numpy
import srsly
from spacy import util
from spacy.attrs import ORTH, SPACY
from spacy.language import Language
from spacy.pipeline.pipe import deserialize_config
from spacy.pipeline.trainable_pipe import TrainablePipe
from spacy.tokens import Doc, Span
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.util import SimpleFrozenList, registry
from spacy.vocab import Vocab
from thinc.api import Model, Optimizer, set_dropout_rate
from thinc.types import Floats2d

from .candidates import (
    CandidateTable,
    concatenated_ranges,
    get_candidates,
    get_candidates_batch,
    lookup_candidates,
)
from .doc_evidence import DocEvidence, container_mentions, doc_evidence
from .encoders import get_encoder
from .evidence_cache import EvidenceCache, select_pairs
from .kb import KnowledgeBase, hash_string
from .ml.models import build_entity_correction, doc_windows, set_correction_gain
from .nel_factory import DEFAULT_NEL_MODEL, default_model_config, make_entity_linker
from .predictions import NIL, LinkPredictions, entity_linker_score, explain_choices
from .scoring import (
    SCORINGS,
    CandidateScorer,
    blend_similarity,
    build_ranker,
    cosine,
    cosine_loss,
    cosine_with_grads,
    load_ranker,
    reset_ranker,
    segment_sum,
)
from .scoring.word_pairs import build_word_pairs, pair_keys

# Re-exported: where users, tests and the `nel` entry point import them from.
__all__ = ["DEFAULT_NEL_MODEL", "NIL", "EntityLinker", "LinkPredictions", "container_mentions",
           "default_model_config", "entity_linker_score", "explain_choices",
           "make_entity_linker"]

_WORDS = [ORTH, SPACY]


class EntityLinker(TrainablePipe):
    """Link entity mentions (``doc.ents``) to entities of a knowledge base.

    Each mention's candidates come from the KB; each candidate is scored by
    the cosine similarity between the mention's context encoding and the
    entity's vector, combined with the prior p(entity | alias) as spaCy does
    (``prior + sim - prior * sim``), or, with ``scoring="softmax"``, by a
    softmax over the mention's candidates of ``scale * sim + log(prior)``, plus,
    with ``coherence > 0``, that weight times the candidate's fit with the other
    mentions of its doc, or, with ``scoring="learned"``, by a softmax of a
    learned combination of these and more features (``entity_linker.scoring``
    defines every score). The winner's id goes to
    ``Token.ent_kb_id_`` (so ``Span.kb_id_``), its score to ``span._.kb_score``
    and the top-k candidates with scores to ``span._.kb_candidates``.

    One class, and so one file of over 600 lines: it is spaCy's TrainablePipe
    API (settings, predict/set_annotations, update/get_loss, to/from
    bytes/disk), whose methods share the pipe's state and must stay on one
    class for spaCy to drive it. What is not the class lives elsewhere: the
    factory (``nel_factory``), the outputs and their explanation
    (``predictions``), the doc-level evidence (``doc_evidence``), the scores
    (``scoring``) and the candidate lookup (``candidates``).
    """

    NIL = NIL

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "nel",
        *,
        labels_discard: Iterable[str],
        n_sents: int,
        incl_prior: bool,
        incl_context: bool,
        entity_vector_length: int,
        get_candidates: Callable = get_candidates,
        get_candidates_batch: Callable = get_candidates_batch,
        generate_empty_kb: Callable[[Vocab, int], KnowledgeBase],
        overwrite: bool = True,
        scorer: Optional[Callable] = entity_linker_score,
        use_gold_ents: bool,
        candidates_batch_size: int = 1,
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
    ) -> None:
        """Initialize the linker; see the factory ``nel`` for the settings."""
        if threshold is not None and not (0 <= threshold <= 1):
            raise ValueError(
                f"threshold must be None or in [0, 1], got {threshold}: it is compared "
                "with the linker's score, a probability in [0, 1] (with scoring = "
                "\"spacy\" and incl_prior = false, the cosine in [-1, 1], whose negative "
                "part a threshold of 0 already cuts)."
            )
        if not incl_prior and not incl_context:
            raise ValueError(
                "incl_prior and incl_context are both False, so the linker would have "
                "nothing to score candidates with. Set at least one of them to True."
            )
        if candidates_batch_size < 1:
            raise ValueError(
                f"candidates_batch_size must be >= 1, got {candidates_batch_size}."
            )
        if n_sents < 0:
            raise ValueError(f"n_sents must be >= 0, got {n_sents}.")
        if top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {top_k}.")
        if scoring not in SCORINGS:
            raise ValueError(
                f"scoring must be one of {', '.join(SCORINGS)}, got {scoring!r}."
            )
        for setting, rows in (("entity_correction_rows", entity_correction_rows),
                              ("word_pairs_rows", word_pairs_rows)):
            if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
                raise ValueError(f"{setting} must be an int >= 0 (0: off), got {rows!r}.")
        if word_pairs_rows and (scoring == "spacy" or not candidate_loss_weight > 0):
            raise ValueError(
                f"word_pairs_rows={word_pairs_rows} needs scoring = \"softmax\" or "
                "\"learned\" and candidate_loss_weight > 0: the pair weights are a "
                "term of the softmax logits, learned by the candidate loss. Set those, "
                "or word_pairs_rows = 0."
            )
        for setting, value in (("coherence", coherence), ("containment", containment),
                               ("sibling", sibling)):
            if not (value >= 0 and numpy.isfinite(value)):
                raise ValueError(f"{setting} must be a finite number >= 0, got {value}.")
            if value and scoring == "spacy":
                raise ValueError(
                    f"{setting}={value} needs scoring='softmax' or 'learned': the {setting} "
                    f"term is added to the softmax logits. Set scoring = \"softmax\" or "
                    f"{setting} = 0."
                )
        if scoring == "learned" and not candidate_loss_weight > 0:
            raise ValueError(
                f"scoring = \"learned\" trains its ranker with the candidate loss, but "
                f"candidate_loss_weight is {candidate_loss_weight}. Set "
                "candidate_loss_weight = 1.0 (or another value > 0)."
            )
        if sibling and scoring != "softmax":
            raise ValueError(
                f"sibling={sibling} needs scoring = \"softmax\": the sibling term is added to "
                "the softmax logits. Set scoring = \"softmax\" or sibling = 0."
            )
        if prior_gate is not None and (scoring == "spacy" or isinstance(prior_gate, bool)
                                       or not 0 < prior_gate <= 1):
            raise ValueError(
                f"prior_gate={prior_gate!r} needs scoring = \"softmax\" or \"learned\" and a "
                "number in (0, 1]: a candidate whose prior is below prior_gate times its "
                "mention's top prior wins only with local evidence. null turns it off."
            )
        if freq_gate is not None and (scoring == "spacy" or isinstance(freq_gate, bool)
                                      or not (freq_gate > 0 and numpy.isfinite(freq_gate))):
            raise ValueError(
                f"freq_gate={freq_gate!r} needs scoring = \"softmax\" or \"learned\" and a "
                "finite number > 0: a candidate whose freq (population) is below it wins "
                "only with local evidence. null turns it off."
            )
        if nil_logit is not None and (scoring == "spacy" or not numpy.isfinite(nil_logit)):
            raise ValueError(
                f"nil_logit={nil_logit} needs scoring = \"softmax\" or \"learned\" (it is a "
                "NIL option in the softmax) and a finite value; null turns it off."
            )
        self.vocab = vocab
        self.model = model
        self.name = name
        self.labels_discard = list(labels_discard)
        self.incl_prior = incl_prior
        self.incl_context = incl_context
        self.get_candidates = get_candidates
        self.get_candidates_batch = get_candidates_batch
        self.candidates_batch_size = candidates_batch_size
        self.cfg: Dict[str, Any] = {"overwrite": overwrite}
        self.kb = generate_empty_kb(self.vocab, entity_vector_length)
        self.use_gold_ents = use_gold_ents
        self.threshold = threshold
        self.top_k = top_k
        self.candidate_loss_weight = candidate_loss_weight
        self.scoring = scoring
        self.context_encoder = context_encoder
        self.context_encoder_weight = context_encoder_weight
        self.coherence = coherence
        self.containment = containment
        self.sibling = sibling
        self.nil_logit = nil_logit
        self.prior_gate = prior_gate
        self.freq_gate = freq_gate
        # The learned combination of the candidate features (scoring = "learned").
        self.ranker: Optional[Model] = (build_ranker(coherence, containment)
                                        if scoring == "learned" else None)
        # A learned correction added to the KB's entity vectors (entity_correction_rows > 0).
        self.entity_correction: Optional[Model] = None
        if entity_correction_rows:
            self.entity_correction = build_entity_correction(entity_vector_length,
                                                             entity_correction_rows)
            self.entity_correction.initialize()
        # Learned (context word, name word) pair weights (word_pairs_rows > 0).
        self.word_pairs: Optional[Model] = None
        # Training's doc evidence per doc, across epochs (emptied with a new KB).
        self._evidence_cache = EvidenceCache()
        if word_pairs_rows:
            self.word_pairs = build_word_pairs(word_pairs_rows)
            self.word_pairs.initialize()
        self._context_encoders: Dict[int, Callable] = {}
        self.n_sents = n_sents
        # When True, predict also says which evidence decided each link
        # (span._.kb_evidence); a run-time switch, not saved.
        self.explain = False

        self._base_scorer = scorer
        # A bound method, not a closure: the component (and nlp) must pickle for
        # nlp.pipe(n_process=...) under spawn/forkserver.
        self.scorer = self._score_with_ents if scorer else None

    def _score_with_ents(self, examples: Iterable[Example], **kwargs) -> Dict[str, Any]:
        """Score examples; with use_gold_ents, link the gold entities first.

        Language.evaluate runs pipe() on docs without entities when there is no NER.
        """
        if self.use_gold_ents:
            examples = self._ensure_ents(examples)
            docs = self.pipe(eg.predicted for eg in examples)
            for eg, doc in zip(examples, docs):
                eg.predicted = doc
        return self._base_scorer(examples, **kwargs)

    @property
    def n_sents(self) -> int:
        """Sentences on each side of a mention's sentence that form its context window."""
        return self._n_sents

    @n_sents.setter
    def n_sents(self, n_sents: int) -> None:
        self._n_sents = n_sents
        self._set_n_sents()

    def _set_n_sents(self) -> None:
        # Our encoder's windows, or the span maker of spaCy's EntityLinker.v2.
        for node in self.model.walk():
            if node.name in ("mention_windows", "context_windows", "span_maker"):
                node.attrs["n_sents"] = self._n_sents

    def _lexical_encodings(self, docs: Sequence[Doc]):
        """Each mention's context window embedded by ``context_encoder`` (zeros without one).

        With the encoder that made the KB's entity vectors from descriptions,
        the cosine of this with a candidate's vector is an untrained, lexical
        match between the context and the candidate's description ("Paris,
        Texas" -> the Paris in Texas). The context similarity is then the mean
        of the model's and this one, weighted 1 : context_encoder_weight.
        """
        length = self.kb.entity_vector_length
        windows = [(doc, doc_windows(doc, self.n_sents)) for doc in docs]
        n_mentions = sum(len(rows) for _, rows in windows)
        if not self.context_encoder or not n_mentions:
            return numpy.zeros((n_mentions, length), dtype="float32")
        encoder = self._context_encoders.get(length)
        if encoder is None:
            encoder = get_encoder(self.context_encoder, dim=length)
            self._context_encoders[length] = encoder
        texts = [doc[start:end].text for doc, rows in windows for _, _, start, end in rows]
        return numpy.asarray(encoder(texts), dtype="float32")

    # ----------------------------------------------------------------- KB

    def set_kb(self, kb_loader: Callable[[Vocab], KnowledgeBase]) -> None:
        """Set the KB: ``kb_loader(vocab)`` must return a KnowledgeBase."""
        if not callable(kb_loader):
            raise ValueError(
                f"set_kb expects a function that takes the vocab and returns a KB, got "
                f"{type(kb_loader).__name__}. E.g. nel.set_kb(lambda vocab: kb)."
            )
        self.kb = kb_loader(self.vocab)
        self._evidence_cache.clear()

    def validate_kb(self) -> None:
        """Raise a clear error when the KB is missing or empty."""
        if self.kb is None:
            raise ValueError(
                f"The knowledge base of component '{self.name}' is not set. Call "
                f"nlp.get_pipe('{self.name}').set_kb(kb_loader) or pass kb_loader to "
                "initialize()."
            )
        if hasattr(self.kb, "is_empty") and self.kb.is_empty():
            raise ValueError(  # spaCy's code for it, which code written for spaCy checks
                f"[E139] The knowledge base of component '{self.name}' is empty. Add "
                "entities and aliases to it (or load one with set_kb) before training or "
                "linking."
            )

    # -------------------------------------------------------- initialize

    def _ensure_ents(self, examples: Iterable[Example]) -> Iterable[Example]:
        """With use_gold_ents, copy the gold entities onto (a copy of) eg.predicted."""
        if not self.use_gold_ents:
            return examples
        new_examples = []
        for eg in examples:
            predicted = eg.predicted.copy()
            if _same_tokens(eg):
                predicted.ents = [Span(predicted, e.start, e.end, label=e.label)
                                  for e in eg.reference.ents]
            else:
                predicted.ents = eg.get_aligned_spans_y2x(eg.reference.ents,
                                                          allow_overlap=False)
            # The reference is only read, so it is shared, not copied.
            new_examples.append(Example(predicted, eg.reference))
        return new_examples

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        kb_loader: Optional[Callable[[Vocab], KnowledgeBase]] = None,
    ) -> None:
        """Initialize the model from a sample of examples (and set the KB if given)."""
        validate_get_examples(get_examples, "EntityLinker.initialize")
        if kb_loader is not None:
            self.set_kb(kb_loader)
        self.validate_kb()
        n_out = self.kb.entity_vector_length
        docs = [eg.x for eg in self._ensure_ents(_first(get_examples(), 10))]
        if not docs:
            raise ValueError(
                f"initialize() of '{self.name}' got no examples; it needs a few to "
                "infer the model's shapes."
            )
        # Shape inference needs at least one mention; a dummy one is removed after.
        dummy = None
        if not any(doc.ents for doc in docs) and any(len(doc) for doc in docs):
            dummy = next(doc for doc in docs if len(doc))
            dummy.ents = [Span(dummy, 0, 1, label="_")]
        self.model.initialize(X=docs, Y=self.model.ops.alloc2f(1, n_out))
        self._evidence_cache.clear()
        if self.ranker is not None:
            reset_ranker(self.ranker, self.coherence, self.containment)
        if self.word_pairs is not None:
            self.word_pairs.initialize()  # back to zeros
        if self.entity_correction is not None:
            if self.entity_correction.get_dim("nO") != n_out:
                raise ValueError(
                    f"entity_vector_length is {self.entity_correction.get_dim('nO')} but the "
                    f"KB's vectors have length {n_out}: set entity_vector_length = {n_out}."
                )
            self.entity_correction.initialize()
            set_correction_gain(self.entity_correction, self.kb.vectors
                                if hasattr(self.kb, "vectors") else [])
        if dummy is not None:
            dummy.ents = []

    # ----------------------------------------------------------- predict

    def _mentions(self, docs: Sequence[Doc]) -> List[Span]:
        return [ent for doc in docs for ent in doc.ents]

    def _discarded(self, mentions: List[Span]) -> numpy.ndarray:
        """Which mentions have a label in labels_discard."""
        return numpy.array([m.label_ in self.labels_discard for m in mentions], dtype=bool)

    def _candidates(self, mentions: List[Span]) -> CandidateTable:
        """One candidate table for all mentions (one batched lookup)."""
        single = self.get_candidates
        if single is not get_candidates and self.candidates_batch_size == 1:
            # A custom per-mention generator, used as spaCy does in this setting.
            return CandidateTable.from_candidates(
                self.kb, [list(single(self.kb, m)) for m in mentions]
            )
        return lookup_candidates(self.kb, self.get_candidates_batch, mentions)

    def predict(self, docs: Iterable[Doc]) -> LinkPredictions:
        """The kb id (or "NIL") of every mention in the docs, without changing them.

        docs (Iterable[Doc]): The documents.
        RETURNS (LinkPredictions): A list of kb ids in the order of the docs'
            ents, carrying ``.scores`` and ``.candidates`` (top-k) per mention.
        """
        self.validate_kb()
        if isinstance(docs, Doc):
            docs = [docs]
        docs = list(docs)
        mentions = self._mentions(docs)
        if not mentions:
            return LinkPredictions([], [], [])
        table = self._candidates(mentions)
        discard = self._discarded(mentions)
        scorer = self.candidate_scorer
        sims = numpy.zeros(table.n_candidates, dtype=numpy.float32)
        if self.incl_context and table.n_candidates:
            encodings = self.model.predict(docs)
            if encodings.shape[0] != len(mentions):
                raise RuntimeError(
                    f"The model of '{self.name}' returned {encodings.shape[0]} encodings "
                    f"for {len(mentions)} mentions; it must return one per doc.ents entry."
                )
            sims, _ = self._similarities(docs, table, self.model.ops.to_numpy(encodings))
        evidence = self._doc_evidence(docs, mentions, table, discard, scorer)
        pairs = self._pairs(mentions, table, scorer)
        scores = scorer.scores(table, sims, pairs=pairs, **evidence.scorer_kwargs())
        order = table.ranked(scores)
        predictions = self._choose(table, scores, order, discard)
        if self.explain:
            predictions.evidence = explain_choices(
                table, order,
                scorer.components(table, sims, pairs=pairs, **evidence.scorer_kwargs()),
                scorer.gates(table, evidence.containment, evidence.siblings))
        return predictions

    def _similarities(self, docs: Sequence[Doc], table: CandidateTable, encodings,
                      is_train: bool = False, mention_rows: Optional[List[int]] = None):
        """Each candidate's context similarity: the cosine of its mention's
        encoding with its entity vector (the KB's, plus the learned correction),
        blended with the lexical similarity when there is a context_encoder.

        encodings: one row per mention of the table. mention_rows: which of the
            docs' mentions the table holds (default all), for the lexical encodings.
        RETURNS: (sims, backprop); with is_train, backprop(d_sims) returns the
            gradient of the encodings and feeds the correction's gradient.
        """
        vectors, correct = self._entity_vectors(table.keys, table.vectors, is_train)
        if is_train:
            mention = numpy.repeat(numpy.arange(len(encodings)), numpy.diff(table.offsets))
            sims, d_rows, d_vectors = cosine_with_grads(encodings[mention], vectors)
        else:
            sims = cosine(encodings, table.offsets, vectors)
        scale = 1.0
        if self.context_encoder:
            lexical = self._lexical_encodings(docs)
            if mention_rows is not None:
                lexical = lexical[mention_rows]
            lexical_sims = cosine(lexical, table.offsets, table.vectors)
            sims = blend_similarity(sims, lexical_sims, self.context_encoder_weight)
            scale = 1.0 / (1.0 + self.context_encoder_weight)

        def backprop(d_sims):
            d_sims = scale * d_sims
            d_encodings = segment_sum(d_sims[:, None] * d_rows, table.offsets).astype(
                encodings.dtype, copy=False)
            if correct is not None:
                correct((d_sims[:, None] * d_vectors).astype(numpy.float32))
            return d_encodings

        return sims, (backprop if is_train else None)

    def _entity_vectors(self, keys, vectors, is_train: bool = False):
        """The entity vectors as scored: the KB's, plus the learned correction of
        the entities (when entity_correction_rows > 0); and the correction's
        backprop (None when there is none or not is_train)."""
        correction = self.entity_correction
        if correction is None or not len(keys):
            return vectors, None
        keys = numpy.ascontiguousarray(keys, dtype=numpy.uint64)
        if is_train:
            delta, backprop = correction.begin_update(keys)
        else:
            delta, backprop = correction.predict(keys), None
        return numpy.asarray(vectors, dtype=numpy.float32) + correction.ops.to_numpy(delta), \
            backprop

    @property
    def candidate_scorer(self) -> CandidateScorer:
        """The scorer of this linker's current settings (scoring, incl_prior, ...)."""
        return CandidateScorer(self.scoring, self.incl_prior, self.incl_context,
                               self.coherence, self.ranker, self.containment, self.nil_logit,
                               self.word_pairs, self.prior_gate, self.sibling,
                               self.freq_gate)

    def _doc_evidence(self, docs: Sequence[Doc], mentions: List[Span], table: CandidateTable,
                      discard, scorer: CandidateScorer) -> DocEvidence:
        """What the doc's other mentions say of each candidate (``doc_evidence``)."""
        return doc_evidence(self.kb, docs, mentions, table, discard, scorer)

    def _pairs(self, mentions: List[Span], table: CandidateTable, scorer: CandidateScorer):
        """The (context word, name word) pairs of the table's candidates
        (``word_pairs.pair_keys``), or None when the scorer does not read them
        or the KB has no names."""
        if not scorer.uses_word_pairs or not table.n_candidates \
                or not getattr(self.kb, "has_names", False):
            return None
        names = self.kb.names_of_rows(table.entity_rows())
        return pair_keys(table.offsets, names, mentions)

    def _choose(self, table: CandidateTable, scores, order, discard) -> LinkPredictions:
        """The kb id, score and top-k candidates of each mention, from the
        candidates ranked best first (``table.ranked(scores)``)."""
        offsets = table.offsets
        counts = numpy.diff(offsets)
        n_top = max(self.top_k, 1)
        # The top-k candidate indices of every mention, their ids looked up in one go.
        kept = numpy.minimum(counts, n_top)
        top_positions = order[concatenated_ranges(offsets[:-1], kept)]
        top_ids = table.entity_ids(top_positions)
        top_scores = scores[top_positions].tolist()
        kept_list = kept.tolist()
        threshold = self.threshold
        # With freq_gate, a top score of 0 means the gate kept every candidate
        # out (CandidateScorer.scores): such a mention is NIL whatever the threshold.
        blocked_at = 0.0 if self.freq_gate is not None else None
        kb_ids, best_scores, top = [], [], []
        position = 0
        for i, n in enumerate(kept_list):
            if discard[i] or n == 0:
                kb_ids.append(NIL)
                best_scores.append(None)
                top.append(None if discard[i] else [])
                position += n
                continue
            score = top_scores[position]
            unlinked = (threshold is not None and score < threshold) or (
                blocked_at is not None and score <= blocked_at)
            kb_ids.append(NIL if unlinked else top_ids[position])
            best_scores.append(score)
            shown = min(n, self.top_k)
            top.append(list(zip(top_ids[position : position + shown],
                                top_scores[position : position + shown])))
            position += n
        return LinkPredictions(kb_ids, best_scores, top)

    def set_annotations(self, docs: Iterable[Doc], kb_ids: List[str]) -> None:
        """Set ``Token.ent_kb_id_`` of every mention (and its scores, if predicted).

        docs (Iterable[Doc]): The documents, as given to predict.
        kb_ids (List[str]): The ids from predict, one per mention.
        """
        docs = list(docs)
        doc_ents = [doc.ents for doc in docs]  # each doc.ents builds new Spans
        count = sum(len(ents) for ents in doc_ents)
        if count != len(kb_ids):
            raise ValueError(
                f"Expected {count} kb ids (one per entity of the docs) but got "
                f"{len(kb_ids)}. Pass the docs exactly as they were given to predict()."
            )
        scores = getattr(kb_ids, "scores", None)
        candidates = getattr(kb_ids, "candidates", None)
        evidence = getattr(kb_ids, "evidence", None)
        overwrite = self.cfg["overwrite"]
        i = 0
        for doc, ents in zip(docs, doc_ents):
            strings = doc.vocab.strings  # the doc's own, as Token.ent_kb_id_ uses
            for ent in ents:
                kb_key = strings.add(kb_ids[i])
                for token in ent:
                    if token.ent_kb_id == 0 or overwrite:
                        token.ent_kb_id = kb_key
                if scores is not None:
                    extensions = ent._  # a new accessor object on every access
                    extensions.kb_score = scores[i]
                    extensions.kb_candidates = candidates[i]
                    if evidence is not None:
                        extensions.kb_evidence = evidence[i]
                i += 1

    # ------------------------------------------------------------ train

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        """Learn from a batch of examples: one encoder pass, one backward pass."""
        self.validate_kb()
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        if not examples:
            return losses
        examples = self._ensure_ents(examples)
        validate_examples(examples, "EntityLinker.update")
        docs = [eg.predicted for eg in examples]
        gold = self._gold_rows(examples)
        if not gold[0]:
            return losses  # nothing to learn from in this batch
        set_dropout_rate(self.model, drop)
        encodings, backprop = self.model.begin_update(docs)
        loss, d_encodings = self._loss(examples, encodings, gold)
        backprop(d_encodings)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def _gold_rows(self, examples: Sequence[Example]):
        """(mention indices, gold kb ids) of the mentions whose gold entity is in the KB."""
        keep, gold_ids = [], []
        index = 0
        for eg in examples:
            # Learn only from mentions that match a gold entity (boundaries and label).
            if _same_tokens(eg):
                gold = {(e.start, e.end, e.label): e.kb_id_ for e in eg.reference.ents}
                kb_ids = [gold.get((e.start, e.end, e.label)) for e in eg.predicted.ents]
            else:
                aligned = eg.get_aligned("ENT_KB_ID", as_string=True)
                matching = {(ent.start, ent.end) for ent in eg.get_matching_ents()}
                kb_ids = [aligned[ent.start] if (ent.start, ent.end) in matching else None
                          for ent in eg.predicted.ents]
            for kb_id in kb_ids:
                if kb_id and kb_id != NIL and self.kb.contains_entity(kb_id):
                    keep.append(index)
                    gold_ids.append(kb_id)
                index += 1
        return keep, gold_ids

    def get_loss(self, examples: Iterable[Example], sentence_encodings: Floats2d):
        """Loss and gradient of the mention encodings.

        The cosine distance to the gold entity's vector (spaCy's loss), plus,
        weighted by ``candidate_loss_weight``, a softmax cross-entropy over each
        mention's candidates of the same score that prediction ranks by, so
        the encoder learns to rank the gold entity first.
        RETURNS (Tuple[float, Floats2d]): The loss and its gradient.
        """
        examples = list(examples)
        validate_examples(examples, "EntityLinker.get_loss")
        return self._loss(examples, sentence_encodings, self._gold_rows(examples))

    def _loss(self, examples: List[Example], sentence_encodings: Floats2d, gold):
        ops = self.model.ops
        encodings = ops.to_numpy(sentence_encodings)
        gradient = numpy.zeros_like(encodings)
        keep, gold_ids = gold
        if not keep:
            return 0.0, ops.asarray2f(gradient)
        gold_keys = numpy.asarray([hash_string(g) for g in gold_ids], dtype=numpy.uint64)
        gold_vectors, correct = self._entity_vectors(
            gold_keys, numpy.asarray(self.kb.get_vectors(gold_ids), dtype="float32"), True)
        selected = encodings[keep]
        loss, gradient[keep], d_gold_vectors = cosine_loss(selected, gold_vectors)
        if correct is not None:
            correct(numpy.asarray(d_gold_vectors, dtype=numpy.float32))
        if self.candidate_loss_weight:
            ce_loss, d_selected = self._candidate_loss(examples, selected, keep, gold_keys)
            loss += ce_loss
            gradient[keep] += d_selected
        return loss, ops.asarray2f(gradient)

    def _candidate_loss(self, examples: List[Example], selected, keep: List[int],
                        gold_keys: numpy.ndarray):
        """The scorer's candidate loss for the gold mentions (times
        candidate_loss_weight), and its gradient with respect to their encodings
        (``selected``); the gradients of the ranker and the entity correction
        are accumulated."""
        docs = [eg.predicted for eg in examples]
        mentions = self._mentions(docs)
        scorer = self.candidate_scorer
        scorer.prior_gate = scorer.freq_gate = None  # prediction rules: training does not read them
        evidence = DocEvidence()
        if scorer.uses_coherence or scorer.uses_containment or scorer.uses_siblings:
            # The doc evidence needs every mention of the docs, not only the gold ones.
            everything = self._candidates(mentions)
            table = everything.select(keep)
            positions = everything.positions(keep)
            evidence, pairs = self._training_evidence(docs, mentions, everything, scorer)
            evidence = evidence.select(positions)
            pairs = select_pairs(pairs, positions, everything.n_candidates)
        else:
            table = self._candidates([mentions[i] for i in keep])
            pairs = self._pairs([mentions[i] for i in keep], table, scorer)
        sims, backprop = self._similarities(docs, table, selected, is_train=True,
                                            mention_rows=keep)
        loss, d_sims = scorer.candidate_loss(table, sims, gold_keys,
                                             weight=self.candidate_loss_weight, pairs=pairs,
                                             **evidence.scorer_kwargs())
        return loss, backprop(d_sims)

    def _training_evidence(self, docs: Sequence[Doc], mentions: List[Span],
                           table: CandidateTable, scorer: CandidateScorer):
        """(DocEvidence, pairs) of all the docs' mentions' candidates, each
        doc's from the evidence cache when training saw it before."""
        discard = self._discarded(mentions)
        generation = (id(self.kb), scorer.scoring, scorer.uses_coherence,
                      scorer.uses_containment, scorer.uses_siblings, scorer.uses_word_pairs,
                      tuple(sorted(self.labels_discard)))

        def compute(doc, doc_mentions, doc_table, mention_slice):
            return (self._doc_evidence([doc], doc_mentions, doc_table, discard[mention_slice],
                                       scorer),
                    self._pairs(doc_mentions, doc_table, scorer))

        return self._evidence_cache.batch(generation, docs, mentions, table, compute)

    def _scoring_models(self) -> Dict[str, Model]:
        """The trained models beside the encoder, by the name they are saved under."""
        models = {"ranker": self.ranker, "entity_correction": self.entity_correction,
                  "word_pairs": self.word_pairs}
        return {name: model for name, model in models.items() if model is not None}

    def finish_update(self, sgd: Optimizer) -> None:
        """Update the weights of the encoder (and of the ranker and the entity
        correction) with the gradients of update()."""
        self.model.finish_update(sgd)
        for model in self._scoring_models().values():
            model.finish_update(sgd)

    def use_params(self, params: dict):
        """Use the given (e.g. averaged) parameters of all the component's models.
        A generator, as spaCy's TrainablePipe.use_params (Language.use_params drives it)."""
        with ExitStack() as stack:
            stack.enter_context(self.model.use_params(params))
            for model in self._scoring_models().values():
                stack.enter_context(model.use_params(params))
            yield

    # ----------------------------------------------------- serialization

    def to_bytes(self, *, exclude: Iterable[str] = SimpleFrozenList()) -> bytes:
        """Serialize the component (cfg, vocab, kb, model) to bytes."""
        self._validate_serialization_attrs()
        serialize = {
            "cfg": lambda: srsly.json_dumps(self.cfg),
            "vocab": lambda: self.vocab.to_bytes(exclude=exclude),
            "kb": self.kb.to_bytes,
            "model": self.model.to_bytes,
        }
        for name, model in self._scoring_models().items():
            serialize[name] = model.to_bytes
        return util.to_bytes(serialize, exclude)

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = SimpleFrozenList()
                   ) -> "EntityLinker":
        """Load the component from bytes."""
        self._validate_serialization_attrs()
        deserialize = {
            "cfg": lambda b: self.cfg.update(srsly.json_loads(b)),
            "vocab": lambda b: self.vocab.from_bytes(b, exclude=exclude),
            "kb": lambda b: self.kb.from_bytes(b),
            "model": lambda b: self._load_model(b),
        }
        for name, model in self._scoring_models().items():
            deserialize[name] = partial(self._load_scoring_bytes, model)
        util.from_bytes(bytes_data, deserialize, exclude)
        return self

    def to_disk(self, path: Union[str, Path], *,
                exclude: Iterable[str] = SimpleFrozenList()) -> None:
        """Save the component to a directory (the KB as kb/kb.bin)."""
        serialize = {
            "vocab": lambda p: self.vocab.to_disk(p, exclude=exclude),
            "cfg": lambda p: srsly.write_json(p, self.cfg),
            "kb": lambda p: self.kb.to_disk(p),
            "model": lambda p: self.model.to_disk(p),
        }
        for name, model in self._scoring_models().items():
            serialize[name] = model.to_disk
        if self.cfg.get("kb_loader"):
            # The KB lives elsewhere (e.g. the GeoNames cache): save only how to load it.
            exclude = list(exclude) + ["kb"]
        util.to_disk(path, serialize, exclude)

    def from_disk(self, path: Union[str, Path], *,
                  exclude: Iterable[str] = SimpleFrozenList()) -> "EntityLinker":
        """Load the component from a directory; the KB is memory-mapped, not read."""
        deserialize: Dict[str, Callable[[Any], Any]] = {
            "cfg": lambda p: self.cfg.update(deserialize_config(p)),
            "vocab": lambda p: self.vocab.from_disk(p, exclude=exclude),
            "kb": self._load_kb,
            "model": lambda p: self._load_model(p.read_bytes()),
        }
        for name, model in self._scoring_models().items():
            deserialize[name] = partial(self._load_scoring_model, model)
        util.from_disk(path, deserialize, exclude)
        return self

    def _load_kb(self, path: Path) -> None:
        self._evidence_cache.clear()
        if path.exists():
            self.kb.from_disk(path)
        elif self.cfg.get("kb_loader"):
            loader = registry.resolve({"kb_loader": self.cfg["kb_loader"]})["kb_loader"]
            self.set_kb(loader)
        else:
            raise ValueError(
                f"No KB at {path}, and the component's cfg names no kb_loader. Save the "
                "pipeline with its KB, or call set_kb() after loading with exclude=['kb']."
            )

    def _load_scoring_model(self, model: Model, path: Path) -> None:
        if not path.exists():
            raise ValueError(
                f"The component '{self.name}' needs its {path.name} weights, but {path} "
                "does not exist: was the pipeline saved with other scoring or "
                "entity_correction_rows settings?"
            )
        self._load_scoring_bytes(model, path.read_bytes())

    def _load_scoring_bytes(self, model: Model, data: bytes) -> None:
        if model is self.ranker:
            load_ranker(model, data)
        else:
            model.from_bytes(data)

    def _load_model(self, data: bytes) -> None:
        try:
            self.model.from_bytes(data)
        except AttributeError:
            raise ValueError(
                f"Could not load the model of '{self.name}': the saved weights do not fit "
                "this model's architecture. Was it saved with another config?"
            ) from None
        self._set_n_sents()  # the saved attrs must not override this pipe's setting

    def rehearse(self, examples, *, sgd=None, losses=None, **config):
        raise NotImplementedError("The entity linker does not support rehearsal.")

    def add_label(self, label):
        raise NotImplementedError("The entity linker has no labels; add entities to the KB.")





def _same_tokens(eg: Example) -> bool:
    """Whether predicted and reference have the same words and spaces: then the
    alignment is the identity and the gold entities can be read off directly
    (spaCy's alignment costs more than the encoder's forward pass on short docs)."""
    x, y = eg.predicted, eg.reference
    return len(x) == len(y) and numpy.array_equal(x.to_array(_WORDS), y.to_array(_WORDS))


def _first(iterable, n):
    out = []
    for item in iterable:
        if len(out) >= n:
            break
        out.append(item)
    return out
