"""Giving freed memory back to the system between the build's passes."""

import ctypes
import gc
import sys
from functools import lru_cache
from typing import Callable, Optional


@lru_cache(maxsize=1)
def _malloc_trim() -> Optional[Callable[[int], int]]:
    """glibc's malloc_trim, None elsewhere (other C libraries, other systems)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def release_memory() -> None:
    """Collect garbage and give the C heap's free pages back to the system.

    numpy allocates arrays of up to 32 MB on glibc's heap once a larger one
    was freed, and the heap keeps freed pages: without a trim, RSS stays at the
    high-water mark of the arrays of every pass that came before.
    """
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
