"""``entity-linker evaluate``: score a linking pipeline on a gold corpus."""

import json
import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import typer

from ..corpora import read_corpus
from ..errors import CorpusError
from . import app, check_output_file, msg, out, sets_ents
from .link import GEONAMES_LOADER, linker_name

# ----------------------------------------------------------------- pipeline


def _load(name: str):
    import spacy
    from spacy.util import is_package

    import entity_linker  # noqa: F401  (registers the factory and functions)

    if not Path(name).exists() and not is_package(name):
        msg.fail(f"Could not load the pipeline {name}: no such folder, and no installed "
                 "pipeline package of this name.", exits=1)
    try:
        return spacy.load(name)
    except OSError as err:
        msg.fail(f"Could not load the pipeline {name}: {' '.join(str(err).split())}", exits=1)
    except (AttributeError, ImportError, TypeError, ValueError) as err:
        # e.g. an installed Python package that is not a pipeline (no load()).
        msg.fail(f"Could not load the pipeline {name}: not a pipeline folder or an "
                 f"installed pipeline package ({type(err).__name__}: {err}).", exits=1)


def _geo_metadata(nlp, linker: str, geo: Optional[bool]):
    """GeoNames metadata for the geographic metrics, or None.

    Automatic (geo=None) for pipelines whose KB is the GeoNames KB
    (kb_loader entity_linker.GeoNamesKB.v1); --geo forces it for others (the
    sidecar next to the pipeline's KB if there is one, else the cached KB's,
    built first if needed).
    """
    pipe = nlp.get_pipe(linker)
    loader = pipe.cfg.get("kb_loader") or {}
    is_geonames = loader.get("@misc") == GEONAMES_LOADER
    if geo is False or (geo is None and not is_geonames):
        return None
    from .. import geonames

    if is_geonames:
        vector_length = loader.get("vector_length", geonames.DEFAULT_VECTOR_LENGTH)
        return geonames.load_geonames_metadata(vector_length=vector_length)
    kb_path = getattr(pipe.kb, "path", None)
    if kb_path is not None and (Path(kb_path).parent / geonames.METADATA_FILE).exists():
        return geonames.load_geonames_metadata(Path(kb_path).parent)
    # The metadata is the same for every vector length: use a cached KB of the
    # pipeline's length if there is one, else the default one.
    cached = geonames.geonames_kb_dir(pipe.kb.entity_vector_length)
    if (cached / geonames.METADATA_FILE).exists():
        return geonames.load_geonames_metadata(cached)
    return geonames.load_geonames_metadata()


# ------------------------------------------------------------------- output


def _pct(value: float) -> str:
    return f"{100 * value:.2f}"


def _linking_rows(scores: Dict[str, float]) -> List[Tuple[str, str]]:
    rows = [
        ("Mentions (gold, linked)", f"{scores['mentions']:,}"),
        ("Accuracy", _pct(scores["accuracy"])),
        ("Micro P", _pct(scores["micro_p"])),
        ("Micro R", _pct(scores["micro_r"])),
        ("Micro F", _pct(scores["micro_f"])),
        ("Prior-only accuracy", _pct(scores["prior_accuracy"])),
        ("Oracle (gold among candidates)", _pct(scores["oracle"])),
    ]
    if "accuracy_161km" in scores:
        median = scores["median_error_km"]
        rows.append(("Accuracy@161 km", _pct(scores["accuracy_161km"])))
        rows.append(("Median error (km)", "n/a" if math.isnan(median) else f"{median:,.1f}"))
    rows.append(("Docs per second", f"{scores['docs_per_second']:,.0f}"))
    return rows


def _end_to_end_rows(scores: Dict[str, float]) -> List[Tuple[str, str]]:
    return [
        ("Link P", _pct(scores["link_p"])),
        ("Link R", _pct(scores["link_r"])),
        ("Link F", _pct(scores["link_f"])),
        ("Span P", _pct(scores["span_p"])),
        ("Span R", _pct(scores["span_r"])),
        ("Span F", _pct(scores["span_f"])),
        ("Docs per second", f"{scores['docs_per_second']:,.0f}"),
    ]


def _json_safe(value: Any) -> Any:
    # NaN (no median without geo matches) is not valid JSON.
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return value


@app.command("evaluate")
def evaluate_command(
    pipeline: str = typer.Argument(..., metavar="PIPELINE", help="Pipeline folder (e.g. "
                                   "training/model-best) or installed package with a nel "
                                   "component.", show_default=False),
    corpus: Path = typer.Argument(
        ..., metavar="CORPUS", help="Gold corpus: a .spacy DocBin (or folder of them) of "
        "docs whose entities carry kb ids (\"NIL\" = none), or a .jsonl file with "
        "{\"text\", \"ents\": [{\"start\", \"end\", \"label\", \"kb_id\"}]} per line, "
        "as `entity-linker link --format jsonl` writes (- = JSONL from stdin).",
        show_default=False,
    ),
    gold_mentions: bool = typer.Option(
        True, "--gold-mentions/--end-to-end", help="Score linking on the gold mentions "
        "only, or also the whole pipeline from raw text (link and span P/R/F).",
    ),
    geo: Optional[bool] = typer.Option(
        None, "--geo/--no-geo", help="Add accuracy@161 km and the median error in km from "
        "GeoNames coordinates (default: on for pipelines with the GeoNames KB).",
        show_default=False,
    ),
    json_path: Optional[Path] = typer.Option(
        None, "--json", help="Also write the scores to this JSON file.", show_default=False,
    ),
) -> None:
    """Score a linking pipeline on a gold corpus.

    With the gold mentions: accuracy, micro P/R/F, the prior-only baseline and
    the oracle (gold entity among the candidates); with --end-to-end also
    link and span P/R/F from raw text; with --geo accuracy@161 km and the
    median error in km. Scores are printed as percentages; the JSON file has
    fractions. The scores are printed on stdout, messages on stderr.
    """
    from ..errors import KBError
    from ..evaluation import evaluate_end_to_end, evaluate_linking

    # Cheap checks first: loading the pipeline takes seconds.
    if str(corpus) != "-" and not corpus.exists():
        msg.fail(f"No such file or folder: {corpus}", exits=1)
    if json_path is not None:
        check_output_file(json_path, "--json")
    nlp = _load(pipeline)
    linker = linker_name(nlp)
    try:
        docs = read_corpus(nlp, corpus)
    except (CorpusError, OSError) as err:
        msg.fail(str(err), exits=1)
    n_gold = sum(1 for doc in docs for ent in doc.ents if ent.kb_id_ not in ("", "NIL"))
    msg.info(f"{len(docs):,} docs with {n_gold:,} linked gold mentions from {corpus}")
    if not n_gold:
        msg.warn("The corpus has no gold mentions with kb ids: the scores are 0.")
    try:
        metadata = _geo_metadata(nlp, linker, geo)
    except (KBError, OSError) as err:
        msg.fail(f"Could not load the GeoNames metadata: {err}", exits=1)
    if metadata is not None and n_gold and not any(
        metadata.get(ent.kb_id_) is not None for doc in docs for ent in doc.ents
    ):
        msg.warn("No gold kb id is a GeoNames id of the metadata: the geographic "
                 "scores are 0.")
    results: Dict[str, Any] = {"pipeline": pipeline, "corpus": str(corpus), "docs": len(docs),
                               "component": linker}
    try:
        results["linking"] = evaluate_linking(nlp, docs, metadata, component=linker)
        if not gold_mentions:
            if not sets_ents(nlp, linker):
                msg.warn("No component before the linker sets doc.ents (ner, "
                         "entity_ruler): the end-to-end scores are 0.")
            results["end_to_end"] = evaluate_end_to_end(nlp, docs)
    except ValueError as err:  # e.g. gold spans that do not fit the pipeline's tokens
        msg.fail(f"Could not evaluate on {corpus}: {err}", exits=1)
    out.divider("Linking (gold mentions)")
    out.table(_linking_rows(results["linking"]), aligns=("l", "r"))
    if "end_to_end" in results:
        out.divider("End to end (from raw text)")
        out.table(_end_to_end_rows(results["end_to_end"]), aligns=("l", "r"))
    if json_path is not None:
        try:
            json_path.write_text(json.dumps(_json_safe(results), indent=2) + "\n",
                                 encoding="utf8")
        except OSError as err:
            msg.fail(f"Could not write {json_path}: {err.strerror or err}", exits=1)
        msg.good(f"Wrote {json_path}")

