"""What the ``kb`` commands share: error exits, sizes, ``-E KEY=VALUE``
options and finding the KB file of a command's arguments."""

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import typer

from .. import msg


def _fail(err: BaseException) -> None:
    msg.fail(str(err), exits=1)


def _size(n_bytes: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n_bytes < 1024 or unit == "GB":
            return f"{n_bytes:,.0f} {unit}" if unit == "B" else f"{n_bytes:,.1f} {unit}"
        n_bytes /= 1024
    return str(n_bytes)  # pragma: no cover


def _parse_options(values: List[str]) -> Dict[str, Any]:
    """KEY=VALUE strings to a dict; values are JSON when they parse, else strings."""
    options = {}
    for value in values:
        key, sep, raw = value.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected KEY=VALUE, got {value!r}", param_hint="-E")
        try:
            options[key.strip()] = json.loads(raw)
        except ValueError:
            options[key.strip()] = raw
    return options


def _resolve_kb_path(path: Optional[Path], geonames: bool, vector_length: int) -> Path:
    from ...errors import KBError
    from ...kb import format as kb_format

    if geonames:
        if path is not None:
            raise typer.BadParameter("give a KB path or --geonames, not both.")
        from ...geonames import geonames_kb_dir

        path = geonames_kb_dir(vector_length)
        if not (path / kb_format.FILE_NAME).exists():
            raise KBError(f"The GeoNames KB is not built yet (no {path}): run "
                          "`entity-linker kb build --geonames`.")
    if path is None:
        raise typer.BadParameter("give the KB folder (or kb.bin file), or --geonames.")
    return kb_format.resolve_path(path)
