"""Thinc models of the entity linker."""

from .models import build_nel_encoder, build_nel_encoder_v2

__all__ = ["build_nel_encoder", "build_nel_encoder_v2"]
