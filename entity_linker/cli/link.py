"""``entity-linker link``: text in, linked entities out."""

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import typer

from ..corpora import decode_line, text_problem
from . import app, check_output_file, msg, out, sets_ents

GEONAMES_LOADER = "entity_linker.GeoNamesKB.v1"


def load_pipeline(path: Optional[Path]):
    """Load a pipeline with a linker (default: the embedded geographic one)."""
    import spacy

    import entity_linker  # noqa: F401  (registers the factory and functions)

    from ..geonames import load_geo_pipeline

    if path is None:
        return load_geo_pipeline()
    if not path.exists():
        msg.fail(f"No pipeline at {path}. Train one (entity-linker train) or pass --pipeline.",
                 exits=1)
    return spacy.load(path)


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
    """A linked doc as a JSON-able dict: text and "ents" with ids, scores, candidates."""
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
    return {"text": doc.text, "ents": spans}


@dataclass
class _Input:
    """One document to link: its text, where it comes from, and why it is invalid."""

    text: str
    where: str
    error: Optional[str] = None


@dataclass
class _Reading:
    """What reading the inputs met: the error that stopped it, the lines skipped."""

    error: Optional[str] = None
    skipped: List[str] = field(default_factory=list)


def _lines(lines, name: str, jsonl: bool) -> Iterator[_Input]:
    """One input per line, blank lines included (as empty texts)."""
    for number, raw in enumerate(lines, 1):
        where = f"{name}:{number}"
        line, problem = decode_line(raw)
        if problem is not None:
            yield _Input("", where, f"{where}: {problem}")
            continue
        if not jsonl or not line.strip():
            yield _Input(line if line.strip() else "", where)
            continue
        try:
            record = json.loads(line)
        except ValueError as err:
            yield _Input("", where, f"{where}: invalid JSON ({err}).")
            continue
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            yield _Input("", where, f"{where}: expected a JSON object with a 'text' string.")
            continue
        problem = text_problem(record["text"])
        if problem is not None:
            yield _Input("", where, f"{where}: the 'text' {problem}")
            continue
        yield _Input(record["text"], where)


def _stdin_lines():
    return getattr(sys.stdin, "buffer", sys.stdin)


def _read_inputs(texts: List[str], files: List[Path]) -> Iterator[_Input]:
    """The documents of the arguments, files and stdin, in order."""
    for i, text in enumerate(texts, 1):
        problem = text_problem(text)
        yield _Input(text if problem is None else "", f"argument {i}",
                     None if problem is None else f"argument {i} {problem}")
    for path in files:
        if str(path) == "-":
            yield from _lines(_stdin_lines(), "<stdin>", jsonl=False)
        elif path.suffix == ".jsonl":
            try:
                with path.open("rb") as file:
                    yield from _lines(file, str(path), jsonl=True)
            except OSError as err:
                yield _Input("", str(path), f"{path}: cannot read it ({err.strerror or err}).")
        else:
            yield _read_text_file(path)
    if not texts and not files:
        yield from _lines(_stdin_lines(), "<stdin>", jsonl=False)


def _read_text_file(path: Path) -> _Input:
    """A text file as one document."""
    try:
        data = path.read_bytes()
    except OSError as err:
        return _Input("", str(path), f"{path}: cannot read it ({err.strerror or err}).")
    try:
        return _Input(data.decode("utf-8"), str(path))
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        return _Input("", str(path), f"{path}:{line}: not valid UTF-8 (byte "
                      f"{data[err.start]:#04x} at column {column}).")


def _print_table(record: Dict[str, Any], explain: bool = False) -> None:
    rows = []
    for span in record["ents"]:
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
    out.text(record["text"] if len(record["text"]) < 200 else record["text"][:197] + "...")
    if rows:
        header = ("mention", "label", "kb id", "place", "score")
        out.table(rows, header=header + (("decided by",) if explain else ()), divider=True,
                  max_col=80)  # place texts exceed the default 30 columns
    else:
        out.text("(no entities found)")


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
        "table", "--format", help="table (readable) or jsonl: one JSON object per doc, "
        '{"text", "ents": [...]}, and one per input line for line input (stdin, .jsonl), '
        'blank lines included ({"text": "", "ents": []}).'),
    html: Optional[Path] = typer.Option(
        None, "--html", help="Also write a displaCy page with the linked entities here.",
        show_default=False,
    ),
    explain: bool = typer.Option(
        False, "--explain", help="Say which evidence decided each link (prior, context, "
        "coherence, containment) and by what margin over the runner-up."),
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid", help="Go on after an invalid input (a line that is not "
        "UTF-8, a .jsonl line that is not a JSON object with a 'text' string): jsonl output "
        'gets {"text": "", "ents": [], "error": "FILE:LINE: ..."} in its place, and the '
        "count and first lines skipped are reported at the end. Without it, the documents "
        "before the bad line are linked and written, then link stops with FILE:LINE and "
        "exit code 1."),
) -> None:
    """Link the entities in text: each mention with its KB id, score and candidates.

    With the embedded pipeline, places are linked to GeoNames and printed with
    their country and coordinates. Results go to stdout; messages (warnings,
    errors) to stderr, coloured only on a terminal (and not with NO_COLOR set).
    """
    if output_format not in ("table", "jsonl"):
        raise typer.BadParameter("use table or jsonl", param_hint="--format")
    texts, files = texts or [], files or []
    # Cheap checks first: loading the pipeline takes seconds.
    for path in files:
        if str(path) != "-" and not path.is_file():
            msg.fail(f"No such file: {path}" if not path.exists() else
                     f"{path} is a folder, not a file.", exits=1)
    if html is not None:
        check_output_file(html, "--html")
    if not skip_invalid:
        for i, text in enumerate(texts, 1):
            problem = text_problem(text)
            if problem is not None:
                msg.fail(f"argument {i} {problem}", exits=1)
    if not texts and not files and sys.stdin.isatty():
        msg.fail("Nothing to link: give texts, --file FILE, or pipe lines into stdin.",
                 exits=1)
    nlp = load_pipeline(pipeline)
    linker = linker_name(nlp)
    if not sets_ents(nlp, linker):
        msg.warn(f"The pipeline has no component before '{linker}' that sets doc.ents (ner, "
                 "entity_ruler, ...): no entities will be found, so none are linked. Add a "
                 "ner or an entity_ruler before it.")
    metadata = _geonames_metadata(nlp, linker)
    if explain:
        nlp.get_pipe(linker).explain = True
    reading = _Reading()

    def documents():
        for item in _read_inputs(texts, files):
            if item.error is not None:
                if not skip_invalid:
                    reading.error = item.error
                    return  # nlp.pipe links (and we write) the documents before it
                reading.skipped.append(item.error)
            yield item.text, item

    docs = []
    try:
        for doc, item in nlp.pipe(documents(), as_tuples=True, batch_size=64):
            if item.error is not None:
                if output_format == "jsonl":
                    sys.stdout.write(json.dumps({"text": "", "ents": [], "error": item.error},
                                                ensure_ascii=False) + "\n")
                continue
            record = doc_to_record(doc, metadata)
            if output_format == "jsonl":
                sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
            else:
                _print_table(record, explain)
            if html is not None:
                docs.append(doc)
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. | head: the reader has gone, stop quietly
        _silence_stdout()
        sys.exit(1)
    if html is not None:
        _write_html(docs, html, metadata)
    if reading.skipped:
        _report_skipped(reading.skipped)
    if reading.error is not None:
        msg.fail(f"{reading.error} Stopped there (--skip-invalid goes on).", exits=1)


def _report_skipped(skipped: List[str], limit: int = 5) -> None:
    msg.warn(f"Skipped {len(skipped):,} invalid input(s):")
    for error in skipped[:limit]:
        msg.text(f"  {error}")
    if len(skipped) > limit:
        msg.text(f"  ... and {len(skipped) - limit:,} more")


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit raises no BrokenPipeError."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file descriptor (tests)
        pass


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
    try:
        path.write_text(html, encoding="utf8")
    except OSError as err:
        msg.fail(f"Could not write {path}: {err.strerror or err}", exits=1)
    msg.good(f"Wrote {path}")
