"""A seeded synthetic entity-linking task where context decides.

Entities belong to topics; each alias is shared by entities of different
topics, and its prior favours one of them, so the prior alone is often wrong.
Each sentence mentions one alias among words of its entity's topic. Used by
the tests and by bin/bench_el.py; the same seed gives the same data.
"""

from typing import List, Tuple

import numpy
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example

from .kb import InMemoryLookupKB


def make_task(
    nlp: Language,
    *,
    n_topics: int = 8,
    n_aliases: int = 40,
    candidates_per_alias: int = 3,
    words_per_topic: int = 30,
    n_train: int = 400,
    n_test: int = 200,
    vector_length: int = 32,
    seed: int = 0,
) -> Tuple[InMemoryLookupKB, List[Example], List[Example]]:
    """Build (kb, train examples, test examples) with gold entities and kb ids."""
    rng = numpy.random.default_rng(seed)
    topic_words = [[f"t{t}w{i}" for i in range(words_per_topic)] for t in range(n_topics)]
    topic_vectors = rng.normal(size=(n_topics, vector_length)).astype("float32")
    entity_ids, entity_topics, vectors, freqs = [], [], [], []
    alias_texts, offsets, candidates, priors = [], [0], [], []
    for a in range(n_aliases):
        topics = rng.choice(n_topics, size=candidates_per_alias, replace=False)
        weights = rng.dirichlet(numpy.ones(candidates_per_alias) * 0.5) * 0.95
        for topic in topics:
            entity_ids.append(f"E{len(entity_ids)}")
            entity_topics.append(int(topic))
            noise = rng.normal(scale=0.3, size=vector_length).astype("float32")
            vectors.append(topic_vectors[topic] + noise)
            freqs.append(float(rng.integers(1, 100)))
            candidates.append(len(entity_ids) - 1)
        alias_texts.append(f"Name{a}")
        priors.extend(weights.tolist())
        offsets.append(len(candidates))
    kb = InMemoryLookupKB.from_arrays(
        nlp.vocab, entity_ids, freqs, numpy.asarray(vectors), alias_texts, offsets,
        candidates, priors,
    )

    def sentence() -> Example:
        a = int(rng.integers(n_aliases))
        # Gold entity: uniform over the alias's candidates, not by prior.
        entity = int(rng.integers(offsets[a], offsets[a + 1]))
        words = [str(w) for w in rng.choice(topic_words[entity_topics[entity]], size=8)]
        position = int(rng.integers(0, len(words) + 1))
        words = words[:position] + [alias_texts[a]] + words[position:] + ["."]
        doc = Doc(nlp.vocab, words=words)
        predicted = Doc(nlp.vocab, words=words)
        doc.ents = [Span(doc, position, position + 1, label="ENT",
                         kb_id=entity_ids[entity])]
        return Example(predicted, doc)

    train = [sentence() for _ in range(n_train)]
    test = [sentence() for _ in range(n_test)]
    return kb, train, test
