"""The pipeline side of the service: jobs (texts and, optionally, the mentions
to link) in, linked docs out, run in batches by the batcher.

A text without given mentions goes through the whole pipeline (its ner or
spotter finds the mentions). A text with given mentions is tokenized, its
``doc.ents`` set from the character spans, and run through the pipeline
without the components that set ``doc.ents``, so only the given mentions are
linked.
"""

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple
from urllib.parse import quote

from .errors import RequestError

GEONAMES_LOADER = "entity_linker.GeoNamesKB.v1"
DEFAULT_LABEL = "ENT"  # the label of a given mention without one

# (start, end, label, field): a mention to link, in characters, and the name of
# the request field it came from (for error messages).
Mention = Tuple[int, int, str, str]


# The answer formats a job's docs are rendered in (formats.render_doc): "link"
# and "rel" give each doc's JSON (bytes, compact), "nif" its links as
# [(start, end, kb_id)] for the request's graph (which stays with the handler).
FORMATS = ("link", "rel", "nif")

# What a linking child is sent per job: (format, texts, mentions, alignment).
JobSpec = Tuple[str, List[str], List[Optional[List[Mention]]], str]


@dataclass(eq=False)
class Job:
    """One request's texts, linked together and answered together.

    ``mentions[i]`` is None to find the mentions of ``texts[i]`` with the
    pipeline, or the mentions to link. ``fmt`` names how each linked doc is
    rendered (FORMATS); rendering happens where the docs are, in the linking
    thread or the linking process, so the HTTP side only joins bytes.
    """

    texts: List[str]
    mentions: List[Optional[List[Mention]]]
    fmt: str = "link"
    # How given mentions meet token boundaries: "strict" refuses a span that is
    # not on them (422); "expand" links the tokens covering it (REL, NIF: their
    # gold mentions need not follow spaCy's tokens), the doc's
    # user_data["mention_offsets"] keeping each linked mention's given offsets.
    alignment: str = "strict"
    future: Any = None  # an asyncio.Future, set by the batcher
    abandoned: bool = False  # timed out or the client left: skip it if not started

    @property
    def n_docs(self) -> int:
        return len(self.texts)

    def spec(self) -> JobSpec:
        """What the linking needs of the job (picklable: no future)."""
        return (self.fmt, self.texts, self.mentions, self.alignment)


class LinkService:
    """A loaded pipeline with a ``nel``: links jobs, looks entities up."""

    def __init__(self, nlp, name: str = ""):
        from ..pipeline import EntityLinker

        self.nlp = nlp
        self.name = name
        linkers = [n for n, pipe in nlp.pipeline if isinstance(pipe, EntityLinker)]
        if not linkers:
            raise ValueError("The pipeline has no nel component.")
        self.linker_name = linkers[0]
        self.linker = nlp.get_pipe(self.linker_name)
        self.kb = self.linker.kb
        # Components before the linker that set doc.ents: skipped for given mentions.
        self.ent_setters: List[str] = []
        for pipe_name in nlp.pipe_names:
            if pipe_name == self.linker_name:
                break
            if "doc.ents" in nlp.get_pipe_meta(pipe_name).assigns:
                self.ent_setters.append(pipe_name)
        self.metadata = None
        loader = self.linker.cfg.get("kb_loader") or {}
        if loader.get("@misc") == GEONAMES_LOADER:
            from ..geonames import load_geonames_metadata

            self.metadata = load_geonames_metadata(
                vector_length=loader.get("vector_length", 64))
        self.entity_info = lru_cache(maxsize=65_536)(self._entity_info)

    @classmethod
    def load(cls, path: Optional[str] = None) -> "LinkService":
        """The pipeline at ``path`` (default: the embedded geographic one)."""
        import spacy

        import entity_linker  # noqa: F401  (registers the factory and functions)
        from entity_linker.geonames import load_geo_pipeline

        if path is None:
            return cls(load_geo_pipeline(), name="embedded geo pipeline")
        return cls(spacy.load(Path(path)), name=str(path))

    @property
    def finds_mentions(self) -> bool:
        """Whether the pipeline finds mentions itself (has a ner, a spotter, ...)."""
        return bool(self.ent_setters)

    # ----------------------------------------------------------------- linking

    def run(self, jobs: Sequence[Job]) -> List[Tuple[Job, Any]]:
        """Link jobs in this thread: per job its rendered results (one per text), or
        the RequestError that refused it."""
        return list(zip(jobs, self.link([job.spec() for job in jobs])))

    def link(self, specs: Sequence[JobSpec]) -> List[Any]:
        """Link the jobs' texts in (at most) two ``nlp.pipe`` passes; per job its
        rendered results, or the RequestError that refused it."""
        from .formats import render_doc

        outcome: Dict[int, Any] = {}
        detect: List[Tuple[int, int, str]] = []  # (job index, text index, text)
        given: List[Tuple[int, int, Any]] = []  # (job index, text index, doc)
        for j, (_, texts, mentions_of, alignment) in enumerate(specs):
            try:
                for i, (text, mentions) in enumerate(zip(texts, mentions_of)):
                    if mentions is None:
                        detect.append((j, i, text))
                    else:
                        given.append((j, i, self._doc_with_mentions(text, mentions,
                                                                    alignment)))
            except RequestError as err:
                outcome[j] = err
        results: Dict[int, List[Any]] = {j: [None] * len(spec[1])
                                         for j, spec in enumerate(specs)}
        live_detect = [d for d in detect if d[0] not in outcome]
        live_given = [g for g in given if g[0] not in outcome]
        if live_detect:
            docs = self.nlp.pipe([t for _, _, t in live_detect], batch_size=len(live_detect))
            for (j, i, _), doc in zip(live_detect, docs):
                results[j][i] = render_doc(self, specs[j][0], doc)
        if live_given:
            docs = self.nlp.pipe([d for _, _, d in live_given], batch_size=len(live_given),
                                 disable=self.ent_setters)
            for (j, i, _), doc in zip(live_given, docs):
                results[j][i] = render_doc(self, specs[j][0], doc)
        return [outcome.get(j, results[j]) for j in range(len(specs))]

    def _doc_with_mentions(self, text: str, mentions: List[Mention], alignment: str):
        doc = self.nlp.make_doc(text)
        spans, offsets = [], []
        for start, end, label, where in mentions:  # sorted, not overlapping
            span = doc.char_span(start, end, label=label or DEFAULT_LABEL,
                                 alignment_mode=alignment)
            if span is None or not len(span):
                if alignment == "strict":
                    raise RequestError(422, where, _misaligned(doc, start, end, where),
                                       kind="misaligned_span")
                continue  # only whitespace
            if spans and span.start < spans[-1].end:
                continue  # expanded onto the previous mention's token: linked with it
            spans.append(span)
            offsets.append((start, end))
        doc.ents = spans
        doc.user_data["mention_offsets"] = offsets
        return doc

    # ------------------------------------------------------------------- lookups

    def _entity_info(self, kb_id: str) -> Optional[Dict[str, Any]]:
        """What the KB knows about an entity beyond its id: its name and, for
        GeoNames, its place record. None when it knows nothing."""
        info: Dict[str, Any] = {}
        name = self.kb.get_name(kb_id) if getattr(self.kb, "has_names", False) else ""
        if name:
            info["name"] = name
        if self.metadata is not None:
            record = self.metadata.get(kb_id)
            if record is not None:
                info.update({
                    "name": info.get("name") or record.name, "kind": record.kind,
                    "country": record.country, "country_code": record.country_code,
                    "admin1": record.admin1, "latitude": finite(record.latitude),
                    "longitude": finite(record.longitude), "population": record.population,
                })
        return info or None

    def entity_iri(self, kb_id: str) -> str:
        """An IRI for a KB id: GeoNames, Wikidata, else a URN of this linker."""
        if self.metadata is not None and kb_id.isdigit():
            return f"http://sws.geonames.org/{kb_id}/"
        if re.fullmatch(r"Q[1-9][0-9]*", kb_id):
            return f"http://www.wikidata.org/entity/{kb_id}"
        return f"urn:entity-linker:{quote(kb_id, safe='')}"

    def describe_entity(self, kb_id: str) -> Optional[Dict[str, Any]]:
        """GET /kb/entity/{id}: None when the KB does not have it."""
        rows = self.kb.get_entity_rows([kb_id])
        row = int(rows[0])
        if row < 0:
            return None
        parents = self.kb.get_parents(kb_id) if hasattr(self.kb, "get_parents") else []
        return {
            "id": kb_id,
            "freq": float(self.kb.entity_freqs[row]),
            "name": self.kb.get_name(kb_id) if hasattr(self.kb, "get_name") else "",
            "metadata": self.entity_info(kb_id),
            "parents": [{"id": p, "name": self._name(p)} for p in parents],
        }

    def describe_alias(self, text: str, limit: int = 50) -> Dict[str, Any]:
        """GET /kb/alias/{text}: the exact candidates with priors (and, with an alias
        index, the candidates of the normalised form the linker also reads)."""
        exact = [{"id": c.entity_, "prior": float(c.prior_prob), "name": self._name(c.entity_)}
                 for c in self.kb.get_alias_candidates(text)]
        exact.sort(key=lambda c: -c["prior"])
        answer: Dict[str, Any] = {"alias": text, "candidates": exact[:limit]}
        if getattr(self.kb, "alias_index", None) is not None:
            offsets, rows, priors, _ = self.kb.lookup_normalized([text], by_prior=True)
            normalized = []
            for row, prior in zip(rows[offsets[0]:offsets[1]], priors[offsets[0]:offsets[1]]):
                kb_id = self.kb.get_entity_id(int(row))
                normalized.append({"id": kb_id, "prior": float(prior),
                                   "name": self._name(kb_id)})
            normalized.sort(key=lambda c: -c["prior"])
            answer["normalized"] = normalized[:limit]
        return answer

    def _name(self, kb_id: str) -> str:
        info = self.entity_info(kb_id)
        return (info or {}).get("name", "")


def finite(value: Optional[float]) -> Optional[float]:
    """A float for JSON: None for NaN and infinities (JSON has neither)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _misaligned(doc, start: int, end: int, where: str) -> str:
    """Why a character span is not a mention: the token boundaries around it."""
    starts = [t.idx for t in doc]
    ends = [t.idx + len(t) for t in doc]
    near_start = max((s for s in starts if s <= start), default=0)
    near_end = min((e for e in ends if e >= end), default=len(doc.text))
    return (f"{where}: characters {start}-{end} ({doc.text[start:end]!r}) do not align "
            f"with token boundaries; the tokens around them span {near_start}-{near_end} "
            f"({doc.text[near_start:near_end]!r}).")
