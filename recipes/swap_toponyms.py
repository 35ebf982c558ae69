"""Toponym swapping: copies of the NER's training docs whose toponyms are other
places of the same kind.

A toponym corpus names a few hundred places many times (TR-News: Turkey,
Aleppo, Edmonton), so an NER trained on it learns those names more than the
contexts places stand in, and misses the places another corpus names. Each
copy replaces a toponym written as its GeoNames name ("Paris", "PARIS", "Laurel
County"; not demonyms or other aliases) with probability ``rate`` by the name
of a place of the same kind (city, county, state, country) drawn uniformly
from the KB's places of at least ``min_population`` people written in Latin
script, in the original's case: "flights to Paris were cancelled" becomes
"flights to Tiszaújváros were cancelled". Mention replacement, as in Dai &
Adel (2020), "An Analysis of Simple Data Augmentation for Named Entity
Recognition".
"""

import random
import unicodedata
from typing import Dict, List, Optional, Sequence

from spacy.language import Language
from spacy.tokens import Doc

from entity_linker.geonames.metadata import CITY, COUNTRY, COUNTY, STATE, GeoNamesMetadata

KINDS = (CITY, COUNTY, STATE, COUNTRY)
MIN_POPULATION = 1_000


def _latin(name: str) -> bool:
    """Whether every letter of a name is Latin ("Zürich" yes, "Москва" no)."""
    return all(not ch.isalpha() or unicodedata.name(ch, "").startswith("LATIN")
               for ch in name)


def _same_case(name: str, like: str) -> str:
    """``name`` in upper case when ``like`` is written in upper case (datelines)."""
    return name.upper() if like.isupper() and any(ch.isalpha() for ch in like) else name


class ToponymSwapper:
    """Makes copies of annotated docs with their toponyms swapped.

    metadata: the GeoNames KB's metadata (each entity's name, kind, population).
    """

    def __init__(self, metadata: GeoNamesMetadata, rate: float = 0.5,
                 min_population: int = MIN_POPULATION):
        self.metadata = metadata
        self.rate = rate
        self.names: Dict[int, List[str]] = {}
        for kind in KINDS:
            rows = [int(row) for row in (metadata.kind == kind).nonzero()[0]
                    if int(metadata.population[row]) >= min_population]
            self.names[kind] = sorted({name for name in map(metadata.name, rows)
                                       if name and _latin(name)})

    def _replacement(self, kb_id: str, text: str, rng: random.Random) -> Optional[str]:
        """Another place's name for a toponym written as its own place's name."""
        rows = self.metadata.rows([kb_id]) if kb_id.isdigit() else []
        if not len(rows) or rows[0] < 0:
            return None
        row = int(rows[0])
        names = self.names.get(int(self.metadata.kind[row]))
        if not names or text.casefold() != self.metadata.name(row).casefold():
            return None
        return _same_case(rng.choice(names), text)

    def swapped(self, nlp: Language, doc: Doc, rng: random.Random) -> Doc:
        """A copy of ``doc`` with each swappable toponym replaced with
        probability ``rate``; the other tokens and entities are unchanged."""
        words: List[str] = []
        spaces: List[bool] = []
        ents: List[str] = []
        position = 0
        for ent in doc.ents:
            for token in doc[position:ent.start]:
                words.append(token.text)
                spaces.append(bool(token.whitespace_))
                ents.append("O")
            name = self._replacement(ent.kb_id_, ent.text, rng) \
                if rng.random() < self.rate else None
            if name is None:
                tokens = [(t.text, bool(t.whitespace_)) for t in ent]
            else:
                new = nlp.make_doc(name)
                tokens = [(t.text, bool(t.whitespace_)) for t in new]
                tokens[-1] = (tokens[-1][0], bool(ent[-1].whitespace_))
            for i, (text, space) in enumerate(tokens):
                words.append(text)
                spaces.append(space)
                ents.append(("B-" if i == 0 else "I-") + ent.label_)
            position = ent.end
        for token in doc[position:]:
            words.append(token.text)
            spaces.append(bool(token.whitespace_))
            ents.append("O")
        return Doc(nlp.vocab, words=words, spaces=spaces, ents=ents)

    def copies(self, nlp: Language, docs: Sequence[Doc], n: int, seed: int) -> List[Doc]:
        """``n`` swapped copies of every doc (a fixed seed, the same copies)."""
        rng = random.Random(seed)
        return [self.swapped(nlp, doc, rng) for _ in range(n) for doc in docs]
