"""entity_linker.evaluation: the reliability table and the threshold sweep."""

import pytest

from entity_linker.evaluation import RELIABILITY_BINS, reliability


def test_reliability_counts_links_and_precision_per_score_bin():
    linked = [(0.2, False), (0.45, True), (0.6, True), (0.95, True), (0.95, False),
              (0.999, True), (1.0, True)]
    rows = reliability(linked)
    assert [(r["low"], r["high"]) for r in rows] == list(zip(RELIABILITY_BINS[:-1],
                                                             RELIABILITY_BINS[1:]))
    by_bin = {r["low"]: r for r in rows}
    assert by_bin[0.0]["links"] == 2 and by_bin[0.0]["precision"] == pytest.approx(0.5)
    assert by_bin[0.5]["links"] == 1 and by_bin[0.5]["precision"] == 1.0
    assert by_bin[0.7]["links"] == 0 and by_bin[0.7]["precision"] is None
    assert by_bin[0.9]["links"] == 2 and by_bin[0.9]["precision"] == pytest.approx(0.5)
    assert by_bin[0.99]["links"] == 2  # a score of exactly 1 falls in the last bin
    assert sum(r["links"] for r in rows) == len(linked)
