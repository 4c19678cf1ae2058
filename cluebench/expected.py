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
    mean and its population standard deviation; E grows with n towards max(values)."""
    ordered = sorted(float(v) for v in values)
    if not ordered:
        raise ValueError("expected_max needs at least one value")
    if not all(math.isfinite(v) for v in ordered):
        raise ValueError("expected_max: a value is not a finite number")
    size = len(ordered)
    curve = []
    for n in range(1, size + 1):
        below = [(i / size) ** n for i in range(size + 1)]  # P(max of n <= v_i), i = 0 .. N
        weights = [below[i] - below[i - 1] for i in range(1, size + 1)]
        mean = sum(w * v for w, v in zip(weights, ordered))
        second = sum(w * v * v for w, v in zip(weights, ordered))
        # rounding can leave a tiny negative variance (all values equal): that is zero
        curve.append((mean, math.sqrt(max(second - mean * mean, 0.0))))
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
