"""From tables to a KB, and the KB folder on disk.

``build_kb`` (tables -> KB), ``write_kb_directory``, ``read_kb_meta``.

A KB folder holds kb.bin, meta.json and sidecar files, written all or nothing.
"""

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy

from ..errors import KBError
from ..kb import InMemoryLookupKB
from ..kb import format as kb_format
from .tables import META_FILE, AliasTable, EntityTable, KBSourceError, PathLike

# ------------------------------------------------------------------ building


def entity_texts(entities: EntityTable, aliases: Optional[AliasTable] = None) -> List[str]:
    """The text to encode for each entity: its name and description, else its aliases.

    An entity without name and description is described by up to three of
    its aliases (those where it has the highest priors), else by its id.
    """
    texts = list(entities.texts)
    missing = [i for i, text in enumerate(texts) if not text]
    if missing and aliases is not None and aliases.n_candidates:
        best: Dict[int, List[Tuple[float, str]]] = {i: [] for i in missing}
        counts = numpy.diff(aliases.offsets)
        owners = numpy.repeat(numpy.arange(len(aliases.texts)), counts)
        for owner, entity, prior in zip(owners.tolist(), aliases.entities.tolist(),
                                        aliases.priors.tolist()):
            if entity in best:
                best[entity].append((-prior, aliases.texts[owner]))
        for i, found in best.items():
            texts[i] = " ".join(text for _, text in sorted(found)[:3])
    return [text or entities.ids[i] for i, text in enumerate(texts)]


def build_kb(vocab, entities: EntityTable, aliases: AliasTable, *, encoder=None,
             progress: bool = False) -> InMemoryLookupKB:
    """Build a KB in one bulk call; vectors come from the file or the encoder.

    encoder: Computes the vectors when the entity file has none (see
        ``entity_linker.encoders``); it is an error to give one when the file
        has vectors.
    """
    if entities.vectors is not None:
        if encoder is not None:
            raise KBSourceError(
                "the entities have vectors, so no encoder is used: drop the encoder "
                "option or the vector column.",
                entities.path,
            )
        vectors = entities.vectors
    else:
        if encoder is None:
            from ..encoders import get_encoder

            encoder = get_encoder()
        from ..encoders import encode_texts

        vectors = encode_texts(encoder, entity_texts(entities, aliases), progress=progress,
                               desc="Encoding descriptions")
    kb = InMemoryLookupKB.from_arrays(
        vocab, entities.ids, entities.freqs, vectors,
        aliases.texts, aliases.offsets, aliases.entities, aliases.priors,
    )
    if any(entities.names):
        kb.set_names(entities.ids, entities.names)
    return kb


# ------------------------------------------------------- writing KB folders


def write_kb_directory(kb: InMemoryLookupKB, output: PathLike, meta: Dict[str, Any],
                       extra_files: Optional[Dict[str, Callable[[Path], None]]] = None) -> Path:
    """Write a KB folder: kb.bin, meta.json and sidecar files, all or nothing.

    Everything is written to a staging folder first. A new folder is then
    renamed into place in one step; in an existing folder the sidecars and
    meta.json replace the old ones and kb.bin goes last, so an interrupted or
    failed build never leaves a partial kb.bin.
    extra_files: file name -> function that writes the file at the given path.
    RETURNS (Path): The KB folder.
    """
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise KBError(f"{output} is a file; a KB is written to a directory.")
    extra_files = dict(extra_files or {})
    names = sorted(extra_files) + [META_FILE]
    meta = dict(meta)
    meta["files"] = [kb_format.FILE_NAME] + sorted(extra_files)
    meta.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    output.parent.mkdir(parents=True, exist_ok=True)
    fresh = not output.exists()
    stage = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".tmp",
                                  dir=output.parent if fresh else output))
    try:
        # mkdtemp/mkstemp make private files; a KB is as readable as any new file.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(stage, 0o777 & ~umask)
        kb.to_disk(stage)
        os.chmod(stage / kb_format.FILE_NAME, 0o666 & ~umask)
        meta["kb_file_size"] = (stage / kb_format.FILE_NAME).stat().st_size
        for name, write in extra_files.items():
            write(stage / name)
        (stage / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n",
                                       encoding="utf8")
        if fresh:
            try:
                os.rename(stage, output)
                return output
            except OSError:
                if not output.is_dir():
                    raise
                # Someone created the folder meanwhile: fall back to file moves.
                output.mkdir(exist_ok=True)
        for name in names + [kb_format.FILE_NAME]:
            os.replace(stage / name, output / name)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
    return output


def read_kb_meta(path: PathLike) -> Dict[str, Any]:
    """The meta.json of a KB folder ({} when there is none)."""
    path = Path(path)
    meta_path = (path if path.is_dir() else path.parent) / META_FILE
    if not meta_path.exists():
        return {}
    try:
        return json.loads(meta_path.read_text(encoding="utf8"))
    except (OSError, ValueError) as err:
        raise KBError(f"{meta_path} is not valid JSON: {err}") from None
