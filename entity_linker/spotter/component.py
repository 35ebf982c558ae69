"""The ``kb_spotter`` factory and the ``KBSpotter`` component: settings, the
KB (set, loaded or shared with ``nel``), ``predict``/``set_annotations`` and
serialization. The n-grams are in ``ngrams``, the KB lookups in ``lookup``."""

import weakref
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy
import srsly
from spacy import util
from spacy.language import Language
from spacy.pipeline import Pipe
from spacy.pipeline.pipe import deserialize_config
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import SimpleFrozenList, registry
from spacy.vocab import Vocab

from ..candidates import alias_index
from ..kb import InMemoryLookupKB, KnowledgeBase
from .lookup import best_candidates, name_containers
from .ngrams import TOKEN_ATTRS, doc_text, enumerate_ngrams, resolve_matches
from .scorer import spotter_score


@Language.factory(
    "kb_spotter",
    assigns=["doc.ents", "token.ent_iob", "token.ent_type"],
    default_config={
        "label": "ENT",
        "max_words": 6,
        "normalized": True,
        "min_prior": 0.0,
        "min_freq": 0.0,
        "min_length": 2,
        "case_sensitive_below": 3,
        "skip_lowercase": True,
        "skip_stop_words": True,
        "exclude": [],
        "containers": False,
        "overwrite_ents": False,
        "annotate_ents": True,
        "spans_key": None,
        "kb_loader": None,
        "scorer": {"@scorers": "entity_linker.spotter_scorer.v1"},
    },
    default_score_weights={"spotter_f": 1.0, "spotter_p": None, "spotter_r": None},
)
def make_kb_spotter(
    nlp: Language,
    name: str,
    label: str,
    max_words: int,
    normalized: bool,
    min_prior: float,
    min_freq: float,
    min_length: int,
    case_sensitive_below: int,
    skip_lowercase: bool,
    skip_stop_words: bool,
    exclude: List[str],
    containers: bool,
    overwrite_ents: bool,
    annotate_ents: bool,
    spans_key: Optional[str],
    kb_loader: Optional[Callable[[Vocab], KnowledgeBase]],
    scorer: Optional[Callable],
) -> "KBSpotter":
    """Create a KBSpotter (factory ``kb_spotter``).

    label (str): The label of the spans found.
    max_words (int): The longest alias searched for, in tokens.
    normalized (bool): Match normalised forms (case, accents, punctuation,
        "St." = "Saint"; needs the KB's alias index) rather than exact alias text.
    min_prior (float): Skip a match whose best candidate's prior is lower.
    min_freq (float): Skip a match whose best candidate's entity frequency is lower.
    min_length (int): Skip mentions shorter than this many characters.
    case_sensitive_below (int): Mentions of at most this many characters must
        equal an alias exactly, case included ("US" matches the alias "US", "us" does not).
    skip_lowercase (bool): Skip mentions without an uppercase letter ("reading").
    skip_stop_words (bool): Skip mentions made only of stop words ("May",
        "We're"), except one-token mentions in capitals ("US").
    exclude (List[str]): Texts never matched, e.g. month names (compared in
        normalised form when ``normalized``, else exactly).
    containers (bool): Also keep a match that ``min_freq`` would drop when it
        names a place that contains the entity right before it: "Maine" in
        "Portland, Maine", "Portland (Maine)" or "Portland in Maine", where a
        candidate of "Maine" is an ancestor (KB relations) of a candidate of
        "Portland".
    overwrite_ents (bool): Replace the doc's entities; False keeps them and adds
        only the matches that do not overlap them.
    annotate_ents (bool): Write the matches to ``doc.ents``.
    spans_key (Optional[str]): Also write the matches to ``doc.spans[spans_key]``.
    kb_loader (Optional[Callable[[Vocab], KnowledgeBase]]): Loads the KB (e.g.
        ``entity_linker.KBFromFile.v1``) on first use; None: the KB given to
        ``set_kb``/``initialize``, else the KB of the pipeline's ``nel`` component.
    scorer (Optional[Callable]): Scores the spans (default: unlabelled span P/R/F).
    """
    return KBSpotter(
        nlp.vocab,
        name,
        label=label,
        max_words=max_words,
        normalized=normalized,
        min_prior=min_prior,
        min_freq=min_freq,
        min_length=min_length,
        case_sensitive_below=case_sensitive_below,
        skip_lowercase=skip_lowercase,
        skip_stop_words=skip_stop_words,
        exclude=exclude,
        containers=containers,
        overwrite_ents=overwrite_ents,
        annotate_ents=annotate_ents,
        spans_key=spans_key,
        kb_loader=kb_loader,
        scorer=scorer,
        nlp=nlp,
    )


class KBSpotter(Pipe):
    """Find mentions of KB aliases in text by longest match.

    Every token n-gram (up to ``max_words`` tokens, within one sentence and
    between whitespace tokens, neither starting nor ending with punctuation)
    that passes the filters and is an alias becomes a match; overlapping
    matches are resolved greedily: more tokens first, then the higher prior
    of the best candidate, then the leftmost. The spans get ``label`` and no
    kb id: linking is the ``nel`` component's job.
    """

    def __init__(
        self,
        vocab: Vocab,
        name: str = "kb_spotter",
        *,
        label: str = "ENT",
        max_words: int = 6,
        normalized: bool = True,
        min_prior: float = 0.0,
        min_freq: float = 0.0,
        min_length: int = 2,
        case_sensitive_below: int = 3,
        skip_lowercase: bool = True,
        skip_stop_words: bool = True,
        exclude: Sequence[str] = (),
        containers: bool = False,
        overwrite_ents: bool = False,
        annotate_ents: bool = True,
        spans_key: Optional[str] = None,
        kb_loader: Optional[Callable[[Vocab], KnowledgeBase]] = None,
        scorer: Optional[Callable] = spotter_score,
        nlp: Optional[Language] = None,
    ) -> None:
        """Initialize the spotter; see the factory ``kb_spotter`` for the settings."""
        if not isinstance(label, str) or not label:
            raise ValueError(f"label must be a non-empty str, got {label!r}.")
        for setting, value in (("max_words", max_words), ("min_length", min_length),
                               ("case_sensitive_below", case_sensitive_below)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{setting} must be an int >= 0, got {value!r}.")
        if max_words < 1:
            raise ValueError(f"max_words must be at least 1, got {max_words}.")
        if not 0.0 <= min_prior <= 1.0:
            raise ValueError(f"min_prior must lie in [0, 1], got {min_prior}.")
        if min_freq < 0:
            raise ValueError(f"min_freq must be >= 0, got {min_freq}.")
        if not annotate_ents and spans_key is None:
            raise ValueError(
                "annotate_ents is False and spans_key is None, so the spotter would "
                "write its matches nowhere. Set spans_key or annotate_ents=True."
            )
        self.vocab = vocab
        self.name = name
        self.scorer = scorer
        self.cfg: Dict[str, Any] = {
            "label": label,
            "max_words": max_words,
            "normalized": normalized,
            "min_prior": float(min_prior),
            "min_freq": float(min_freq),
            "min_length": min_length,
            "case_sensitive_below": case_sensitive_below,
            "skip_lowercase": skip_lowercase,
            "skip_stop_words": skip_stop_words,
            "exclude": list(exclude),
            "containers": bool(containers),
            "overwrite_ents": overwrite_ents,
            "annotate_ents": annotate_ents,
            "spans_key": spans_key,
        }
        self._kb: Optional[KnowledgeBase] = None
        # (exclude, its normalised forms), made on first use.
        self._exclude_keys: Optional[Tuple[tuple, set]] = None
        # Where the KB comes from: "set" (set_kb: saved with the component),
        # "disk" (mapped from the component's folder), "loader" (kb_loader:
        # not saved) or "shared" (the nel component's: not saved).
        self._kb_source: Optional[str] = None
        self._kb_loader = kb_loader
        self._shared_from: Optional[str] = None
        # A weak reference: the pipeline owns its components, not the reverse.
        self._nlp = weakref.ref(nlp) if nlp is not None else None

    # ----------------------------------------------------------------- KB

    @property
    def labels(self) -> Tuple[str, ...]:
        """The label of the spans found."""
        return (self.cfg["label"],)

    @property
    def kb(self) -> Optional[KnowledgeBase]:
        """The KB the spotter matches against (loaded or shared on first use); None
        when there is none yet."""
        if self._kb_source == "shared":
            return self._shared_linker().kb
        if self._kb is None and self._kb_loader is not None:
            self._kb = self._kb_loader(self.vocab)
            self._kb_source = "loader"
        return self._kb

    def set_kb(self, kb_loader: Callable[[Vocab], KnowledgeBase]) -> None:
        """Set the KB: ``kb_loader(vocab)`` must return a KnowledgeBase. The KB is
        saved with the component by ``to_disk``."""
        if not callable(kb_loader):
            raise ValueError(
                f"set_kb expects a function that takes the vocab and returns a KB, got "
                f"{type(kb_loader).__name__}. E.g. spotter.set_kb(lambda vocab: kb)."
            )
        self._kb = kb_loader(self.vocab)
        self._kb_source = "set"

    def initialize(
        self,
        get_examples: Optional[Callable[[], Iterable[Example]]] = None,
        *,
        nlp: Optional[Language] = None,
        kb_loader: Optional[Callable[[Vocab], KnowledgeBase]] = None,
    ) -> None:
        """Set the KB (``kb_loader``), or share the nel component's if there is none.

        get_examples (Optional[Callable[[], Iterable[Example]]]): Not used (the
            spotter learns nothing).
        nlp (Optional[Language]): The pipeline, to find a nel component in.
        kb_loader (Optional[Callable[[Vocab], KnowledgeBase]]): Loads the KB.
        """
        if nlp is not None:
            self._nlp = weakref.ref(nlp)
        if kb_loader is not None:
            self.set_kb(kb_loader)
        elif self._kb is None and self._kb_loader is None:
            self._share_linker_kb()

    def _share_linker_kb(self) -> bool:
        """Use the KB of the pipeline's nel component (read at every call, so it
        follows nel's set_kb); False when there is none."""
        from ..pipeline import EntityLinker

        nlp = self._nlp() if self._nlp is not None else None
        if nlp is None:
            return False
        for name, component in nlp.pipeline:
            if isinstance(component, EntityLinker):
                self._shared_from = name
                self._kb_source = "shared"
                return True
        return False

    def _shared_linker(self):
        nlp = self._nlp() if self._nlp is not None else None
        if nlp is None or self._shared_from not in nlp.component_names:
            raise ValueError(
                f"The '{self.name}' component shares the KB of the '{self._shared_from}' "
                "component, which is no longer in the pipeline. Give it its own KB with "
                "set_kb() or the kb_loader setting."
            )
        return nlp.get_pipe(self._shared_from)

    def _checked_kb(self) -> InMemoryLookupKB:
        kb = self.kb
        if kb is None and self._share_linker_kb():
            kb = self.kb
        if kb is None:
            raise ValueError(
                f"The '{self.name}' component has no knowledge base. Add a nel component "
                "with a KB to the pipeline (the spotter shares it), call "
                f"nlp.get_pipe('{self.name}').set_kb(kb_loader), or set its kb_loader "
                'setting (e.g. {"@misc": "entity_linker.KBFromFile.v1", "kb_path": ...}).'
            )
        if not isinstance(kb, InMemoryLookupKB):
            raise ValueError(
                f"The '{self.name}' component needs entity_linker's InMemoryLookupKB "
                f"(for its batch lookups), got {type(kb).__name__}."
            )
        if kb.is_empty():
            source = f" (shared with '{self._shared_from}')" if self._kb_source == "shared" else ""
            raise ValueError(
                f"The knowledge base of '{self.name}'{source} is empty. Load one with "
                "set_kb() (or the nel component's set_kb) before processing text."
            )
        return kb

    # ------------------------------------------------------------ process

    def __call__(self, doc: Doc) -> Doc:
        """Find the KB's aliases in one doc and set them as entities (in place).

        doc (Doc): The doc to process.
        RETURNS (Doc): The doc.
        """
        self.set_annotations([doc], self.predict([doc]))
        return doc

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        """Process a stream of docs, ``batch_size`` docs per KB lookup.

        stream (Iterable[Doc]): The docs.
        batch_size (int): Docs per batch.
        YIELDS (Doc): The processed docs, in order.
        """
        error_handler = self.get_error_handler()
        for docs in util.minibatch(stream, size=batch_size):
            try:
                self.set_annotations(docs, self.predict(docs))
                yield from docs
            except Exception as err:
                error_handler(self.name, self, docs, err)

    def predict(self, docs: Sequence[Doc]) -> List[List[Tuple[int, int]]]:
        """The matches of each doc as (start, end) token offsets, without changing
        the docs.

        docs (Sequence[Doc]): The docs.
        RETURNS (List[List[Tuple[int, int]]]): Each doc's matches, by start.
        """
        docs = list(docs)
        if not any(len(doc) for doc in docs):
            return [[] for _ in docs]
        kb = self._checked_kb()
        ngrams = []
        texts: List[str] = []
        for doc in docs:
            attrs = doc.to_array(TOKEN_ATTRS)
            ngrams.append(enumerate_ngrams(doc, attrs.view(numpy.int64), self.cfg))
            _, _, char_starts, char_ends = ngrams[-1]
            if len(char_starts):
                text = doc_text(doc, attrs)
                texts += [text[a:b] for a, b in zip(char_starts.tolist(), char_ends.tolist())]
        owners = numpy.repeat(numpy.arange(len(docs)), [len(item[0]) for item in ngrams])
        starts = numpy.concatenate([item[0] for item in ngrams])
        ends = numpy.concatenate([item[1] for item in ngrams])
        char_lengths = numpy.concatenate([item[3] - item[2] for item in ngrams])
        priors, entity_rows = best_candidates(kb, texts, char_lengths, self.cfg)
        keep = entity_rows >= 0
        if self.cfg["min_prior"] > 0:
            keep &= priors >= self.cfg["min_prior"]
        if self.cfg["min_freq"] > 0:
            freqs = numpy.zeros(len(keep), dtype=numpy.float32)
            freqs[keep] = kb.entity_freqs[entity_rows[keep]]
            frequent = freqs >= self.cfg["min_freq"]
            if self.cfg["containers"] and getattr(kb, "has_relations", False):
                rare = numpy.flatnonzero(keep & ~frequent)
                frequent[rare] = name_containers(kb, docs, owners[rare], starts[rare],
                                                 [texts[i] for i in rare],
                                                 char_lengths[rare], self.cfg)
            keep &= frequent
        # Excluded matches still claim their tokens, so "New York" is not split into "York".
        shown = numpy.ones(len(texts), dtype=bool)
        if self.cfg["exclude"]:
            matched = numpy.flatnonzero(keep)
            shown[matched] = self._excluded(kb, [texts[i] for i in matched]) == 0
        return resolve_matches(docs, owners[keep], starts[keep], ends[keep], priors[keep],
                               shown[keep])

    def _excluded(self, kb: InMemoryLookupKB, texts: List[str]) -> numpy.ndarray:
        """1 where a text is in ``exclude`` (normalised forms if ``normalized``)."""
        if self.cfg["normalized"]:
            normalize = alias_index(kb).normalize
            source = tuple(self.cfg["exclude"])
            if self._exclude_keys is None or self._exclude_keys[0] != source:
                self._exclude_keys = (source, {normalize(text) for text in source})
            keys = self._exclude_keys[1]
            return numpy.array([normalize(text) in keys for text in texts], dtype=numpy.int8)
        excluded = set(self.cfg["exclude"])
        return numpy.array([text in excluded for text in texts], dtype=numpy.int8)

    def set_annotations(self, docs: Sequence[Doc], matches: List[List[Tuple[int, int]]]) -> None:
        """Write the matches of ``predict`` to the docs (``doc.ents`` and/or the span group).

        docs (Sequence[Doc]): The docs, as given to predict.
        matches (List[List[Tuple[int, int]]]): The (start, end) matches of each doc.
        """
        label = self.cfg["label"]
        for doc, doc_matches in zip(docs, matches):
            spans = [Span(doc, start, end, label=label) for start, end in doc_matches]
            if self.cfg["spans_key"] is not None:
                doc.spans[self.cfg["spans_key"]] = spans
            if not self.cfg["annotate_ents"]:
                continue
            if self.cfg["overwrite_ents"] or not doc.ents:
                doc.ents = spans
                continue
            taken = numpy.zeros(len(doc) + 1, dtype=numpy.int64)
            for ent in doc.ents:
                taken[ent.start + 1 : ent.end + 1] = 1
            taken = numpy.cumsum(taken)
            new = [span for span in spans if taken[span.end] == taken[span.start]]
            doc.ents = list(doc.ents) + new

    def score(self, examples: Iterable[Example], **kwargs) -> Dict[str, Any]:
        """Score the spotter's entities against the examples' (see ``scorer``)."""
        return self.scorer(examples, **kwargs) if self.scorer is not None else {}

    # ------------------------------------------------------ serialization

    def _saves_kb(self) -> bool:
        # A KB from a loader or from nel is reloaded from there, not copied.
        return self._kb_source in ("set", "disk") and not self.cfg.get("kb_loader")

    def to_bytes(self, *, exclude: Iterable[str] = SimpleFrozenList()) -> bytes:
        """Serialize the settings (and the KB if it was set with set_kb) to bytes."""
        serialize = {"cfg": lambda: srsly.json_dumps(self.cfg)}
        if self._saves_kb():
            serialize["kb"] = self._kb.to_bytes
        return util.to_bytes(serialize, exclude)

    def from_bytes(self, bytes_data: bytes, *,
                   exclude: Iterable[str] = SimpleFrozenList()) -> "KBSpotter":
        """Load the component from bytes."""
        deserialize = {
            "cfg": lambda b: self.cfg.update(srsly.json_loads(b)),
            "kb": self._kb_from_bytes,
        }
        util.from_bytes(bytes_data, deserialize, exclude)
        return self

    def _kb_from_bytes(self, data: bytes) -> None:
        kb = InMemoryLookupKB(self.vocab, entity_vector_length=1)
        kb.from_bytes(data)
        self._kb, self._kb_source = kb, "disk"

    def to_disk(self, path: Union[str, Path], *,
                exclude: Iterable[str] = SimpleFrozenList()) -> None:
        """Save the settings to a directory, and the KB (as kb/kb.bin) if it was set
        with set_kb; a KB from kb_loader or the nel component is not copied."""
        serialize: Dict[str, Callable[[Path], None]] = {
            "cfg": lambda p: srsly.write_json(p, self.cfg),
        }
        if self._saves_kb():
            serialize["kb"] = lambda p: self._kb.to_disk(p)
        util.to_disk(path, serialize, exclude)

    def from_disk(self, path: Union[str, Path], *,
                  exclude: Iterable[str] = SimpleFrozenList()) -> "KBSpotter":
        """Load the component from a directory; a saved KB is memory-mapped."""
        deserialize: Dict[str, Callable[[Path], None]] = {
            "cfg": lambda p: self.cfg.update(deserialize_config(p)),
            "kb": self._load_kb,
        }
        util.from_disk(path, deserialize, exclude)
        return self

    def _load_kb(self, path: Path) -> None:
        if path.exists():
            kb = InMemoryLookupKB(self.vocab, entity_vector_length=1)
            kb.from_disk(path)
            self._kb, self._kb_source = kb, "disk"
        elif self.cfg.get("kb_loader"):
            # As nel: a loader named in the cfg (e.g. the GeoNames cache).
            loader = registry.resolve({"kb_loader": self.cfg["kb_loader"]})["kb_loader"]
            self._kb_loader = loader
        # Otherwise: the factory's kb_loader, or the nel component's KB, on first use.
