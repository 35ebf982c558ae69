"""Convert the toponym corpora of ../shared/data/geo into spaCy DocBins.

Each doc gets its toponyms as entities labelled "LOC", with the gold GeoNames
id as kb_id ("NIL" when the corpus has none). The corpora are research data:
they stay in ../shared/data; this script writes derived .spacy files to an
output folder of your choice (not into the package).

    python -m benchmarks.datasets.geo --data ../shared/data/geo --output corpus/geo
"""

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Dict, List

import spacy
from spacy.tokens import Doc, DocBin
from spacy.util import filter_spans

LABEL = "LOC"
CORPORA = {"lgl": "lgl.xml", "trnews": "TR-News.xml"}


def load_corpus(data_dir: Path, name: str) -> List[dict]:
    """The docs of one corpus, via the loader that ships with the data (load_geo.py
    beside the corpora, outside this repository: imported from its path)."""
    path = Path(data_dir) / "load_geo.py"
    spec = importlib.util.spec_from_file_location("load_geo", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"no corpus loader at {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.load(str(Path(data_dir) / CORPORA[name]))


def to_docs(nlp, records: List[dict]) -> List[Doc]:
    """spaCy docs with toponym entities (and their gold GeoNames ids)."""
    docs = []
    for record in records:
        doc = nlp.make_doc(record["text"])
        spans = []
        for mention in record["mentions"]:
            gid = mention.get("geonameid")
            span = doc.char_span(mention["start"], mention["end"], label=LABEL,
                                 kb_id=str(gid) if gid else "NIL",
                                 alignment_mode="expand")
            if span is not None:
                spans.append(span)
        doc.ents = filter_spans(spans)
        doc.user_data["coords"] = {
            f"{m['start']}:{m['end']}": (m.get("lat"), m.get("lon"))
            for m in record["mentions"] if m.get("lat") is not None
        }
        docs.append(doc)
    return docs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/geo"))
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"No geo data at {args.data}; see ../shared/data/README.md.")
    nlp = spacy.blank("en")
    args.output.mkdir(parents=True, exist_ok=True)
    counts: Dict[str, int] = {}
    for name in CORPORA:
        docs = to_docs(nlp, load_corpus(args.data, name))
        DocBin(docs=docs, store_user_data=True).to_disk(args.output / f"{name}.spacy")
        counts[name] = sum(len(doc.ents) for doc in docs)
        print(f"{name}: {len(docs)} docs, {counts[name]} toponyms -> {args.output}/{name}.spacy")


if __name__ == "__main__":
    main()
