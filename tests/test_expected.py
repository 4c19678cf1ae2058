"""Expected validation performance (cluebench.expected) against a hand computation and its properties."""

import math
import random

from cluebench.grid.expected import expected_max, table_sizes

import pytest


def test_three_values_by_hand():
    curve = expected_max([70, 50, 60])  # any order: the function sorts
    means = [m for m, _ in curve]
    # n=1: the mean; n=2: P(max=50)=1/9, P(60)=4/9-1/9, P(70)=1-4/9; n=3: 1/27, 8/27-1/27, 1-8/27
    assert means == pytest.approx([60.0, (50 * 1 + 60 * 3 + 70 * 5) / 9, (50 * 1 + 60 * 7 + 70 * 19) / 27])
    assert means[1] == pytest.approx(64.4444444)
    # n=1: the population sd of 50, 60, 70; n=2: E[v^2] - E^2 with the weights above
    assert curve[0][1] == pytest.approx(math.sqrt(200 / 3))
    second = (2500 * 1 + 3600 * 3 + 4900 * 5) / 9
    assert curve[1][1] == pytest.approx(math.sqrt(second - means[1] ** 2))


def test_properties_on_random_grids():
    rng = random.Random(0)
    for _ in range(50):
        values = [round(rng.uniform(30, 95), 2) for _ in range(rng.randint(1, 40))]
        curve = expected_max(values)
        means = [m for m, _ in curve]
        assert len(curve) == len(values)
        assert means[0] == pytest.approx(sum(values) / len(values))
        assert all(b >= a - 1e-9 for a, b in zip(means, means[1:]))  # trying more never hurts
        assert min(values) - 1e-9 <= means[-1] <= max(values) + 1e-9
        assert all(sd >= 0 for _, sd in curve)


def test_ties_and_a_constant_grid():
    assert expected_max([55.5, 55.5, 55.5]) == [(55.5, 0.0)] * 3
    assert expected_max([42.0]) == [(42.0, 0.0)]
    # two tied lows: P(max of 2 = 50) = (2/3)^2, the rest 70
    assert expected_max([50, 50, 70])[1][0] == pytest.approx(50 * 4 / 9 + 70 * 5 / 9)


def test_no_values_or_a_bad_one():
    with pytest.raises(ValueError):
        expected_max([])
    with pytest.raises(ValueError):
        expected_max([1.0, float("nan")])


def test_table_sizes():
    assert table_sizes(1) == [1]
    assert table_sizes(4) == [1, 2, 3, 4]
    assert table_sizes(12) == [1, 2, 3, 5, 10, 12]
    assert table_sizes(10) == [1, 2, 3, 5, 10]
    assert table_sizes(134) == [1, 2, 3, 5, 10, 20, 50, 100, 134]
