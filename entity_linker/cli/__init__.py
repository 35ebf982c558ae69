"""The ``entity-linker`` command line (also ``python -m entity_linker``).

How commands are organised: ``app`` below is the root typer app. Each command
group lives in its own module of this package and registers itself on ``app``
when imported -- a group of sub-commands with ``app.add_typer(group, name=...)``
(see kb.py), a single command with ``@app.command("name")``. To add one (e.g.
cli/link.py, cli/train.py, cli/evaluate.py), write the module with
``from . import app`` at its top and import it at the bottom of this file.
"""

import typer

app = typer.Typer(
    name="entity-linker",
    help="entity_linker: a fast entity linker and knowledge base for spaCy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def main() -> None:
    """Run the command line (the ``entity-linker`` console script)."""
    app(prog_name="entity-linker")


# Command modules register themselves on `app` when imported (keep these last).
from . import evaluate, kb, link, link_corpus, train  # noqa: E402, F401

__all__ = ["app", "main"]
