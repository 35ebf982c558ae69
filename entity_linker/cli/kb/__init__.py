"""``entity-linker kb``: build, inspect and check knowledge-base folders.

The group's modules: ``build`` (``kb build``, ``kb index``), ``info``
(``kb info``, ``kb_info``, ``kb validate``) and ``common`` (what they share).
The commands are registered here, in the order ``--help`` lists them.
"""

import typer

from .. import app
from .build import build_command, index_command
from .info import info_command, kb_info, validate_command

kb_app = typer.Typer(
    help="Build, inspect and check knowledge bases (a folder holding kb.bin).",
    no_args_is_help=True,
)
app.add_typer(kb_app, name="kb")
kb_app.command("build")(build_command)
kb_app.command("info")(info_command)
kb_app.command("index")(index_command)
kb_app.command("validate")(validate_command)

__all__ = ["build_command", "index_command", "info_command", "kb_app", "kb_info",
           "validate_command"]
