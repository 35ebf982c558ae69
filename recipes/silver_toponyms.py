"""Silver toponym annotations for the NER from a corpus linked to Wikipedia (AIDA).

The toponym corpora are small (LGL: 588 local US articles; TR-News: 118
international ones), and an NER trained on one misses the places the other
names ("Oslo", "Helsinki"). AIDA's 116 Reuters articles have every named
entity linked to Wikipedia; which of them are places is decided with the
GeoNames KB:

* LOC: the mention and its gold title (without a "(disambiguation)" part, or
  the part before a comma: "Portland, Oregon") share a GeoNames candidate that
  is a country, a division or a city of at least ``min_population`` people.
  Demonyms count ("Italian" -> Italy), as in both toponym corpora.
* missing (no loss either way): a place name whose title starts with it or is
  a club ("Liverpool F.C.", "Australia national cricket team"): the corpora
  disagree on metonymy, so the NER is told nothing about these; and a mention
  of a place under a name the KB lacks ("English" -> England, "Zaire"), or
  of a place too small to tell from a person of the same name.
* outside: every other token (people, organisations, text between mentions).
"""

import re
from typing import Iterable, List, Sequence, Set

from spacy.language import Language
from spacy.tokens import Doc, Span

from entity_linker.candidates.generators import NormalizedCandidates
from entity_linker.geonames.metadata import CITY, GeoNamesMetadata
from entity_linker.kb import InMemoryLookupKB

LABEL = "LOC"
MIN_POPULATION = 10_000
_PARENTHESIS = re.compile(r"\s*\([^)]*\)$")
_CLUB_WORDS = {"fc", "f.c.", "afc", "a.f.c.", "ac", "a.c.", "cf", "sc", "rfc", "s.s.c.",
               "team", "club"}


def title_place_names(title: str) -> List[str]:
    """The place names a Wikipedia title may stand for: "Georgia (U.S. state)" ->
    ["Georgia"], "Portland, Oregon" -> ["Portland, Oregon", "Portland"]."""
    base = _PARENTHESIS.sub("", title.replace("_", " ")).strip()
    names = [base] if base else []
    if "," in base:
        names.append(base.split(",", 1)[0].strip())
    return names


def is_metonym(mention: str, title: str) -> bool:
    """A place name standing for an organisation: the title starts with the
    mention ("Chicago Blackhawks") or is a club or team that contains it."""
    mention, title = mention.lower(), title.replace("_", " ").lower()
    if title.startswith(mention + " "):
        return True
    return mention in title and bool(_CLUB_WORDS.intersection(title.split()))


class SilverToponyms:
    """Labels mentions as toponyms with a GeoNames KB and its metadata."""

    def __init__(self, kb: InMemoryLookupKB, metadata: GeoNamesMetadata,
                 min_population: int = MIN_POPULATION) -> None:
        self.kb = kb
        self.metadata = metadata
        self.min_population = min_population
        self._generator = NormalizedCandidates()

    def _candidates(self, texts: Sequence[str]) -> List[Set[int]]:
        """Each text's GeoNames candidates (entity rows)."""
        arrays = self._generator.arrays(self.kb, list(texts))
        rows = [int(row) for row in arrays.entity_rows]
        return [set(rows[arrays.offsets[k] : arrays.offsets[k + 1]]) for k in range(len(texts))]

    def _significant(self, candidates: List[Set[int]]) -> List[Set[int]]:
        """The countries, divisions and cities of at least ``min_population`` people
        among each set of candidates."""
        meta = self.metadata
        return [{row for row in rows if int(meta.kind[row]) != CITY
                 or int(meta.population[row]) >= self.min_population} for rows in candidates]

    def label(self, mentions: Sequence[str], titles: Sequence[str]) -> List[str]:
        """"LOC", "missing" or "O" for each (mention text, gold title) pair."""
        names = [title_place_names(title) for title in titles]
        flat = [name for group in names for name in group]
        any_places = self._candidates(mentions)
        any_title_places = self._by_title(names, self._candidates(flat))
        places = self._significant(any_places)
        title_places = self._significant(any_title_places)
        labels = []
        for k, (mention, title) in enumerate(zip(mentions, titles)):
            if places[k] & title_places[k]:
                labels.append(LABEL)
            elif (any_places[k] & any_title_places[k]  # a small place, or a person
                  or any_title_places[k] and not any_places[k]  # "English" -> England
                  or any_places[k] and is_metonym(mention, title)):
                labels.append("missing")
            else:
                labels.append("O")
        return labels

    @staticmethod
    def _by_title(names: List[List[str]], candidates: List[Set[int]]) -> List[Set[int]]:
        """The union of the candidates of each title's names."""
        flat = iter(candidates)
        result = []
        for group in names:
            union: Set[int] = set()
            for _ in group:
                union |= next(flat)
            result.append(union)
        return result

    def docs(self, nlp: Language, records: Iterable[dict]) -> List[Doc]:
        """Docs (``nlp.make_doc``) with the LOC mentions as entities, metonyms
        missing and all else outside, from AIDA-style records (``text``,
        ``mentions`` with ``start``, ``end``, ``text``, ``gold_title``)."""
        records = list(records)
        mentions = [m for record in records for m in record["mentions"]]
        labels = iter(self.label([m["text"] for m in mentions],
                                 [m.get("gold_title") or "" for m in mentions]))
        docs = []
        for record in records:
            doc = nlp.make_doc(record["text"])
            places: List[Span] = []
            missing: List[Span] = []
            taken: Set[int] = set()
            for mention in record["mentions"]:
                label = next(labels)
                span = doc.char_span(mention["start"], mention["end"], label=LABEL,
                                     alignment_mode="expand")
                if span is None or label == "O" or taken.intersection(range(span.start, span.end)):
                    continue
                taken.update(range(span.start, span.end))
                (places if label == LABEL else missing).append(span)
            doc.set_ents(places, missing=missing, default="outside")
            docs.append(doc)
        return docs
