"""``entity-linker evaluate``: score a linking pipeline on a gold corpus."""

import json
import math
import sys
from pathlib import Path
from typing import IO, Any, Dict, List, Optional, Tuple, Union

import typer

from ..errors import CorpusError
from . import app, check_output_file, decode_line, msg, out, sets_ents, text_problem
from .link import GEONAMES_LOADER, linker_name

# ------------------------------------------------------------------ corpus


def read_corpus(nlp, path: Path) -> List:
    """Gold docs from a .spacy DocBin (or a folder of them) or a JSONL file (- = stdin).

    A JSONL line is {"text": ..., "ents": [{"start", "end", "label", "kb_id"}]},
    the shape `entity-linker link --format jsonl` and `link-corpus` write
    (older files name the list "spans": still read); character offsets, kb_id
    "NIL" (or null) for a mention without an entity of the KB.
    """
    if str(path) == "-":
        return read_jsonl(nlp, getattr(sys.stdin, "buffer", sys.stdin), "<stdin>")
    if not path.exists():
        raise CorpusError(f"No such file or folder: {path}")
    if path.is_dir():
        files = sorted(path.rglob("*.spacy"))
        if not files:
            raise CorpusError(f"{path}: no .spacy files in this folder.")
        return [doc for file in files for doc in read_docbin(nlp, file)]
    if path.suffix == ".spacy":
        return read_docbin(nlp, path)
    if path.suffix in (".jsonl", ".json"):
        with path.open("rb") as file:
            return read_jsonl(nlp, file, str(path))
    raise CorpusError(f"{path}: expected a .spacy file (DocBin), a folder of them or a "
                      ".jsonl file.")


def read_docbin(nlp, path: Path) -> List:
    """The docs of a .spacy file, in the pipeline's vocab."""
    from spacy.tokens import DocBin

    try:
        return list(DocBin().from_disk(path).get_docs(nlp.vocab))
    except Exception as err:  # msgpack, zlib, ... all mean the same: not a DocBin
        raise CorpusError(f"{path}: not a readable .spacy file (DocBin): {err}") from None


def read_jsonl(nlp, file: Union[IO[str], IO[bytes]], name: str) -> List:
    """Gold docs from JSONL lines (blank lines are skipped but counted)."""
    docs = []
    for number, raw in enumerate(file, 1):
        where = f"{name}:{number}"
        line, problem = decode_line(raw)
        if problem is not None:
            raise CorpusError(f"{where}: {problem}")
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as err:
            raise CorpusError(f"{where}: not valid JSON ({err}).") from None
        docs.append(record_to_doc(nlp, record, where))
    return docs


def record_to_doc(nlp, record: Any, where: str):
    """One JSONL record as a doc (the pipeline's tokenization) with gold entities."""
    if not isinstance(record, dict):
        raise CorpusError(f"{where}: expected a JSON object, got {type(record).__name__}.")
    text = record.get("text")
    if not isinstance(text, str):
        raise CorpusError(f"{where}: expected a 'text' field with a string.")
    problem = text_problem(text)
    if problem is not None:
        raise CorpusError(f"{where}: the 'text' {problem}")
    spans = record.get("ents", record.get("spans"))
    if not isinstance(spans, list):
        raise CorpusError(f"{where}: expected an 'ents' field (or 'spans', its older name) "
                          'with a list of {"start", "end", "label", "kb_id"} objects.')
    doc = nlp.make_doc(text)
    ents = []
    for i, span in enumerate(spans):
        here = f"{where}: span {i}"
        if not isinstance(span, dict):
            raise CorpusError(f"{here}: expected a JSON object.")
        start, end = span.get("start"), span.get("end")
        # bool is an int in Python, but true/false are no offsets.
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in (start, end)):
            raise CorpusError(f"{here}: 'start' and 'end' must be integers (character "
                              "offsets).")
        if not 0 <= start < end <= len(text):
            raise CorpusError(f"{here}: offsets {start}..{end} are out of range for a text "
                              f"of {len(text)} characters (need 0 <= start < end <= "
                              f"{len(text)}).")
        if not text[start:end].strip():
            raise CorpusError(f"{here}: {text[start:end]!r} at {start}..{end} is only "
                              "whitespace.")
        if "text" in span and span["text"] != text[start:end]:
            # Catches byte offsets, or offsets into another version of the text.
            raise CorpusError(f"{here}: its text {span['text']!r} is not the text at "
                              f"{start}..{end}, {text[start:end]!r}.")
        label = span.get("label", "ENT")
        kb_id = span.get("kb_id", None)
        if not isinstance(label, str) or not label:
            raise CorpusError(f"{here}: 'label' must be a non-empty string.")
        if kb_id is None:
            kb_id = "NIL"
        if not isinstance(kb_id, str):
            raise CorpusError(f"{here}: 'kb_id' must be a string (\"NIL\" for none).")
        ent = doc.char_span(start, end, label=label, kb_id=kb_id, alignment_mode="expand")
        if ent is None:
            raise CorpusError(f"{here}: {text[start:end]!r} covers no token.")
        ents.append(ent)
    try:
        doc.ents = ents
    except ValueError:
        raise CorpusError(f"{where}: the spans overlap (after aligning them to tokens); "
                          "entities must not overlap.") from None
    return doc


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

