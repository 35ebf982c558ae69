#!/usr/bin/env python
"""Learning curves of context models: micro F on held-out docs after every epoch.

The task is ``entity_linker.synthetic.make_context_task`` (issue 12): 2,000
entities, 300 aliases (~6.7 candidates each, priors ~1/rank, gold drawn from
the prior, so the prior alone is right ~40% of the time), docs of 3 sentences
with two mentions of different entities whose sentences hold their topic
words. 2,000 train / 1,500 test docs, batches of 32, dropout 0.1, spaCy's
default optimizer, the HashEmbedCNN.v2 tok2vec of benchmarks/bench_el.py (width 96,
depth 2) inside every linker.

Each variant is a linker (``nel`` or spaCy's ``entity_linker``), a model
architecture and settings; all variants of a seed train on the same task and
the same shuffled batches. Per epoch: micro F over the test mentions (gold
spans, no kb ids) and the CPU seconds of the epoch. Several seeds give the
mean and standard deviation per epoch.

Variants: ``nel-default`` is ``nel`` as it comes; ``nel-recommended`` adds the
settings the README recommends for general text; ``nel-v1`` is the old
default (EntityLinker.v1, candidate loss 1); ``nel-spacy-arch`` runs spaCy's
``spacy.EntityLinker.v2`` inside ``nel``; ``nel-v2-<pools>[-no-residual]`` are
the encoder ablations (with the old default's candidate loss 1), and
``...-candidate-loss-<w>``, ``...-softmax``, ``...-learned`` vary the loss
and the scoring.

Usage:
    python -m benchmarks.learning_curves --epochs 15 --seeds 0 1 2 \
        --json benchmarks/results/curves.json
    python -m benchmarks.learning_curves --variants nel-default spacy --epochs 5 --seeds 0
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy
import spacy
from spacy.util import minibatch

from entity_linker.synthetic import make_context_task

from .bench_el import (
    baselines,
    input_doc,
    make_pipeline,
    predict_ids,
    run_record,
    score_system,
    spec_from_our_kb,
)

OUR_V1 = "entity_linker.EntityLinker.v1"
OUR_V2 = "entity_linker.EntityLinker.v2"
SPACY_V2 = "spacy.EntityLinker.v2"
# name -> (system of bench_el.make_pipeline, model config extras, nel config extras)
# The settings README.md recommends for general text (chosen on the AIDA dev split).
RECOMMENDED = {"scoring": "learned", "candidate_loss_weight": 1.0, "coherence": 4.0,
               "word_pairs_rows": 262144}
VARIANTS: Dict[str, tuple] = {
    "spacy": ("spacy", {}, {}),
    "nel-default": ("ours", {}, {}),
    "nel-recommended": ("ours", {}, RECOMMENDED),
    # The ablations keep the candidate loss of the old default (weight 1).
    "nel-spacy-arch": ("ours", {"@architectures": SPACY_V2}, {"candidate_loss_weight": 1.0}),
    "nel-v1": ("ours", {"@architectures": OUR_V1}, {"candidate_loss_weight": 1.0}),
    "nel-v1-windows": ("ours", {"@architectures": OUR_V1, "context": "windows"},
                       {"candidate_loss_weight": 1.0}),
    "nel-v1-no-candidate-loss": ("ours", {"@architectures": OUR_V1},
                                 {"candidate_loss_weight": 0.0}),
}


def add_v2_variants() -> None:
    """Ablations of entity_linker.EntityLinker.v2 (pools, residual), when it exists."""
    pools = {"mention+window": ["mention", "window"], "window": ["window"],
             "window+doc": ["window", "doc"], "mention+window+doc": ["mention", "window", "doc"]}
    for name, pool in pools.items():
        for residual in (True, False):
            key = f"nel-v2-{name}{'' if residual else '-no-residual'}"
            VARIANTS[key] = ("ours", {"@architectures": OUR_V2, "pools": pool,
                                      "residual": residual}, {"candidate_loss_weight": 1.0})
        for scoring in ("softmax", "learned"):
            VARIANTS[f"nel-v2-{name}-{scoring}"] = (
                "ours", {"@architectures": OUR_V2, "pools": pool},
                {"scoring": scoring, "candidate_loss_weight": 1.0})
        for weight in (0.0, 0.3):
            VARIANTS[f"nel-v2-{name}-candidate-loss-{weight}"] = (
                "ours", {"@architectures": OUR_V2, "pools": pool},
                {"candidate_loss_weight": weight})


def run_seed(seed: int, variants: Sequence[str], args) -> Dict[str, dict]:
    nlp_vocab = spacy.blank("en")
    kb, train, test = make_context_task(nlp_vocab, n_train=args.n_train, n_test=args.n_test,
                                        seed=seed)
    spec = spec_from_our_kb(kb)
    docs = [input_doc(eg) for eg in test]
    prior = baselines(spec, test)["prior"]["f"]
    print(f"seed {seed}: prior-only F {prior:.3f}", file=sys.stderr)
    out: Dict[str, dict] = {"prior_f": prior}
    for variant in variants:
        system, model_extra, extra = VARIANTS[variant]
        nlp, name, sgd = make_pipeline(system, nlp_vocab.vocab, spec, train, seed,
                                       extra=extra, model_extra=model_extra)
        rng = numpy.random.default_rng(seed + 1)  # the same batches for every variant
        curve, seconds = [], []
        for _ in range(args.epochs):
            order = rng.permutation(len(train))
            start = time.process_time()
            for batch in minibatch([train[i] for i in order], size=args.batch_size):
                nlp.update(batch, sgd=sgd, drop=args.drop, annotates=["sentencizer"])
            seconds.append(time.process_time() - start)
            predicted = predict_ids(nlp, [d.copy() for d in docs])
            curve.append(score_system(test, predicted)["f"])
        print(f"  {variant:32s} " + " ".join(f"{f:.3f}" for f in curve)
              + f"  ({numpy.mean(seconds):.1f} s/epoch)", file=sys.stderr)
        out[variant] = {"f": curve, "epoch_cpu_seconds": seconds}
    return out


def summarise(runs: List[Dict[str, dict]], variants: Sequence[str], epochs: int) -> None:
    marks = sorted({min(e, epochs) for e in (1, 3, 5, 10, 15, epochs)})
    print(f"prior-only F: {numpy.mean([r['prior_f'] for r in runs]):.3f}")
    print(f"{'variant':34s}" + "".join(f"{'ep ' + str(e):>14s}" for e in marks)
          + f"{'s/epoch':>10s}")
    for variant in variants:
        curves = numpy.array([r[variant]["f"] for r in runs])
        cells = "".join(
            f"{curves[:, e - 1].mean():>8.3f}±{curves[:, e - 1].std():.3f}" for e in marks)
        secs = numpy.mean([numpy.mean(r[variant]["epoch_cpu_seconds"]) for r in runs])
        print(f"{variant:34s}{cells}{secs:>10.1f}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    add_v2_variants()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", nargs="+",
                        default=["spacy", "nel-default", "nel-recommended", "nel-v1"],
                        choices=sorted(VARIANTS))
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-test", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--drop", type=float, default=0.1)
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.n_train, args.n_test, args.epochs = 200, 100, 2
    load_before = os.getloadavg()
    runs = [run_seed(seed, args.variants, args) for seed in args.seeds]
    summarise(runs, args.variants, args.epochs)
    if args.json:
        record = run_record(args, load_before)
        record["runs"] = runs
        args.json.write_text(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
