"""Expected validation performance (Dodge et al., "Show Your Work: Improved Reporting of Experimental
Results", EMNLP 2019): what best dev score one may expect after trying n configurations of a grid, drawn
at random with replacement from those that were run. Pure arithmetic, so that the grid tools and tests
can use it without matplotlib or Paddle.
"""

import math


def expected_max(values):
    """[(mean, sd)] of the best of n configurations for n = 1 .. N, N = len(values) (the dev scores of the
    configurations with a result). With v_1 <= ... <= v_N sorted, the best of n draws with replacement is v_i
    with probability (i/N)^n - ((i-1)/N)^n (Dodge et al. 2019, section 3), so

        E[max of n]   = sum_i v_i   * ((i/N)^n - ((i-1)/N)^n)
        Var[max of n] = sum_i v_i^2 * ((i/N)^n - ((i-1)/N)^n) - E^2.

    Tied values need no special case: their probabilities add up to that of the value. n = 1 gives the
    mean and its population standard deviation; E grows with n towards max(values).

    Summed by parts, E = v_N - sum_{i<N} (i/N)^n (v_{i+1} - v_i), and alike for v^2: one pass of N
    numbers per n (a grid of 10,000 configurations in well under a second), and a constant grid gives its
    value and a zero spread exactly."""
    import numpy as np

    ordered = np.sort(np.asarray([float(v) for v in values]))
    if not len(ordered):
        raise ValueError("expected_max needs at least one value")
    if not np.isfinite(ordered).all():
        raise ValueError("expected_max: a value is not a finite number")
    size = len(ordered)
    gaps, square_gaps = np.diff(ordered), np.diff(ordered * ordered)
    fractions = np.arange(1, size) / size
    below = np.ones(size - 1)  # (i/N)^n = P(max of n <= v_i), i = 1 .. N-1, one power more each n
    curve = []
    for _ in range(size):
        below *= fractions
        mean = ordered[-1] - below @ gaps
        second = ordered[-1] ** 2 - below @ square_gaps
        # rounding can leave a tiny negative variance: that is zero
        curve.append((float(mean), math.sqrt(max(float(second - mean * mean), 0.0))))
    return curve


def table_sizes(size):
    """The n of report.md's small table: 1, 2, 3, 5, 10, 20, 50, ... below N, then N itself."""
    steps, n, scale = [], 0, 1
    while True:
        for base in (1, 2, 3, 5) if scale == 1 else (1, 2, 5):
            n = base * scale
            if n >= size:
                return steps + [size]
            steps.append(n)
        scale *= 10
