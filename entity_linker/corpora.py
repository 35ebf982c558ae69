"""Gold corpora: docs whose entities carry their gold kb ids, read from disk.

``read_corpus(nlp, path)`` reads a .spacy DocBin, a folder of them, or a
JSONL file (``-``: standard input) of one
``{"text": ..., "ents": [{"start", "end", "label", "kb_id"}]}`` record per line,
the shape ``entity-linker link --format jsonl`` and ``link-corpus`` write.
The docs are what ``entity_linker.evaluation`` scores a pipeline on. Every
problem raises ``CorpusError`` naming the file and, where there is one, the
line and span.
"""

import json
import sys
from pathlib import Path
from typing import IO, Any, Iterable, List, Optional, Tuple, Union

from spacy.language import Language
from spacy.tokens import Doc, DocBin

from .errors import CorpusError

__all__ = ["CorpusError", "decode_line", "read_corpus", "read_docbin", "read_jsonl",
           "record_to_doc", "text_problem"]


def text_problem(text: str) -> Optional[str]:
    """Why a text cannot be linked (a lone surrogate: undecodable input), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        char = text[err.start]
        if "\udc80" <= char <= "\udcff":  # a byte that was not UTF-8 (surrogateescape)
            return (f"is not valid UTF-8 (byte {ord(char) - 0xDC00:#04x} at character "
                    f"{err.start + 1}).")
        return f"has a lone surrogate (U+{ord(char):04X} at character {err.start + 1})."
    return None


def decode_line(raw: Union[bytes, str]) -> Tuple[str, Optional[str]]:
    """A line of input without its line break, and why it is invalid (or None).

    Bytes are decoded as UTF-8; an undecodable line is returned decoded with
    replacement characters, with the reason.
    """
    if isinstance(raw, bytes):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            return (raw.decode("utf-8", "replace").rstrip("\r\n"),
                    f"not valid UTF-8 (byte {raw[err.start]:#04x} at column {err.start + 1}).")
    else:
        line = raw
    line = line.rstrip("\r\n")
    problem = text_problem(line)
    return line, None if problem is None else f"the line {problem}"


def read_corpus(nlp: Language, path: Union[str, Path]) -> List[Doc]:
    """Gold docs from a .spacy DocBin (or a folder of them) or a JSONL file (- = stdin).

    A JSONL line is {"text": ..., "ents": [{"start", "end", "label", "kb_id"}]},
    the shape `entity-linker link --format jsonl` and `link-corpus` write
    (older files name the list "spans": still read); character offsets, kb_id
    "NIL" (or null) for a mention without an entity of the KB. The docs are
    made in the pipeline's vocab (JSONL texts with its tokenizer).

    nlp (Language): The pipeline the docs are for.
    path (Union[str, Path]): The file or folder, or "-" for JSONL on stdin.
    RETURNS (List[Doc]): The docs, their gold entities in ``doc.ents``.
    """
    if str(path) == "-":
        return read_jsonl(nlp, getattr(sys.stdin, "buffer", sys.stdin), "<stdin>")
    path = Path(path)
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


def read_docbin(nlp: Language, path: Union[str, Path]) -> List[Doc]:
    """The docs of a .spacy file, in the pipeline's vocab."""
    try:
        return list(DocBin().from_disk(path).get_docs(nlp.vocab))
    except Exception as err:  # msgpack, zlib, ... all mean the same: not a DocBin
        raise CorpusError(f"{path}: not a readable .spacy file (DocBin): {err}") from None


def read_jsonl(nlp: Language, file: Union[IO[str], IO[bytes], Iterable[Union[str, bytes]]],
               name: str) -> List[Doc]:
    """Gold docs from JSONL lines (bytes or str; blank lines are skipped but
    counted), ``name`` naming the source in errors."""
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


def record_to_doc(nlp: Language, record: Any, where: str) -> Doc:
    """One JSONL record as a doc (the pipeline's tokenization) with gold entities;
    ``where`` names the record in errors."""
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
