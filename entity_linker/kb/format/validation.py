"""Deep validation of a KB image (every checksum, every stored index, every
string's hash), ``validate`` of a file or KB folder, and ``resolve_path``."""

import json
import zlib
from pathlib import Path
from typing import Union

import numpy

from ...errors import KBFormatError, KBNotFoundError
from .header import open_views
from .layout import FILE_NAME, PROB_SUM_TOLERANCE, VERSION_SECTIONS, Header


def _decreases(offsets: numpy.ndarray) -> bool:
    """Whether an unsigned offsets array ever decreases (compared unsigned: a
    cast to int64 would wrap values >= 2**63 and hide the decrease)."""
    return bool(numpy.any(offsets[1:] < offsets[:-1]))


def _check_table(views, source, table_name, hashes_name, n_rows):
    """Every row's hash is stored once, in a cell or slot that a lookup reaches."""
    hashes = views[hashes_name]
    if n_rows and (int(hashes.min()) < 2 or len(numpy.unique(hashes)) != n_rows):
        raise KBFormatError(f"{source}: {hashes_name} holds a reserved (0, 1) or repeated hash.")
    table = views[table_name]
    if table.dtype.itemsize == 8:  # version 1: (key, row + 1) cells
        table = table.reshape(-1, 2)
        occupied = table[:, 0] != 0
        values = table[occupied, 1]
    else:  # slots: row + 1, the key is hashes[row]
        occupied = table != 0
        values = table[occupied].astype(numpy.uint64)
    used = numpy.flatnonzero(occupied)
    if len(used) != n_rows or (n_rows and (values.min() < 1 or values.max() > n_rows)):
        raise KBFormatError(f"{source}: the {table_name} table does not map every row once.")
    if not n_rows:
        return
    keys = hashes[(values - 1).astype(numpy.int64)]
    if table.ndim == 2 and not numpy.array_equal(keys, table[occupied, 0]):
        raise KBFormatError(f"{source}: the {table_name} table disagrees with {hashes_name}.")
    if len(numpy.unique(values)) != n_rows:
        raise KBFormatError(f"{source}: the {table_name} table maps two keys to one row.")
    # Linear probing finds a key only if no empty slot lies between its home slot and it.
    length = len(occupied)
    empty = numpy.concatenate([[0], numpy.cumsum(numpy.tile(~occupied, 2))])
    home = (keys & numpy.uint64(length - 1)).astype(numpy.int64)
    position = numpy.where(used >= home, used, used + length)
    if numpy.any(empty[position] - empty[home] != 0):
        raise KBFormatError(f"{source}: a key of the {table_name} table is off its probe path.")


def _check_strings(views, source, kind, n_rows):
    """Every string is valid UTF-8 and hashes to its row's stored hash."""
    from ..hashing import hash_string

    bounds = views[f"{kind}_string_offsets"].tolist()
    data = views[f"{kind}_strings"].tobytes()
    hashes = views[f"{kind}_hashes"]
    for row in range(n_rows):
        try:
            text = data[bounds[row] : bounds[row + 1]].decode("utf8")
        except UnicodeDecodeError:
            raise KBFormatError(f"{source}: {kind} string {row} is not valid UTF-8.") from None
        if hash_string(text) != hashes[row]:
            raise KBFormatError(f"{source}: {kind} string {row} does not match its hash.")


def validate_buffer(buffer, source: str, deep: bool = True) -> Header:
    """Check a KB image; with ``deep``, every checksum and every stored index too."""
    header, views = open_views(buffer, source)
    if not deep:
        return header
    for name, _ in VERSION_SECTIONS[header.format_version]:
        offset, length, crc = header.sections[name]
        if zlib.crc32(memoryview(buffer)[offset : offset + length]) != crc:
            raise KBFormatError(
                f"{source}: checksum mismatch in section {name} (bytes {offset:,} to "
                f"{offset + length:,}). The file is corrupt; rebuild or re-copy it."
            )
    for name in ("entity_string_offsets", "alias_string_offsets", "alias_offsets"):
        if _decreases(views[name]):
            raise KBFormatError(f"{source}: {name} is not monotonic.")
    if header.n_candidates and int(views["candidate_rows"].max()) >= header.n_entities:
        raise KBFormatError(f"{source}: a candidate points past the last entity.")
    priors = views["candidate_priors"]
    if not numpy.all((priors >= 0) & (priors <= 1)):
        raise KBFormatError(f"{source}: a prior probability is outside [0, 1] or NaN.")
    sums = numpy.diff(numpy.concatenate([[0.0], numpy.cumsum(priors, dtype=numpy.float64)])[
        views["alias_offsets"].astype(numpy.int64)])
    if numpy.any(sums > PROB_SUM_TOLERANCE):
        raise KBFormatError(f"{source}: the priors of an alias sum to more than 1.")
    if not numpy.all(numpy.isfinite(views["vectors"])):
        raise KBFormatError(f"{source}: an entity vector holds NaN or inf.")
    if not numpy.all(numpy.isfinite(views["entity_freqs"])):
        raise KBFormatError(f"{source}: an entity frequency is NaN or inf.")
    tables = "slots" if header.format_version >= 2 else "cells"
    _check_table(views, source, f"entity_{tables}", "entity_hashes", header.n_entities)
    _check_table(views, source, f"alias_{tables}", "alias_hashes", header.n_aliases)
    _check_strings(views, source, "entity", header.n_entities)
    _check_strings(views, source, "alias", header.n_aliases)
    if header.has_alias_index:
        _check_index(views, header, source)
    if len(views["parent_offsets"]):
        if _decreases(views["parent_offsets"]):
            raise KBFormatError(f"{source}: parent_offsets is not monotonic.")
        parents = views["parent_rows"]
        if len(parents) and int(parents.max()) >= header.n_entities:
            raise KBFormatError(f"{source}: a parent row points past the last entity.")
    if len(views["name_offsets"]):
        if _decreases(views["name_offsets"]):
            raise KBFormatError(f"{source}: name_offsets is not monotonic.")
        try:
            views["name_strings"].tobytes().decode("utf8")
        except UnicodeDecodeError:
            raise KBFormatError(f"{source}: an entity name is not valid UTF-8.") from None
    return header


def read_index_config(raw: bytes, source: str) -> tuple:
    """The (normalizer, fuzzy) settings stored in an index_config section."""
    from ..normalize import AliasNormalizer

    try:
        config = json.loads(raw.decode("utf8"))
        return AliasNormalizer.from_dict(config["normalizer"]), bool(config["fuzzy"])
    except (ValueError, KeyError, TypeError, RecursionError) as err:
        raise KBFormatError(
            f"{source}: the alias index settings are corrupt ({type(err).__name__}: "
            f"{str(err)[:200]})."
        ) from None


def _check_index(views, header: Header, source: str) -> None:
    """Every index stored in the alias index lies in range (deep validation)."""
    read_index_config(views["index_config"].tobytes(), source)
    n_keys = len(views["norm_hashes"])
    for name, limit in (
        ("norm_entity_rows", header.n_entities),
        ("norm_alias_rows", header.n_aliases),
        ("gram_postings", n_keys),
    ):
        if len(views[name]) and int(views[name].max()) >= limit:
            raise KBFormatError(f"{source}: {name} points past the end of its table.")
    for name in ("norm_offsets", "gram_offsets"):
        if _decreases(views[name]):
            raise KBFormatError(f"{source}: {name} is not monotonic.")
    priors = views["norm_priors"]
    if not numpy.all((priors >= 0) & (priors <= 1)):
        raise KBFormatError(f"{source}: an alias index prior is outside [0, 1] or NaN.")
    if len(views["norm_gram_counts"]) and int(views["norm_gram_counts"].min()) < 1:
        raise KBFormatError(f"{source}: a normalised alias has no trigrams.")
    _check_table(views, source, "norm_slots", "norm_hashes", n_keys)
    if len(views["gram_keys"]):
        _check_table(views, source, "gram_slots", "gram_keys", len(views["gram_keys"]))


def validate(path: Union[str, Path], deep: bool = True) -> Header:
    """Check a KB file (or a KB directory written by ``to_disk``).

    path (Union[str, Path]): The kb.bin file or the directory holding it.
    deep (bool): Also verify every section checksum and every stored index.
    RETURNS (Header): The decoded header.
    """
    path = resolve_path(path)
    with open(path, "rb") as file:
        data = file.read()
    return validate_buffer(data, str(path), deep=deep)


# The file spaCy's InMemoryLookupKB.to_disk writes (with strings.json).
SPACY_CONTENTS = "contents"


def resolve_path(path: Union[str, Path]) -> Path:
    """The KB file for a path that is either the file or a directory holding kb.bin.

    Raises KBNotFoundError (a ValueError and a FileNotFoundError) when there is
    none, and KBFormatError for a folder that spaCy's own KB wrote.
    """
    path = Path(path)
    if not path.exists():
        raise KBNotFoundError(
            f"Cannot load a KB from {path}: the path does not exist. Save a KB with "
            "kb.to_disk(directory) first."
        )
    if path.is_dir():
        if not (path / FILE_NAME).exists() and (path / SPACY_CONTENTS).exists():
            raise KBFormatError(
                f"{path} holds a KB saved by spaCy's InMemoryLookupKB ('{SPACY_CONTENTS}', "
                "no kb.bin). Convert it once: load it with spaCy "
                "(spacy.kb.InMemoryLookupKB(vocab, length).from_disk(path)), then "
                "entity_linker.InMemoryLookupKB.from_spacy(that_kb).to_disk(new_path)."
            )
        path = path / FILE_NAME
    if not path.exists():
        raise KBNotFoundError(
            f"No KB file at {path}. Save a KB with kb.to_disk(directory) first."
        )
    return path
