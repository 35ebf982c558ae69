"""Thinc models of the entity linker."""

from .models import build_nel_encoder

__all__ = ["build_nel_encoder"]
