"""``entity-linker wiki corpus``: a training corpus from Wikipedia's links."""

from pathlib import Path
from typing import Optional

import typer

from . import app, msg

wiki_app = typer.Typer(help="Training corpora from the Wikipedia dumps.", no_args_is_help=True)
app.add_typer(wiki_app, name="wiki")


@wiki_app.command("corpus")
def corpus_command(
    wikipedia: Path = typer.Option(..., "--wikipedia", help="Wikipedia pages-articles XML dump "
                                   "(.xml.bz2, .xml.gz or .xml).", show_default=False),
    kb: Path = typer.Option(..., "--kb", help="KB folder built by `kb build --wikidata "
                            "--wikipedia` (its wikipedia_titles.tsv maps titles to QIDs).",
                            show_default=False),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for the DocBin shards "
                                "(train-00000.spacy ...) and corpus.json.", show_default=False),
    lang: str = typer.Option("en", "--lang", help="Language of the tokenizer (spacy.blank)."),
    docs_per_shard: int = typer.Option(10000, "--docs-per-shard", min=1,
                                       help="Docs (paragraphs) per .spacy file."),
    max_per_entity: Optional[int] = typer.Option(
        None, "--max-per-entity", min=1, help="Keep at most N mentions of an entity, so "
        "frequent entities do not drown the rest.", show_default=False),
    max_docs: Optional[int] = typer.Option(None, "--max-docs", min=1, help="Stop after N docs.",
                                           show_default=False),
    workers: int = typer.Option(0, "--workers", "-j", min=0, help="Parser processes "
                                "(0: one per core)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Write Wikipedia paragraphs as docs whose links are gold mentions (QIDs of the KB).

    Train a general-domain nel on them with `entity-linker train CONFIG
    --paths.train CORPUS --paths.kb KB ...`.
    """
    from ..errors import KBError
    from ..wikidata.corpus import write_wiki_corpus

    try:
        stats = write_wiki_corpus(wikipedia, kb, output, lang=lang,
                                  docs_per_shard=docs_per_shard, max_per_entity=max_per_entity,
                                  max_docs=max_docs, workers=workers, progress=progress)
    except (KBError, OSError) as err:
        msg.fail(str(err), exits=1)
        return
    msg.good(f"Wrote {stats['docs']:,} docs with {stats['mentions']:,} mentions of "
             f"{stats['entities']:,} entities to {output} ({stats['shards']} shard(s))")
    msg.text(f"{stats['articles']:,} articles, {stats['paragraphs']:,} paragraphs with links; "
             f"skipped mentions: {stats['links_outside_kb']:,} outside the KB, "
             f"{stats['capped_mentions']:,} over --max-per-entity, "
             f"{stats['unaligned_mentions']:,} not on token boundaries")
