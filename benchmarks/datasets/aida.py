"""The AIDA-CoNLL development half (../shared/data/aida_a) as KB contents and spaCy Examples.

The data stays in ../shared/data (see its README, section aida_a): 116 Reuters
articles of 1996, each a JSON line with ``id``, ``text`` (tokens joined by single
spaces) and ``mentions`` (``start``/``end`` character offsets, ``text``,
``gold_wiki_id``, ``gold_title``, ``candidates``: ``wiki_id``, ``title``,
``inCount``). This module only reads it:

* ``load(path)``: the documents, as dicts;
* ``build_kb(docs, vector_fn)``: the KB contents as arrays. Entities = every
  candidate wiki id (as a str), freq = its largest ``inCount``, vector =
  ``vector_fn(title with "_" -> " ")`` (a one-hot when that is all zeros);
  aliases = the distinct mention texts, each with the union of the candidates
  listed for its mentions, prior = inCount / sum of the alias's inCounts (uniform
  when they are all 0), times 0.999 so that each alias's priors sum to <= 1 after
  float32 rounding;
* ``to_examples(vocab, docs)``: spaCy Examples, predicted Doc = the text's
  space-separated tokens, reference Doc = the same with the mentions as entities
  (label "ENT", kb_id = the gold wiki id, also when it is not among the mention's
  candidates); mentions overlapping an earlier one are skipped;
* ``describe(docs)``: counts and oddities of the data.

benchmarks/bench_el.py (``--datasets aida``) uses it; run this file for the counts:

    python -m benchmarks.datasets.aida [--path /work/shared/data/aida_a/aida_a.jsonl]
"""

import argparse
import json
import zlib
from collections import defaultdict
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import numpy
from spacy.tokens import Doc
from spacy.training import Example
from spacy.vocab import Vocab

DEFAULT_PATH = Path("/work/shared/data/aida_a/aida_a.jsonl")
LABEL = "ENT"
PRIOR_SCALE = 0.999  # keeps each alias's float32 priors summing to <= 1


def load(path) -> List[dict]:
    """The documents of a JSON-lines file, in file order."""
    with open(path, encoding="utf8") as file:
        return [json.loads(line) for line in file if line.strip()]


def entity_text(title: str) -> str:
    """A candidate title as text for the entity vector ("Rugby_union" -> "Rugby union")."""
    return title.replace("_", " ")


def build_kb(docs: List[dict],
             vector_fn: Callable[[str], numpy.ndarray]) -> Tuple[Dict[str, object], int]:
    """(KB contents as arrays, keys as bench_el.KBSpec's fields; #zero vectors replaced).

    vector_fn: entity text -> float32 vector (e.g. ``lambda t: hashed_bow(t, 64)``).
    Entities are in order of first appearance, each alias's candidates too.
    """
    freqs: Dict[int, int] = {}
    titles: Dict[int, str] = {}
    alias_counts: Dict[str, Dict[int, int]] = {}  # alias -> {wiki id: inCount}, ordered
    for doc in docs:
        for mention in doc["mentions"]:
            cands = alias_counts.setdefault(mention["text"], {})
            for cand in mention["candidates"]:
                wid, count = int(cand["wiki_id"]), int(cand["inCount"])
                freqs[wid] = max(freqs.get(wid, 0), count)
                titles.setdefault(wid, cand["title"])
                cands[wid] = max(cands.get(wid, 0), count)
    wiki_ids = list(freqs)
    row = {wid: i for i, wid in enumerate(wiki_ids)}
    aliases = list(alias_counts)
    offsets, candidates, priors = [0], [], []
    for alias in aliases:
        cands = alias_counts[alias]
        total = sum(cands.values())
        for wid, count in cands.items():
            candidates.append(row[wid])
            priors.append(PRIOR_SCALE * (count / total if total > 0 else 1.0 / len(cands)))
        offsets.append(len(candidates))
    offsets_a = numpy.asarray(offsets, dtype=numpy.int64)
    priors_a = numpy.asarray(priors, dtype=numpy.float32)
    sums = numpy.add.reduceat(priors_a, offsets_a[:-1]) if len(aliases) else priors_a
    if len(sums) and float(sums.max()) > 1.0:
        raise AssertionError(f"priors of an alias sum to {float(sums.max())} > 1")
    vectors = []
    n_zero = 0
    for wid in wiki_ids:
        text = entity_text(titles[wid])
        vector = numpy.array(vector_fn(text), dtype=numpy.float32)
        if not vector.any():
            # A hashed bag of words is 0 when its words cancel in one bucket (about 1 in
            # 128 two-word titles at L=64); a zero vector makes spaCy's cosine 0/0 = NaN
            # (NaN scores win its argmax, NaN gradients in training). Use a one-hot.
            n_zero += 1
            vector[zlib.crc32(text.lower().encode("utf8")) % len(vector)] = 1.0
        vectors.append(vector)
    return {
        "entity_ids": [str(w) for w in wiki_ids],
        "names": [entity_text(titles[w]) for w in wiki_ids],
        "freqs": numpy.asarray([freqs[w] for w in wiki_ids], dtype=numpy.float32),
        "vectors": numpy.stack(vectors) if vectors else numpy.zeros((0, 0), numpy.float32),
        "alias_texts": aliases,
        "offsets": offsets_a,
        "candidates": numpy.asarray(candidates, dtype=numpy.int64),
        "priors": priors_a,
    }, n_zero


def make_doc(vocab: Vocab, text: str) -> Doc:
    """The text's space-separated tokens; ``doc.text == text`` (the texts end with a space)."""
    words = text.split(" ")
    trailing = bool(words) and words[-1] == ""
    if trailing:
        words = words[:-1]
    if any(word == "" for word in words):
        raise ValueError(f"double space in {text[:60]!r}...: tokens are single-space separated")
    spaces = [True] * len(words)
    if words and not trailing:
        spaces[-1] = False
    return Doc(vocab, words=words, spaces=spaces)


def to_examples(vocab: Vocab, docs: List[dict]) -> Tuple[List[Example], Dict[str, int]]:
    """(Examples, counts); counts: mentions kept, skipped (overlap), span text changed."""
    examples = []
    counts = {"mentions": 0, "skipped_overlap": 0, "span_text_differs": 0}
    for record in docs:
        predicted = make_doc(vocab, record["text"])
        reference = make_doc(vocab, record["text"])
        spans = []
        taken = numpy.zeros(len(reference), dtype=bool)
        for mention in record["mentions"]:
            span = reference.char_span(mention["start"], mention["end"], label=LABEL,
                                       kb_id=str(mention["gold_wiki_id"]),
                                       alignment_mode="expand")
            if span is None:
                raise ValueError(f"{record['id']}: cannot align mention {mention['start']}:"
                                 f"{mention['end']} {mention['text']!r}")
            if taken[span.start:span.end].any():
                counts["skipped_overlap"] += 1
                continue
            taken[span.start:span.end] = True
            counts["span_text_differs"] += span.text != mention["text"]
            spans.append(span)
        reference.ents = sorted(spans, key=lambda s: s.start)
        counts["mentions"] += len(spans)
        examples.append(Example(predicted, reference))
    return examples, counts


def describe(docs: List[dict]) -> Dict[str, object]:
    """Counts and oddities: gold not among the candidates, aliases whose mentions list
    different candidates, zero inCounts, prior-only accuracy per mention."""
    mentions = [m for d in docs for m in d["mentions"]]
    lists: Dict[str, set] = defaultdict(set)
    gold_not_in_cands = []
    prior_hits = 0.0
    zero_total = 0
    for m in mentions:
        ids = [c["wiki_id"] for c in m["candidates"]]
        lists[m["text"]].add(tuple(sorted(ids)))
        if m["gold_wiki_id"] not in ids:
            gold_not_in_cands.append(f"{m['text']} -> {m['gold_title']} ({m['gold_wiki_id']})")
        counts = [c["inCount"] for c in m["candidates"]]
        if counts and max(counts) > 0:
            best = [c["wiki_id"] for c in m["candidates"] if c["inCount"] == max(counts)]
            prior_hits += (m["gold_wiki_id"] in best) / len(best)
        elif counts:
            zero_total += 1
            prior_hits += (m["gold_wiki_id"] in ids) / len(ids)
    all_ids = {c["wiki_id"] for m in mentions for c in m["candidates"]}
    return {
        "docs": len(docs),
        "tokens": sum(len(d["text"].split()) for d in docs),
        "mentions": len(mentions),
        "mentions_without_candidates": sum(not m["candidates"] for m in mentions),
        "mentions_gold_not_in_candidates": len(gold_not_in_cands),
        "gold_not_in_candidates": gold_not_in_cands,
        "mentions_gold_not_in_kb": sum(m["gold_wiki_id"] not in all_ids for m in mentions),
        "mentions_all_candidates_zero_incount": zero_total,
        "mentions_some_candidate_zero_incount": sum(
            any(c["inCount"] == 0 for c in m["candidates"]) for m in mentions),
        "aliases": len(lists),
        "aliases_with_differing_candidate_lists": sum(len(v) > 1 for v in lists.values()),
        "mentions_of_those_aliases": sum(len(lists[m["text"]]) > 1 for m in mentions),
        "entities": len(all_ids),
        "per_mention_prior_accuracy": prior_hits / len(mentions) if mentions else 0.0,
        "candidates_per_mention": (sum(len(m["candidates"]) for m in mentions) / len(mentions)
                                   if mentions else 0.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path, default=DEFAULT_PATH)
    args = parser.parse_args()
    docs = load(args.path)
    print(json.dumps(describe(docs), indent=1))


if __name__ == "__main__":
    main()
