"""Stage 4 of ``build_wikidata_kb``: the KB folder from the stage-3 outputs.

No Python object per entity or alias: one pass over ``entities.jsonl`` puts
ids and names into UTF-8 blobs with offsets, relations into two int arrays
(child row, parent key), and the encoder's input texts into batches encoded
straight into the preallocated float32 vector matrix; the aliases are read as
one blob from ``aliases.txt``. The KB is built from the blobs
(``builders.from_blobs``), named and related by row (``set_name_blob``,
``set_relation_rows``), and its alias index is built in chunks from the alias
blob (``alias_index.build_index_arrays``), the same sections that
``build_alias_index`` makes without its Python strings and per-trigram
arrays.
"""

import shutil
import sys
from array import array
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy

from .build import _ENCODE_BATCH, TITLES_FILE, IntMap, WikiKBConfig, _say, iter_entity_records
from .memory import release_memory

# Entities named per set_names call.
_NAMES_CHUNK = 1 << 16


class StringBlob:
    """Strings as one UTF-8 byte blob plus int64 offsets (no object per string)."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.offsets = array("q", [0])

    def append(self, text: str) -> None:
        self.data += text.encode("utf8")
        self.offsets.append(len(self.data))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def strings(self, rows=None) -> List[str]:
        """The strings of ``rows`` (all by default), decoded."""
        data, offsets = self.data, self.offsets
        if rows is None:
            rows = range(len(self))
        return [data[offsets[i]:offsets[i + 1]].decode("utf8") for i in rows]


def _id_key(qid: str) -> int:
    """The number of a canonical QID ("Q42" -> 42); -1 for any other string."""
    digits = qid[1:]
    if qid.startswith("Q") and digits.isdigit() and digits.isascii() \
            and (digits == "0" or not digits.startswith("0")):
        return int(digits)
    return -1


def _relation_rows(keys: numpy.ndarray, exotic: Dict[str, int], children: array,
                   parent_keys: array, exotic_parents: Dict[int, str]
                   ) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """(child rows, parent rows) of the relations whose parent is in the KB, in
    their order of appearance (the parent given by QID number, or by string for
    the rare ids that are not canonical QIDs)."""
    by_key = IntMap(keys[keys >= 0], numpy.flatnonzero(keys >= 0))
    child_rows = numpy.frombuffer(children, dtype=numpy.int64)
    parent_rows = by_key.lookup(numpy.frombuffer(parent_keys, dtype=numpy.int64))
    parent_rows[numpy.frombuffer(parent_keys, dtype=numpy.int64) < 0] = -1
    for position, parent in exotic_parents.items():
        parent_rows[position] = exotic.get(parent, -1)
    found = parent_rows >= 0
    return child_rows[found], parent_rows[found]


def _read_entities(config: WikiKBConfig, work: Path, keep: numpy.ndarray, encoder):
    """One pass over the kept entities: (ids, names, vectors, (child rows,
    parent rows) of the relations)."""
    n = int(keep.sum())
    vectors = numpy.zeros((n, encoder.dim), dtype=numpy.float32)
    ids, names = StringBlob(), StringBlob()
    keys = numpy.full(n, -1, dtype=numpy.int64)
    exotic: Dict[str, int] = {}  # ids that are not canonical QIDs -> row
    children, parent_keys = array("q"), array("q")
    exotic_parents: Dict[int, str] = {}  # position in children -> parent id
    texts: List[str] = []
    bar = None
    if config.progress:
        from tqdm import tqdm

        bar = tqdm(total=n, desc="Encoding entities", unit=" entities", file=sys.stderr,
                   disable=None)

    def encode() -> None:
        start = len(ids) - len(texts)
        vectors[start:len(ids)] = encoder(texts)
        if bar is not None:
            bar.update(len(texts))
        texts.clear()

    for record, kept in zip(iter_entity_records(work), keep.tolist()):
        if not kept:
            continue
        row = len(ids)
        qid = record["id"]
        ids.append(qid)
        keys[row] = key = _id_key(qid)
        if key < 0:
            exotic[qid] = row
        names.append(record.get("name") or "")
        texts.append(" ".join(t for t in (record.get("name"), record.get("description"))
                              if t) or qid)
        for parent in record.get("parents") or ():
            key = _id_key(parent)
            if key < 0:
                exotic_parents[len(children)] = parent
            children.append(row)
            parent_keys.append(key)
        if len(texts) >= _ENCODE_BATCH:
            encode()
    if texts:
        encode()
    if bar is not None:
        bar.close()
    relations = _relation_rows(keys, exotic, children, parent_keys, exotic_parents)
    del keys, children, parent_keys, exotic, exotic_parents
    release_memory()
    return ids, names, vectors, relations


def _alias_blob(path: Path) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """(offsets, UTF-8 blob) of the aliases of aliases.txt (one per line)."""
    data = numpy.fromfile(path, dtype=numpy.uint8)
    newlines = numpy.flatnonzero(data == 10)
    offsets = numpy.zeros(len(newlines) + 1, dtype=numpy.int64)
    offsets[1:] = newlines - numpy.arange(len(newlines))  # the newlines removed
    blob = data[data != 10]
    return offsets, blob


def stage_kb(config: WikiKBConfig, work: Path, meta: Dict[str, Any]) -> Dict[str, Any]:
    """Stage 4: the KB folder; RETURNS its stats."""
    from spacy.vocab import Vocab

    from ..encoders import get_encoder
    from ..kb import InMemoryLookupKB, builders
    from ..kb.normalize import AliasNormalizer
    from ..kb_sources import write_kb_directory
    from .alias_index import build_index_arrays

    arrays = dict(numpy.load(work / "aliases.npz"))
    keep = arrays.pop("keep")
    n = int(keep.sum())
    encoder = get_encoder(config.encoder, config.vector_length, **config.encoder_options)
    ids, names, vectors, (child_rows, parent_rows) = _read_entities(config, work, keep,
                                                                    encoder)
    offsets, rows, priors = arrays["offsets"], arrays["rows"], arrays["priors"]
    n_candidates = len(rows)
    counts = numpy.diff(offsets)
    alias_string_offsets, alias_blob = _alias_blob(work / "aliases.txt")
    n_aliases = len(offsets) - 1
    kb = builders.from_blobs(
        InMemoryLookupKB, Vocab(), numpy.frombuffer(ids.offsets, dtype=numpy.int64),
        numpy.frombuffer(ids.data, dtype=numpy.uint8), arrays["freqs"], vectors,
        alias_string_offsets, alias_blob, offsets, rows, priors)
    stats = {
        "entities": n,
        "aliases": n_aliases,
        "candidates": int(n_candidates),
        "ambiguous_aliases": int((counts > 1).sum()),
        "max_candidates": int(counts.max()) if len(counts) else 0,
    }
    # the KB holds (or adopted) all of these now: the index reads the KB's copies
    del vectors, arrays, counts, alias_string_offsets, alias_blob, offsets, rows, priors
    release_memory()
    exact = kb.get_size_entities() == n and kb.get_size_aliases() == n_aliases
    if exact:  # rows of the KB are the rows here: everything is set by row
        if len(names.data):  # some entity has a name
            builders.set_name_blob(kb, numpy.frombuffer(names.offsets, dtype=numpy.int64),
                                   numpy.frombuffer(names.data, dtype=numpy.uint8))
        if len(child_rows):
            builders.set_relation_rows(kb, child_rows, parent_rows)
    else:  # duplicate ids or aliases (warned about, the first kept): by id
        id_strings = ids.strings()
        if len(names.data):
            for start in range(0, n, _NAMES_CHUNK):
                chunk = range(start, min(start + _NAMES_CHUNK, n))
                kb.set_names(id_strings[chunk.start:chunk.stop], names.strings(chunk))
        if len(child_rows):
            kb.set_relations([id_strings[row] for row in child_rows.tolist()],
                             [id_strings[row] for row in parent_rows.tolist()])
        del id_strings
    n_relations = len(child_rows)
    del ids, names, child_rows, parent_rows
    release_memory()
    if config.index:
        _say(config, "Building the alias index (normalised and fuzzy lookup)")
        if exact:  # in chunks, from the blob (kb.build_alias_index holds every string)
            normalizer = AliasNormalizer()
            # the KB's alias arrays (views, but for the offsets); the other
            # sections it builds (slot tables, names, relations) are dropped
            # before the index is built
            views = kb._compact_arrays()
            alias_arrays = [views[name] for name in (
                "alias_string_offsets", "alias_strings", "alias_offsets", "candidate_rows",
                "candidate_priors")]
            del views
            release_memory()
            index = build_index_arrays(*alias_arrays, normalizer)
            del alias_arrays
            builders.set_alias_index(kb, index, normalizer, True)
            del index
        else:
            kb.build_alias_index()
    release_memory()  # before the KB file is written (it makes arrays of its own)
    meta = dict(meta)
    meta["encoder"] = encoder.to_config()
    stats["relations"] = n_relations
    stats["vector_length"] = encoder.dim
    meta["stats"] = stats
    write_kb_directory(kb, config.output, meta, extra_files={
        TITLES_FILE: lambda target: shutil.copyfile(work / "titles.tsv", target)})
    return stats
