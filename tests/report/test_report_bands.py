"""Which rows the report shows: bands on scores alone."""

from __future__ import annotations

import numpy as np

from speechmine.report.bands import choose_bands


def _by_key(bands):
    return {b.key: b for b in bands}


def test_four_disjoint_bands_around_a_threshold_inside():
    scores = np.linspace(2.0, 1.0, 100)  # rank i has score 2 - i/99
    bands = _by_key(choose_bands(scores, threshold=1.5, per_band=10, seed=0))
    assert list(bands) == ["top", "around", "bottom", "random"]
    assert bands["top"].ranks.tolist() == list(range(10))
    assert bands["bottom"].ranks.tolist() == list(range(90, 100))
    around = bands["around"]
    assert around.ranks.size == 10
    above = scores[around.rows] >= 1.5
    assert above.sum() == 5 and (~above).sum() == 5  # half each side
    assert above.tolist() == sorted(above.tolist(), reverse=True)  # by decreasing score
    assert "5 at or above it, 5 below" in around.title
    all_rows = np.concatenate([b.rows for b in bands.values()])
    assert np.unique(all_rows).size == all_rows.size == 40  # disjoint
    rnd = bands["random"]
    assert rnd.rows.size == 10 and np.all(np.diff(rnd.ranks) > 0)


def test_random_band_is_seeded():
    scores = np.random.default_rng(5).normal(size=500)
    a = _by_key(choose_bands(scores, 0.0, 20, seed=1))["random"].rows
    b = _by_key(choose_bands(scores, 0.0, 20, seed=1))["random"].rows
    c = _by_key(choose_bands(scores, 0.0, 20, seed=2))["random"].rows
    assert a.tolist() == b.tolist() and a.tolist() != c.tolist()


def test_mining_threshold_below_every_score_makes_bottom_its_neighbourhood():
    scores = np.linspace(3.0, 1.2, 50)
    bands = _by_key(choose_bands(scores, threshold=1.1, per_band=10,
                                 threshold_name="mining threshold"))
    assert "around" not in bands
    assert "just above it" in bands["bottom"].note
    assert "mining threshold 1.1" in bands["bottom"].note


def test_threshold_in_top_band_is_said():
    scores = np.linspace(3.0, 1.0, 50)
    bands = _by_key(choose_bands(scores, threshold=2.9, per_band=10))
    assert "around" not in bands and "falls in this band" in bands["top"].note


def test_fewer_rows_than_a_band():
    scores = np.array([0.5, 0.9, 0.7])
    bands = choose_bands(scores, threshold=0.6, per_band=10)
    assert [b.key for b in bands] == ["top"]
    assert bands[0].rows.tolist() == [1, 2, 0]  # by decreasing score, rows index the input
    assert bands[0].ranks.tolist() == [0, 1, 2]


def test_ties_keep_row_order_and_unsorted_input():
    scores = np.array([1.0, 2.0, 1.0, 2.0, 1.0, 0.5])
    bands = _by_key(choose_bands(scores, threshold=0.0, per_band=2))
    assert bands["top"].rows.tolist() == [1, 3]
    assert bands["bottom"].rows.tolist() == [4, 5]
    assert sorted(bands["random"].rows.tolist()) == [0, 2]
