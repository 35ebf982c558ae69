"""The ``entity-linker`` command line (also ``python -m entity_linker``).

How commands are organised: ``app`` below is the root typer app. Each command
group lives in its own module of this package and registers itself on ``app``
when imported -- a group of sub-commands with ``app.add_typer(group, name=...)``
(see kb.py), a single command with ``@app.command("name")``. To add one (e.g.
cli/link.py, cli/train.py, cli/evaluate.py), write the module with
``from . import app`` at its top and import it at the bottom of this file.
"""

import os
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from wasabi import Printer
from wasabi.util import color as _color
from wasabi.util import locale_escape, supports_ansi

app = typer.Typer(
    name="entity-linker",
    help="entity_linker: a fast entity linker and knowledge base for spaCy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class StreamPrinter(Printer):
    """A wasabi Printer that writes to sys.stderr (or sys.stdout), unwrapped.

    Messages (info, warnings, errors) go to stderr, so that stdout holds only
    data and can be piped; colours only when the stream is a terminal and the
    environment does not set NO_COLOR (https://no-color.org) or
    ANSI_COLORS_DISABLED. The stream is looked up at each write (CliRunner and
    tests replace it). Messages are not wrapped: a ``file:line: ...`` message
    stays on one line.
    """

    def __init__(self, stream: str = "stderr", **kwargs: Any) -> None:
        self.stream_name = stream
        super().__init__(**kwargs)

    @property
    def stream(self):
        return getattr(sys, self.stream_name)

    @property
    def show_color(self) -> bool:  # type: ignore[override]
        stream = self.stream
        isatty = getattr(stream, "isatty", None)
        return (bool(isatty and isatty()) and not os.environ.get("NO_COLOR")
                and supports_ansi())

    @show_color.setter
    def show_color(self, value: bool) -> None:
        pass  # decided at each write, by the stream

    def write(self, text: str) -> None:
        """Write a line to the printer's stream."""
        stream = self.stream
        stream.write(f"{text}\n")
        stream.flush()

    def text(self, title: Any = "", text: Any = "", color: Optional[Any] = None,
             bg_color: Optional[Any] = None, icon: Optional[str] = None,
             spaced: bool = False, show: bool = True, no_print: bool = False,
             exits: Optional[int] = None):
        if not show:
            return None
        title = str(title)
        if self.pretty:
            icon = self.icons.get(icon) if icon else None
            if icon:
                title = locale_escape(f"{icon} {title}").strip()
            if self.show_color:
                title = _color(title, fg=self.colors.get(color, color),
                               bg=self.colors.get(bg_color, bg_color))
        if text:
            title = f"{title}\n{text}"
        if spaced:
            title = f"\n{title}\n"
        if self.no_print or no_print:
            if exits is None:
                return title
        else:
            self.write(title)
        if exits is not None:
            sys.stdout.flush()
            sys.exit(exits)
        return None

    def divider(self, text: str = "", char: str = "=", show: bool = True,
                icon: Optional[str] = None):
        if not show:
            return None
        line = Printer(pretty=self.pretty, no_print=True, line_max=self.line_max).divider(
            text, char, icon=icon)
        if not self.show_color:
            line = line.replace("\x1b[1m", "").replace("\x1b[0m", "")
        if self.no_print:
            return line
        self.write(line)
        return None

    def table(self, data: Any, **kwargs: Any):
        title = kwargs.pop("title", None)
        if title:
            self.divider(title)
        text = Printer(no_print=True).table(data, **kwargs)
        if self.no_print:
            return text
        self.write(text)
        return None

    def row(self, data: Any, **kwargs: Any):
        text = Printer(no_print=True).row(data, **kwargs)
        if self.no_print:
            return text
        self.write(text)
        return None


# Messages (stderr), and data printed as text (stdout: link's tables, scores).
msg = StreamPrinter("stderr")
out = StreamPrinter("stdout")


def sets_ents(nlp, component: str) -> bool:
    """Whether a component before ``component`` sets doc.ents (ner, entity_ruler, ...)."""
    for name in nlp.pipe_names:
        if name == component:
            return False
        if "doc.ents" in nlp.get_pipe_meta(name).assigns:
            return True
    return False


def check_output_file(path: Path, option: str) -> None:
    """Fail now, before the long work, if an output file cannot be written there."""
    if path.is_dir():
        msg.fail(f"{option} {path}: is a folder; give a file name.", exits=1)
    if not path.parent.is_dir():
        msg.fail(f"{option} {path}: the folder {path.parent} does not exist.", exits=1)


def main() -> None:
    """Run the command line (the ``entity-linker`` console script)."""
    app(prog_name="entity-linker")


# Command modules register themselves on `app` when imported (keep these last).
from . import evaluate, kb, link, link_corpus, serve, train, wiki  # noqa: E402, F401

__all__ = ["StreamPrinter", "app", "check_output_file", "main", "msg", "out", "sets_ents"]
