"""A general-purpose spaCy NER (e.g. en_core_web_sm, trained on OntoNotes, on
neither geo corpus) in front of a geo ``nel`` trained on one corpus, tested
end to end on the other: the anchor for the toponym NER of recipes/train_geo.py.

The nel comes from a pipeline saved by

    python -m recipes.train_geo --train lgl --test trnews --skip-ner --seed S \\
        --select-threshold ... --output DIR

(its threshold and weights chosen on the dev split of its training corpus).
The model's entities with the chosen labels become the nel's mentions, and
the kb_spotter (min_freq 10M, containers, as the geo recipe's grid) may fill
the gaps: which label set and whether the spotter is used are chosen on the
same dev split (``recipes.train_geo``'s: the seed's shuffle, 10%) by link F,
then the other corpus is scored. With ``--gold-labels`` the script also says
where each corpus's gold toponyms fall among the model's entities (same span
and label, inside an ORG, ...): how the two corpora's annotations differ.

    python -m benchmarks.eval_geo_spacy_ner --model en_core_web_sm --nel DIR \\
        --train lgl --seed 0 [--gold-labels]

The model is not a dependency of the project: install it first (spaCy's
``python -m spacy download en_core_web_sm`` needs the network; a wheel of it
works too).
"""

import argparse
import itertools
import json
import random
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import spacy
from spacy.language import Language
from spacy.tokens import Doc

import entity_linker  # noqa: F401  (registers kb_spotter and nel)
from entity_linker.evaluation import end_to_end_scores

from .datasets.geo import CORPORA, load_corpus, to_docs

LABEL_SETS = (("GPE", "LOC"), ("GPE", "LOC", "FAC"), ("GPE", "LOC", "NORP"),
              ("GPE", "LOC", "FAC", "NORP"))
SPOTTER = {"label": "LOC", "min_freq": 1e7, "containers": True}
Spans = List[List[Tuple[int, int, str]]]


def model_spans(model: Language, docs: Sequence[Doc]) -> Spans:
    """(start char, end char, label) of the model's entities, per doc."""
    return [[(e.start_char, e.end_char, e.label_) for e in doc.ents]
            for doc in model.pipe((d.text for d in docs), batch_size=64)]


def link(nlp: Language, docs: Sequence[Doc], spans: Spans, labels: Sequence[str],
         with_spotter: bool) -> Dict[str, float]:
    """End-to-end link and span P/R/F of the nel on the model's entities
    (``end_to_end_scores``)."""
    inputs = []
    for gold, doc_spans in zip(docs, spans):
        doc = nlp.make_doc(gold.text)
        ents = [doc.char_span(s, e, label="LOC", alignment_mode="contract")
                for s, e, label in doc_spans if label in labels]
        doc.ents = [ent for ent in ents if ent is not None]
        doc = nlp.get_pipe("sentencizer")(doc)
        if with_spotter:
            doc = nlp.get_pipe("spotter")(doc)
        inputs.append(doc)
    return end_to_end_scores(docs, list(nlp.get_pipe("nel").pipe(inputs)))


def gold_labels(docs: Sequence[Doc], spans: Spans) -> Counter:
    """Where each gold toponym falls among the model's entities: the same span
    (by label group), inside a longer entity (by its label), or neither."""
    places = {"GPE", "LOC", "FAC"}
    counts: Counter = Counter()
    for gold, doc_spans in zip(docs, spans):
        for ent in gold.ents:
            key = "neither"
            for start, end, label in doc_spans:
                if (start, end) == (ent.start_char, ent.end_char):
                    key = "same span, " + ("GPE/LOC/FAC" if label in places else label)
                    break
                if start <= ent.start_char and ent.end_char <= end:
                    key = f"inside {label}"
                    break
            counts[key] += 1
    return counts


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="an installed spaCy pipeline with ner")
    parser.add_argument("--nel", type=Path, required=True,
                        help="a pipeline saved by recipes.train_geo --skip-ner")
    parser.add_argument("--train", choices=list(CORPORA), required=True,
                        help="the corpus the nel was trained on (its dev split chooses)")
    parser.add_argument("--seed", type=int, required=True, help="the nel's train_geo seed")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/geo"))
    parser.add_argument("--gold-labels", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    test = next(name for name in CORPORA if name != args.train)
    model = spacy.load(args.model, exclude=["lemmatizer"])
    nlp = spacy.load(args.nel)
    nlp.add_pipe("kb_spotter", name="spotter", before="nel", config=SPOTTER)
    train_docs = to_docs(nlp, load_corpus(args.data, args.train))
    random.Random(args.seed).shuffle(train_docs)
    dev = train_docs[:max(10, len(train_docs) // 10)]
    test_docs = to_docs(nlp, load_corpus(args.data, test))
    dev_spans, test_spans = model_spans(model, dev), model_spans(model, test_docs)
    rows = []
    for labels, with_spotter in itertools.product(LABEL_SETS, (False, True)):
        rows.append({"labels": "+".join(labels), "spotter": with_spotter,
                     "dev": link(nlp, dev, dev_spans, labels, with_spotter),
                     "test": link(nlp, test_docs, test_spans, labels, with_spotter)})
    # Ties keep the first (fewer labels, no spotter).
    chosen = max(range(len(rows)), key=lambda i: (round(rows[i]["dev"]["link_f"], 4), -i))
    for i, row in enumerate(rows):
        cells = [f"{part} span P/R {row[part]['span_p']:.3f}/{row[part]['span_r']:.3f} "
                 f"link P/R/F {row[part]['link_p']:.3f}/{row[part]['link_r']:.3f}/"
                 f"{row[part]['link_f']:.3f}" for part in ("dev", "test")]
        mark = "  <- chosen on dev" if i == chosen else ""
        print(f"{args.train} -> {test} seed {args.seed} {row['labels']:<18} "
              f"{'spotter' if row['spotter'] else '-':<8} {' | '.join(cells)}{mark}")
    result = {"model": args.model, "train": args.train, "test": test, "seed": args.seed,
              "rows": rows, "chosen": rows[chosen]}
    if args.gold_labels:
        result["gold_labels"] = {}
        for name, docs, spans in ((args.train, train_docs, None), (test, test_docs, test_spans)):
            counts = gold_labels(docs, spans if spans is not None else model_spans(model, docs))
            total = sum(counts.values())
            result["gold_labels"][name] = dict(counts)
            print(f"{name}: {total} gold toponyms")
            for key, n in counts.most_common():
                print(f"  {key:<28} {n:>5}  {n / total:.3f}")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
