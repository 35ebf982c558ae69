"""Per-mention reductions over the candidates' flat arrays (CSR offsets):
softmax, maximum, minimum and sum within each mention's candidates."""

from typing import Optional, Tuple

import numpy


def _segments(offsets: numpy.ndarray) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """For numpy's reduceat: the first candidate of every mention that has one,
    and the index of each candidate's mention among those."""
    counts = numpy.diff(offsets)
    nonempty = counts > 0
    segment_of_mention = numpy.cumsum(nonempty) - 1
    segment = numpy.repeat(segment_of_mention, counts)
    return numpy.asarray(offsets[:-1])[nonempty], segment


def segment_softmax(logits: numpy.ndarray, offsets: numpy.ndarray,
                    nil_logit: Optional[float] = None) -> numpy.ndarray:
    """Softmax of the logits within each mention's candidates (float64). With
    ``nil_logit``, each mention also has a NIL option of that logit, which
    takes its share of the mass: a lone candidate no longer scores 1."""
    logits = numpy.asarray(logits, dtype=numpy.float64)
    if not len(logits):
        return logits.copy()
    starts, segment = _segments(offsets)
    peak = numpy.maximum.reduceat(logits, starts)
    if nil_logit is not None:
        peak = numpy.maximum(peak, nil_logit)
    shifted = numpy.exp(logits - peak[segment])
    total = numpy.add.reduceat(shifted, starts)
    if nil_logit is not None:
        total = total + numpy.exp(nil_logit - peak)
    return shifted / total[segment]


def segment_max(values: numpy.ndarray, offsets: numpy.ndarray) -> numpy.ndarray:
    """Each candidate's mention's maximum of ``values``."""
    values = numpy.asarray(values)
    if not len(values):
        return values.copy()
    starts, segment = _segments(offsets)
    return numpy.maximum.reduceat(values, starts)[segment]


def segment_min(values: numpy.ndarray, offsets: numpy.ndarray) -> numpy.ndarray:
    """Each candidate's mention's minimum of ``values`` (for a bool mask: whether
    all the mention's candidates have it)."""
    values = numpy.asarray(values)
    if not len(values):
        return values.copy()
    starts, segment = _segments(offsets)
    return numpy.minimum.reduceat(values, starts)[segment]


def segment_sum(rows: numpy.ndarray, offsets: numpy.ndarray) -> numpy.ndarray:
    """The sum of each mention's candidates' rows: (n_mentions, ...) with 0
    for a mention without candidates (``numpy.add.at`` by mention, without
    its per-element cost: the candidates of a mention are contiguous)."""
    rows = numpy.asarray(rows)
    counts = numpy.diff(offsets)
    out = numpy.zeros((len(counts),) + rows.shape[1:], dtype=rows.dtype)
    nonempty = counts > 0
    if len(rows):
        out[nonempty] = numpy.add.reduceat(rows, numpy.asarray(offsets[:-1])[nonempty], axis=0)
    return out
