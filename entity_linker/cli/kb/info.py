"""``entity-linker kb info`` (counts, sizes, the most ambiguous aliases:
``kb_info``) and ``kb validate`` (the deep checks of a KB folder)."""

import json
import mmap
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import typer

from .. import msg, out
from .common import _fail, _resolve_kb_path, _size


def kb_info(path: Path, top: int = 10) -> Dict[str, Any]:
    """Counts, sizes, ambiguity and the most ambiguous aliases of a KB file."""
    import numpy

    from ...kb import format as kb_format
    from ...kb_sources import read_kb_meta

    file_path = kb_format.resolve_path(path)
    with open(file_path, "rb") as file:
        size = file.seek(0, 2)
        buffer = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
    header, views = kb_format.open_views(buffer, str(file_path))
    offsets = views["alias_offsets"].astype(numpy.int64)
    counts = numpy.diff(offsets)
    n_aliases = header.n_aliases

    def decode(kind: str, row: int) -> str:
        starts = views[f"{kind}_string_offsets"]
        return views[f"{kind}_strings"][int(starts[row]) : int(starts[row + 1])].tobytes().decode(
            "utf8", "replace"
        )

    most = []
    if n_aliases and top > 0:
        k = min(top, n_aliases)
        rows = numpy.argpartition(-counts, k - 1)[:k]
        rows = rows[numpy.lexsort((rows, -counts[rows]))]
        for row in rows.tolist():
            start, end = int(offsets[row]), int(offsets[row + 1])
            priors = views["candidate_priors"][start:end]
            best = numpy.argsort(-priors, kind="stable")[:3]
            most.append({
                "alias": decode("alias", row),
                "candidates": end - start,
                "top": [(decode("entity", int(views["candidate_rows"][start + j])),
                         round(float(priors[j]), 4)) for j in best.tolist()],
            })
    info = {
        "path": str(file_path),
        "file_size": size,
        "format_version": header.format_version,
        "entities": header.n_entities,
        "aliases": n_aliases,
        "candidates": header.n_candidates,
        "vector_length": header.vector_length,
        "candidates_per_alias": header.n_candidates / n_aliases if n_aliases else 0.0,
        "ambiguous_aliases": int((counts > 1).sum()),
        "max_candidates": int(counts.max()) if n_aliases else 0,
        "most_ambiguous": most,
        "alias_index": _index_info(views) if header.has_alias_index else None,
        "meta": read_kb_meta(file_path.parent),
    }
    return info


def _index_info(views) -> Dict[str, Any]:
    config = json.loads(views["index_config"].tobytes().decode("utf8"))
    return {
        "normalized_keys": len(views["norm_hashes"]),
        "trigrams": len(views["gram_keys"]),
        "fuzzy": bool(config.get("fuzzy")),
        "expansions": config.get("normalizer", {}).get("expansions", {}),
    }


def info_command(
    path: Optional[Path] = typer.Argument(
        None, help="KB folder (or its kb.bin).", show_default=False
    ),
    geonames: bool = typer.Option(False, "--geonames", help="Describe the cached GeoNames KB."),
    vector_length: int = typer.Option(64, "--vector-length", "-L", min=1,
                                      help="Vector length of the GeoNames KB (--geonames)."),
    top: int = typer.Option(10, "--top", "-n", min=0, help="How many of the most ambiguous "
                            "aliases to list."),
    as_json: bool = typer.Option(False, "--json", help="Print the information as JSON."),
) -> None:
    """Show a KB's counts, vector length, file size, format version and most ambiguous aliases."""
    from ...errors import KBError

    try:
        info = kb_info(_resolve_kb_path(path, geonames, vector_length), top)
    except (KBError, OSError) as err:
        _fail(err)
        return
    if as_json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
        return
    n_aliases = max(info["aliases"], 1)
    meta = info["meta"]
    encoder = meta.get("encoder") or {}
    rows = [
        ("Path", info["path"]),
        ("File size", _size(info["file_size"])),
        ("Format version", str(info["format_version"])),
        ("Entities", f"{info['entities']:,}"),
        ("Aliases", f"{info['aliases']:,}"),
        ("Candidates", f"{info['candidates']:,}"),
        ("Candidates per alias", f"{info['candidates_per_alias']:.2f}"),
        ("Ambiguous aliases",
         f"{info['ambiguous_aliases']:,} ({100 * info['ambiguous_aliases'] / n_aliases:.1f}%)"),
        ("Most candidates of an alias", f"{info['max_candidates']:,}"),
        ("Vector length", str(info["vector_length"])),
        ("Alias index", _describe_index(info["alias_index"])),
    ]
    if meta:
        rows.append(("Kind", str(meta.get("kind", "?"))))
        rows.append(("Encoder", ", ".join(f"{k}={v}" for k, v in encoder.items()) or "none "
                     "(vectors from the input)"))
        if meta.get("created"):
            rows.append(("Created", meta["created"]))
    out.divider("Knowledge base")
    out.table(rows)
    if info["most_ambiguous"]:
        label = _geonames_labels(Path(info["path"]).parent)
        out.divider(f"Most ambiguous aliases (top {len(info['most_ambiguous'])})")
        table = [
            (item["alias"], f"{item['candidates']:,}",
             ", ".join(f"{label(entity)} ({prior:.3f})" for entity, prior in item["top"]))
            for item in info["most_ambiguous"]
        ]
        out.table(table, header=("Alias", "Candidates", "Top candidates (prior)"),
                  divider=True)


def _geonames_labels(folder: Path):
    """entity id -> "id Name (CC)" for a GeoNames KB folder, else the id itself."""
    from ...geonames import METADATA_FILE, GeoNamesMetadata

    if not (folder / METADATA_FILE).exists():
        return str
    try:
        meta = GeoNamesMetadata(folder)
    except Exception:  # info still works when the sidecar is broken (validate reports it)
        return str

    def label(entity: str) -> str:
        record = meta.get(entity)
        if record is None:
            return entity
        where = record.admin1 or record.country_code
        return f"{entity} {record.name}" + (f" ({where})" if where else "")

    return label




def _describe_index(index: Optional[Dict[str, Any]]) -> str:
    if index is None:
        return "none (exact lookup only; add one with `entity-linker kb index`)"
    fuzzy = f", {index['trigrams']:,} trigrams" if index["fuzzy"] else ", no fuzzy index"
    return f"{index['normalized_keys']:,} normalised aliases{fuzzy}"


def validate_command(
    path: Optional[Path] = typer.Argument(
        None, help="KB folder (or its kb.bin).", show_default=False
    ),
    geonames: bool = typer.Option(False, "--geonames", help="Check the cached GeoNames KB."),
    vector_length: int = typer.Option(64, "--vector-length", "-L", min=1,
                                      help="Vector length of the GeoNames KB (--geonames)."),
    shallow: bool = typer.Option(False, "--shallow", help="Check only the header and the "
                                 "section bounds (no checksums, no index checks)."),
) -> None:
    """Check a KB file deeply: header, every checksum and stored index, sidecar files.

    Exits with status 1 and names the problem when anything is wrong.
    """
    import numpy
    from spacy.vocab import Vocab

    from ...errors import KBError
    from ...kb import InMemoryLookupKB
    from ...kb import format as kb_format
    from ...kb_sources import META_FILE, read_kb_meta

    try:
        file_path = _resolve_kb_path(path, geonames, vector_length)
        started = time.perf_counter()
        header = kb_format.validate(file_path, deep=not shallow)
        msg.good(
            f"{file_path}: format version {header.format_version}, {header.n_entities:,} "
            f"entities, {header.n_aliases:,} aliases, {header.n_candidates:,} candidates "
            f"({'header and bounds' if shallow else 'checksums and indices'} checked)"
        )
        kb = InMemoryLookupKB(Vocab(), header.vector_length).from_disk(file_path)
        if not shallow and header.n_aliases:
            # Every alias found through the hash table again (a sample for large KBs).
            rng = numpy.random.default_rng(0)
            sample = rng.choice(header.n_aliases, size=min(header.n_aliases, 10000),
                                replace=False)
            texts = _alias_texts(file_path, sample.tolist())
            offsets, _, _ = kb.lookup_aliases(texts)
            if (numpy.diff(offsets) == 0).any():
                raise KBError(f"{file_path}: an alias is not found through the hash table.")
            msg.good(f"Looked up {len(texts):,} aliases through the hash table")
        folder = file_path.parent
        meta = read_kb_meta(folder)
        if meta:
            expected = meta.get("kb_file_size")
            if expected is not None and expected != file_path.stat().st_size:
                raise KBError(
                    f"{folder / META_FILE} describes a kb.bin of {expected:,} bytes, found "
                    f"{file_path.stat().st_size:,}: the folder mixes two builds; rebuild it."
                )
            for name in meta.get("files", []):
                if not (folder / name).exists():
                    raise KBError(f"{folder}: {name} (listed in {META_FILE}) is missing.")
            msg.good(f"{META_FILE} matches kb.bin")
        from ...geonames import METADATA_FILE, check_geonames_metadata

        if (folder / METADATA_FILE).exists() and (
            not meta or METADATA_FILE in meta.get("files", [METADATA_FILE])
        ):
            n_rows = check_geonames_metadata(folder, kb)
            msg.good(f"{METADATA_FILE}: {n_rows:,} rows match the KB's entities")
        msg.good(f"The KB is valid ({time.perf_counter() - started:.2f} s)")
    except (KBError, OSError) as err:
        _fail(err)


def _alias_texts(file_path: Path, rows) -> List[str]:
    """Alias strings of some rows, read from the file's views (no full decode)."""
    from ...kb import format as kb_format

    with open(file_path, "rb") as file:
        buffer = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    _, views = kb_format.open_views(buffer, str(file_path))
    starts, blob = views["alias_string_offsets"], views["alias_strings"]
    return [blob[int(starts[r]) : int(starts[r + 1])].tobytes().decode("utf8") for r in rows]
