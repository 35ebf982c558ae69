"""``entity-linker train`` and ``entity-linker init-config``: train a pipeline with ``nel``.

``train`` is spaCy's ``spacy train`` with this package imported: same config,
same ``--section.key value`` overrides, same output (model-best, model-last).
``init-config`` writes the documented config template shipped in
entity_linker/data/nel_config.cfg.
"""

import logging
import shutil
from pathlib import Path
from typing import Any, Dict, Optional

import typer

from . import app, msg

TEMPLATE_NAME = "nel_config.cfg"


def config_template_path() -> Path:
    """The config template shipped in the package (a pipeline ["sentencizer", "nel"])."""
    return Path(__file__).parent.parent / "data" / TEMPLATE_NAME


def write_config_template(path: Path, force: bool = False) -> None:
    """Copy the config template to ``path`` (a file, or a folder to write it into)."""
    if path.is_dir():
        path = path / TEMPLATE_NAME
    if path.exists() and not force:
        msg.fail(f"{path} exists; pass --force to overwrite it.", exits=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(config_template_path(), path)
    msg.good(f"Wrote the nel config template to {path}")
    msg.text(
        f"Train with: entity-linker train {path} --output training --paths.train "
        "train.spacy --paths.dev dev.spacy --paths.kb my_kb"
    )


@app.command("init-config")
def init_config_command(
    path: Path = typer.Argument(
        ..., metavar="PATH", help=f"Config file to write (or a folder to write "
        f"{TEMPLATE_NAME} into).", show_default=False,
    ),
    force: bool = typer.Option(False, "--force", "-F", help="Overwrite an existing file."),
) -> None:
    """Write the documented training config for a pipeline ["sentencizer", "nel"].

    Every setting of the nel component is explained in the file. Fill in
    [paths] train, dev and kb (or pass them to train as --paths.train etc.).
    """
    write_config_template(path, force)


@app.command(
    "train", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def train_command(
    ctx: typer.Context,  # holds the --section.key value overrides
    config_path: Optional[Path] = typer.Argument(
        None, metavar="CONFIG", help="spaCy training config (- for stdin); `entity-linker "
        "init-config` writes a documented one.", show_default=False,
    ),
    output: Optional[Path] = typer.Option(
        None, "--output", "--output-path", "-o", help="Folder to save model-best and "
        "model-last in (nothing is saved without it).", show_default=False,
    ),
    code_path: Optional[Path] = typer.Option(
        None, "--code", "-c", help="Python file with more registered functions to import.",
        show_default=False,
    ),
    use_gpu: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, or -1 for the CPU."),
    verbose: bool = typer.Option(False, "--verbose", "-V", help="Log more (debugging)."),
    init_config: Optional[Path] = typer.Option(
        None, "--init-config", help="Only write the config template here (as init-config) "
        "and exit.", show_default=False,
    ),
    force: bool = typer.Option(False, "--force", "-F", help="With --init-config: "
                               "overwrite an existing file."),
) -> None:
    """Train a pipeline with the nel component from a spaCy config, as `spacy train` does.

    The training data are .spacy files of docs whose entities carry gold kb
    ids; the KB is a folder written by `entity-linker kb build`. Any config
    setting can be overridden: --paths.train train.spacy --paths.dev dev.spacy
    --paths.kb my_kb --training.max_steps 2000. The best pipeline (by the dev
    nel_micro_f) is saved as OUTPUT/model-best.
    """
    if init_config is not None:
        if config_path is not None or ctx.args:
            raise typer.BadParameter("--init-config takes no config or overrides.")
        write_config_template(init_config, force)
        return
    if config_path is None or str(config_path).startswith("--"):
        # An override before the config is taken for it (as by `spacy train`).
        raise typer.BadParameter("give the training config first (or --init-config PATH to "
                                 "write one), then the --section.key value overrides.",
                                 param_hint="CONFIG")
    from click import NoSuchOption
    from spacy import util
    from spacy.cli._util import import_code, parse_config_overrides
    from spacy.cli.train import train

    import entity_linker  # noqa: F401  (registers the factory and functions)

    from ..errors import KBError

    if verbose:
        util.logger.setLevel(logging.DEBUG)
    # Parsed exactly as spaCy parses them (also from SPACY_CONFIG_OVERRIDES).
    try:
        overrides = parse_config_overrides(list(ctx.args))
    except NoSuchOption as err:  # click's, which typer's own click does not catch
        raise typer.BadParameter(
            f"no such option {err.option_name}. Config overrides have a section: "
            "--section.key value, e.g. --training.max_steps 1000."
        ) from None
    import_code(code_path)
    _check_paths(config_path, overrides)
    try:
        train(config_path, output, use_gpu=use_gpu, overrides=overrides)
    except (KBError, OSError) as err:  # e.g. --paths.kb names no KB: no traceback
        msg.fail(str(err), exits=1)
    if output is not None and (output / "model-best").exists():
        msg.info(f"Evaluate with: entity-linker evaluate {output / 'model-best'} dev.spacy")


def _check_paths(config_path: Path, overrides: Dict[str, Any]) -> None:
    """Fail early, naming the fix, when the config uses [paths] train/dev/kb unset.

    spaCy would stop later, at initialization, with a validation error deep
    inside the config (e.g. "kb_loader -> kb_path: None is not a Path").
    """
    from spacy import util

    if str(config_path) == "-" or not config_path.is_file():
        return  # stdin can be read once only; spaCy reports a missing file
    try:
        config = util.load_config(config_path, overrides=overrides, interpolate=False)
    except Exception:  # spaCy reports config errors itself, with their context
        return
    text = config.to_str()
    paths = config.get("paths", {})
    missing = [name for name in ("train", "dev", "kb")
               if name in paths and paths[name] is None and f"${{paths.{name}}}" in text]
    if missing:
        options = " ".join(f"--paths.{name} ..." for name in missing)
        msg.fail(f"The config uses [paths] {', '.join(missing)} but does not set "
                 f"{'it' if len(missing) == 1 else 'them'}: pass {options} (or set "
                 f"{'it' if len(missing) == 1 else 'them'} in the config).", exits=1)
