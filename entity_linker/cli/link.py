"""``entity-linker link``: text in, linked entities out."""

import json
import sys
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

import typer
from wasabi import msg

from . import app

GEONAMES_LOADER = "entity_linker.GeoNamesKB.v1"


def default_pipeline_path() -> Path:
    """The embedded geographic pipeline shipped in the package."""
    return Path(__file__).parent.parent / "data" / "geo_pipeline"


def load_pipeline(path: Optional[Path]):
    """Load a pipeline with a linker (default: the embedded geographic one)."""
    import spacy

    import entity_linker  # noqa: F401  (registers the factory and functions)

    embedded = path is None
    path = path or default_pipeline_path()
    if not path.exists():
        msg.fail(f"No pipeline at {path}. Train one (entity-linker train) or pass --pipeline.",
                 exits=1)
    # The embedded pipeline's tokenizer is spaCy's English default, which the
    # language already builds: reading it again from disk doubles the cost of
    # its ~2,700 special cases (about 0.3 s of every cold start).
    return spacy.load(path, exclude=["tokenizer"] if embedded else [])


def linker_name(nlp) -> str:
    """The name of the pipeline's nel component (exit with an error if it has none)."""
    from ..pipeline import EntityLinker

    for name, pipe in nlp.pipeline:
        if isinstance(pipe, EntityLinker):
            return name
    msg.fail("The pipeline has no nel component.", exits=1)
    return ""


def _geonames_metadata(nlp, linker: str):
    loader = nlp.get_pipe(linker).cfg.get("kb_loader") or {}
    if loader.get("@misc") != GEONAMES_LOADER:
        return None
    from ..geonames import load_geonames_metadata

    return load_geonames_metadata(vector_length=loader.get("vector_length", 64))


def doc_to_record(doc, metadata=None) -> Dict[str, Any]:
    """A linked doc as a JSON-able dict: text and spans with ids, scores, candidates."""
    spans = []
    for ent in doc.ents:
        span: Dict[str, Any] = {
            "start": ent.start_char, "end": ent.end_char, "text": ent.text,
            "label": ent.label_, "kb_id": ent.kb_id_ or "NIL",
            "score": ent._.kb_score,
            "candidates": [{"kb_id": kb_id, "score": score}
                           for kb_id, score in (ent._.kb_candidates or [])],
        }
        if ent._.kb_evidence is not None:
            span["evidence"] = ent._.kb_evidence
        if metadata is not None and span["kb_id"] != "NIL":
            record = metadata.get(span["kb_id"])
            if record is not None:
                span["place"] = {
                    "name": record.name, "kind": record.kind, "country": record.country,
                    "country_code": record.country_code, "admin1": record.admin1,
                    "latitude": record.latitude, "longitude": record.longitude,
                    "population": record.population,
                }
        spans.append(span)
    return {"text": doc.text, "spans": spans}


def _read_texts(texts: List[str], files: List[Path]) -> Iterable[str]:
    yield from texts
    for path in files:
        if str(path) == "-":
            yield from (line.rstrip("\n") for line in sys.stdin if line.strip())
            continue
        if not path.exists():
            msg.fail(f"No such file: {path}", exits=1)
        with path.open(encoding="utf8") as file:
            if path.suffix == ".jsonl":
                for number, line in enumerate(file, 1):
                    if line.strip():
                        try:
                            yield json.loads(line)["text"]
                        except (ValueError, KeyError, TypeError):
                            msg.fail(f"{path}:{number}: expected a JSON object with a "
                                     "'text' field.", exits=1)
            else:
                yield file.read()
    if not texts and not files and not sys.stdin.isatty():
        yield from (line.rstrip("\n") for line in sys.stdin if line.strip())


def _print_table(record: Dict[str, Any], explain: bool = False) -> None:
    rows = []
    for span in record["spans"]:
        place = span.get("place")
        where = ""
        if place:
            region = ", ".join(x for x in (place["admin1"], place["country"]) if x)
            where = f"{region} ({place['latitude']:.4f}, {place['longitude']:.4f})"
        score = "" if span["score"] is None else f"{span['score']:.3f}"
        row = (span["text"], span["label"], span["kb_id"], where, score)
        if explain:
            row += (_why(span.get("evidence")),)
        rows.append(row)
    msg.text(record["text"] if len(record["text"]) < 200 else record["text"][:197] + "...")
    if rows:
        header = ("mention", "label", "kb id", "place", "score")
        msg.table(rows, header=header + (("decided by",) if explain else ()), divider=True,
                  max_col=80)  # place texts exceed the default 30 columns
    else:
        msg.text("(no entities found)")


def _why(evidence: Optional[Dict[str, Any]]) -> str:
    """The table's "decided by" cell: the deciding evidence and its margin."""
    if not evidence:
        return ""
    decided = evidence["decided_by"]
    margin = evidence["margins"].get(decided)
    return decided if margin is None else f"{decided} (+{margin:.1f})"


@app.command("link")
def link_command(
    texts: Optional[List[str]] = typer.Argument(
        None, help="Texts to link. Without texts or --file, lines are read from stdin.",
        show_default=False,
    ),
    files: Optional[List[Path]] = typer.Option(
        None, "--file", "-f", help="Text file (one doc), .jsonl with a 'text' field per line, "
        "or - for stdin (one doc per line). Repeatable.", show_default=False,
    ),
    pipeline: Optional[Path] = typer.Option(
        None, "--pipeline", "-p", help="Pipeline folder (default: the embedded GeoNames "
        "linker).", show_default=False,
    ),
    output_format: str = typer.Option(
        "table", "--format", help="table (readable) or jsonl (one JSON object per doc)."),
    html: Optional[Path] = typer.Option(
        None, "--html", help="Also write a displaCy page with the linked entities here.",
        show_default=False,
    ),
    explain: bool = typer.Option(
        False, "--explain", help="Say which evidence decided each link (prior, context, "
        "coherence, containment) and by what margin over the runner-up."),
) -> None:
    """Link the entities in text: each mention with its KB id, score and candidates.

    With the embedded pipeline, places are linked to GeoNames and printed with
    their country and coordinates.
    """
    if output_format not in ("table", "jsonl"):
        raise typer.BadParameter("use table or jsonl", param_hint="--format")
    nlp = load_pipeline(pipeline)
    linker = linker_name(nlp)
    metadata = _geonames_metadata(nlp, linker)
    if explain:
        nlp.get_pipe(linker).explain = True
    docs = []
    for doc in nlp.pipe(_read_texts(texts or [], files or []), batch_size=64):
        record = doc_to_record(doc, metadata)
        if output_format == "jsonl":
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            _print_table(record, explain)
        if html is not None:
            docs.append(doc)
    if html is not None:
        _write_html(docs, html, metadata)


def _write_html(docs, path: Path, metadata) -> None:
    from spacy import displacy

    def url(kb_id: str) -> str:
        if metadata is not None:
            return f"https://www.geonames.org/{kb_id}"
        return f"#{kb_id}"

    pages = []
    for doc in docs:
        ents = [{"start": e.start_char, "end": e.end_char,
                 "label": f"{e.label_} {e.kb_id_}" if e.kb_id_ else e.label_,
                 "kb_id": e.kb_id_, "kb_url": url(e.kb_id_)} for e in doc.ents]
        pages.append({"text": doc.text, "ents": ents, "title": None})
    html = displacy.render(pages, style="ent", manual=True, page=True)
    path.write_text(html, encoding="utf8")
    msg.good(f"Wrote {path}")
