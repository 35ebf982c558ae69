"""A seeded synthetic entity-linking task where context decides.

Entities belong to topics; each alias is shared by entities of different
topics, and its prior favours one of them, so the prior alone is often wrong.
Each sentence mentions one alias among words of its entity's topic. Used by
the tests and by benchmarks/bench_el.py; the same seed gives the same data.
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


def make_context_task(
    nlp: Language,
    *,
    n_entities: int = 2000,
    n_aliases: int = 300,
    n_topics: int = 50,
    words_per_topic: int = 20,
    n_fillers: int = 200,
    n_train: int = 2000,
    n_test: int = 1500,
    vector_length: int = 64,
    seed: int = 0,
) -> Tuple[InMemoryLookupKB, List[Example], List[Example]]:
    """A harder task where local context decides (issue 12's learning-curve task).

    Every entity has a topic and a secondary topic; its vector is the topic's
    vector + 0.5 x the secondary topic's + noise. Entities are spread over the
    aliases (about n_entities / n_aliases candidates each) with priors
    proportional to 1 / rank, and the gold entity is drawn from that prior, so
    the prior alone is right about 40% of the time. A doc has 3 sentences; two
    of them mention different entities, each among 3 words of its entity's
    topic, 1 of the secondary topic, 1 word of a distractor topic and 4-8
    filler words; the third holds filler words only. The doc-wide words thus
    mix two entities' topics: only the mention's own sentence tells them apart.
    """
    rng = numpy.random.default_rng(seed)
    topic_words = [[f"t{t}w{i}" for i in range(words_per_topic)] for t in range(n_topics)]
    fillers = [f"f{i}" for i in range(n_fillers)]
    topic_vectors = rng.normal(size=(n_topics, vector_length)).astype("float32")
    topics = rng.integers(n_topics, size=n_entities)
    secondary = (topics + rng.integers(1, n_topics, size=n_entities)) % n_topics
    vectors = (topic_vectors[topics] + 0.5 * topic_vectors[secondary]
               + rng.normal(scale=0.3, size=(n_entities, vector_length))).astype("float32")
    entity_ids = [f"E{i}" for i in range(n_entities)]
    freqs = rng.integers(1, 100, size=n_entities).astype("float32")
    # Every alias gets at least two candidates; the rest are spread at random.
    owner = numpy.concatenate([numpy.repeat(numpy.arange(n_aliases), 2),
                               rng.integers(n_aliases, size=n_entities - 2 * n_aliases)])
    candidates = numpy.argsort(owner, kind="stable")
    counts = numpy.bincount(owner, minlength=n_aliases)
    offsets = numpy.concatenate([[0], numpy.cumsum(counts)])
    priors = numpy.empty(n_entities, dtype="float64")
    for a in range(n_aliases):
        weights = 1.0 / numpy.arange(1, counts[a] + 1)
        priors[offsets[a]:offsets[a + 1]] = weights / weights.sum()
    alias_texts = [f"Name{a}" for a in range(n_aliases)]
    kb = InMemoryLookupKB.from_arrays(
        nlp.vocab, entity_ids, freqs, vectors, alias_texts, offsets, candidates,
        (priors * 0.999).astype("float32"),  # the KB wants sums <= 1 after rounding
    )

    def mention_sentence(alias: int, entity: int) -> List[str]:
        words = [str(w) for w in rng.choice(topic_words[topics[entity]], size=3)]
        words.append(str(rng.choice(topic_words[secondary[entity]])))
        words.append(str(rng.choice(topic_words[int(rng.integers(n_topics))])))
        words.extend(str(w) for w in rng.choice(fillers, size=int(rng.integers(4, 9))))
        rng.shuffle(words)
        position = int(rng.integers(0, len(words) + 1))
        return words[:position] + [alias_texts[alias]] + words[position:] + ["."]

    def document() -> Example:
        sentences, mentions = [], []
        used = set()
        for _ in range(2):
            while True:
                alias = int(rng.integers(n_aliases))
                start, end = int(offsets[alias]), int(offsets[alias + 1])
                row = int(rng.choice(numpy.arange(start, end),
                                     p=priors[start:end] / priors[start:end].sum()))
                if int(candidates[row]) not in used:
                    break
            entity = int(candidates[row])
            used.add(entity)
            sentences.append(mention_sentence(alias, entity))
            mentions.append(entity)
        sentences.insert(int(rng.integers(0, 3)),
                         [str(w) for w in rng.choice(fillers, size=int(rng.integers(5, 10)))]
                         + ["."])
        words, sent_starts, ents = [], [], []
        mention_iter = iter(mentions)
        for sentence in sentences:
            for i, word in enumerate(sentence):
                sent_starts.append(i == 0)
                if word.startswith("Name"):
                    ents.append((len(words), next(mention_iter)))
                words.append(word)
        reference = Doc(nlp.vocab, words=words, sent_starts=sent_starts)
        predicted = Doc(nlp.vocab, words=words, sent_starts=sent_starts)
        reference.ents = [Span(reference, i, i + 1, label="ENT", kb_id=entity_ids[e])
                          for i, e in ents]
        return Example(predicted, reference)

    train = [document() for _ in range(n_train)]
    test = [document() for _ in range(n_test)]
    return kb, train, test
