"""Precision/recall of the ``kb_spotter`` mention spans against gold toponyms.

On the LGL and TR-News corpora of ../shared/data/geo, with the GeoNames KB
(its alias index is built in memory when the cached KB has none), each
spotter configuration and the shipped NER (the ``entity-linker link``
pipeline, ``nel`` disabled) find mention spans in the raw texts. Reported
per corpus: exact-span P/R/F (same characters as a gold toponym), overlap
P/R/F (a predicted span counts as correct if it overlaps a gold span, a gold
span as found if a predicted one overlaps it) and docs/s (tokenizer
included, KB loading excluded).

    python -m benchmarks.eval_spotter --data ../shared/data/geo \
        --output benchmarks/results/spotter_results.json
"""

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy
import spacy

import entity_linker  # noqa: F401  (registers kb_spotter and nel)
from entity_linker.cli.link import load_pipeline
from entity_linker.geonames import load_geonames_kb

from .datasets.geo import CORPORA, load_corpus

# Spotter settings compared (besides the defaults of the factory).
# Month and day names: GeoNames has places called "March", "Friday", ...
CALENDAR = ["January", "February", "March", "April", "May", "June", "July", "August",
            "September", "October", "November", "December", "Monday", "Tuesday",
            "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
SPOTTER_CONFIGS: Dict[str, dict] = {
    "spotter (defaults)": {},
    "spotter, exact aliases": {"normalized": False},
    "spotter, min_freq 1k": {"min_freq": 1000.0},
    "spotter, min_freq 10k": {"min_freq": 10000.0},
    "spotter, min_freq 10k, exclude calendar": {"min_freq": 10000.0, "exclude": CALENDAR},
    "spotter, min_freq 100k, exclude calendar": {"min_freq": 100000.0, "exclude": CALENDAR},
}
Spans = List[Tuple[int, int]]
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def span_scores(predicted: Sequence[Spans], gold: Sequence[Spans]) -> Dict[str, float]:
    """Exact-span and overlap P/R/F over all docs."""
    n_pred = sum(len(spans) for spans in predicted)
    n_gold = sum(len(spans) for spans in gold)
    exact = overlap_pred = overlap_gold = 0
    for pred_spans, gold_spans in zip(predicted, gold):
        exact += len(set(pred_spans) & set(gold_spans))
        overlap_pred += sum(any(s < ge and gs < e for gs, ge in gold_spans) for s, e in pred_spans)
        overlap_gold += sum(any(s < ge and gs < e for s, e in pred_spans) for gs, ge in gold_spans)
    scores = {"n_predicted": n_pred, "n_gold": n_gold}
    for kind, tp_pred, tp_gold in (("exact", exact, exact),
                                   ("overlap", overlap_pred, overlap_gold)):
        p = tp_pred / n_pred if n_pred else 0.0
        r = tp_gold / n_gold if n_gold else 0.0
        scores[f"{kind}_p"] = p
        scores[f"{kind}_r"] = r
        scores[f"{kind}_f"] = 2 * p * r / (p + r) if p + r else 0.0
    return scores


def run(nlp, texts: List[str], repeats: int) -> Tuple[List[Spans], float]:
    """Predicted entity spans (characters) and the best docs/s of ``repeats`` runs."""
    best = float("inf")
    predicted: List[Spans] = []
    for _ in range(repeats):
        start = time.perf_counter()
        docs = list(nlp.pipe(texts, batch_size=64))
        best = min(best, time.perf_counter() - start)
        predicted = [[(ent.start_char, ent.end_char) for ent in doc.ents] for doc in docs]
    return predicted, len(texts) / best


def spotter_pipeline(kb, settings: dict):
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    spotter = nlp.add_pipe("kb_spotter", config={"label": "LOC", **settings})
    spotter.set_kb(lambda vocab: kb)
    return nlp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/geo"))
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "spotter_results.json")
    parser.add_argument("--repeats", type=int, default=2, help="timing runs (best kept)")
    args = parser.parse_args()
    if not (args.data / "load_geo.py").exists():
        print(f"Skipped: no geo data at {args.data} (see ../shared/data/README.md).")
        return
    kb = load_geonames_kb()
    if kb.alias_index is None:
        start = time.perf_counter()
        kb.build_alias_index(fuzzy=False)
        print(f"Built the normalised alias index in memory in "
              f"{time.perf_counter() - start:.1f} s ({kb.alias_index.n_keys:,} keys).")
    systems = {name: spotter_pipeline(kb, settings)
               for name, settings in SPOTTER_CONFIGS.items()}
    ner = load_pipeline(None)
    ner.select_pipes(disable=["nel"])
    systems["shipped NER (sentencizer + ner)"] = ner
    results: Dict[str, dict] = {
        "machine": {"python": platform.python_version(), "spacy": spacy.__version__,
                    "cpu": platform.processor() or platform.machine()},
        "kb": {"entities": kb.get_size_entities(), "aliases": kb.get_size_aliases()},
        "settings": SPOTTER_CONFIGS,
        "corpora": {},
    }
    for corpus in CORPORA:
        records = load_corpus(args.data, corpus)
        texts = [record["text"] for record in records]
        gold = [sorted({(m["start"], m["end"]) for m in record["mentions"]}) for record in records]
        for nlp in systems.values():
            list(nlp.pipe(texts[:8]))  # warm up (maps the KB, loads the model)
        corpus_results = {"docs": len(texts), "toponyms": sum(len(spans) for spans in gold)}
        print(f"\n{corpus}: {len(texts)} docs, {corpus_results['toponyms']} gold toponyms")
        print(f"{'system':40} {'exact P':>8} {'R':>6} {'F':>6}   {'overlap P':>9} {'R':>6} "
              f"{'F':>6} {'docs/s':>8}")
        for name, nlp in systems.items():
            predicted, docs_per_s = run(nlp, texts, args.repeats)
            scores = span_scores(predicted, gold)
            scores["docs_per_s"] = docs_per_s
            corpus_results[name] = scores
            print(f"{name:40} {scores['exact_p']:8.3f} {scores['exact_r']:6.3f} "
                  f"{scores['exact_f']:6.3f}   {scores['overlap_p']:9.3f} "
                  f"{scores['overlap_r']:6.3f} {scores['overlap_f']:6.3f} {docs_per_s:8.1f}")
        results["corpora"][corpus] = corpus_results
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf8")
    print(f"\nWrote {args.output}")


if __name__ == "__main__":
    numpy.seterr(all="ignore")
    main()
