"""Identification of a Hayashi-Yoshida lead-lag against its null measured by circular shifts
(elecflow/leadership/hayashi_yoshida.py, ticks.py; docs/leadership.md, "Lead-lag on ticks").

References, independent of the code under test: the HY covariance of an explicitly rotated
copy of ``y`` (numpy); the spread of peak-free correlations over many simulated independent
pairs of asynchronous random walks (the null's definition); a known delay; the null measured
on the union of the windows whose nulls are summed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import lfilter

from elecflow.leadership import hayashi_yoshida, lead_lag
from elecflow.leadership.hayashi_yoshida import FALSE_IDENTIFICATION_RATE, hayashi_yoshida_null, identify_lead_lag
from elecflow.leadership.ticks import CurveSum, TickWindow, window_curve, window_null

NS = 1_000_000_000
LAGS = np.arange(-40, 41) * 0.25  # the node's default grid, -10..10 s
FINE = 0.05  # s, the simulated paths' grid


def _poisson_clock(rng, rate: float, span: float) -> np.ndarray:
    return np.sort(rng.uniform(0.0, span, rng.poisson(rate * span)))


def _path(rng, span: float, half_life: float = 0.0) -> np.ndarray:
    """A Brownian path on the fine grid; with a half-life, the quote that follows it by partial
    adjustment (autocorrelated increments, as the synthetic day's quoted mids)."""
    path = np.cumsum(rng.standard_normal(int(span / FINE) + 1)) * math.sqrt(FINE)
    if half_life > 0.0:
        a = 1.0 - 0.5 ** (FINE / half_life)
        path = lfilter([a], [1.0, a - 1.0], path)
    return path


def _sample(path: np.ndarray, times: np.ndarray) -> np.ndarray:
    return path[np.minimum((times / FINE).astype(np.int64), path.size - 1)]


def _independent_pair(rng, rate_x: float, rate_y: float, span: float, half_life_y: float):
    tx, ty = _poisson_clock(rng, rate_x, span), _poisson_clock(rng, rate_y, span)
    return tx, _sample(_path(rng, span), tx), ty, _sample(_path(rng, span, half_life_y), ty)


@pytest.fixture(scope="module")
def independent():
    """200 independent pairs per tick-rate set: the thin sessions' rates (a tick every 2.5-10 s,
    y a quote with a 2.5 s half-life) and dense ones (1-2 ticks a second), 600 s each."""
    rng = np.random.default_rng(20241105)
    return {rates: [lead_lag(*_independent_pair(rng, *rates, 600.0, 2.5), LAGS) for _ in range(200)]
            for rates in ((0.1, 0.4), (2.0, 1.0))}


@pytest.mark.parametrize("rates", [(0.1, 0.4), (2.0, 1.0)])
def test_null_sd_is_the_spread_of_peak_free_correlations(independent, rates):
    """Across independent pairs every lag is peak-free: the correlations at lags 5 s apart
    (nearly independent draws) spread as the per-pair null sds say."""
    results = independent[rates]
    picks = np.searchsorted(LAGS, [-10.0, -5.0, 0.0, 5.0, 10.0])
    empirical = np.sqrt(np.mean([r.curve.correlation[picks] ** 2 for r in results]))
    measured = np.sqrt(np.mean([r.identification.null_sd ** 2 for r in results]))
    assert measured == pytest.approx(empirical, rel=0.1)


@pytest.mark.parametrize("rates", [(0.1, 0.4), (2.0, 1.0)])
def test_false_identification_rate_on_independent_series(independent, rates):
    identified = [r.identification.identified for r in independent[rates]]
    assert np.mean(identified) <= 3 * FALSE_IDENTIFICATION_RATE
    for r in independent[rates]:  # nothing identified: the interval is the whole grid
        if not r.identification.identified:
            assert (r.identification.lag_low, r.identification.lag_high) == (LAGS[0], LAGS[-1])


def test_a_designed_delay_is_identified_with_an_interval_around_it():
    rng = np.random.default_rng(2)
    span, delay = 2000.0, 1.5
    path = _path(rng, span + 10.0)
    t_x, t_y = _poisson_clock(rng, 2.0, span) + 5.0, _poisson_clock(rng, 3.0, span) + 5.0
    x = _sample(path, t_x)
    y = _sample(path, t_y - delay) + 0.5 * _sample(_path(rng, span + 10.0), t_y)  # correlation ~0.9
    forward = lead_lag(t_x, x, t_y, y, LAGS)
    ident = forward.identification
    assert ident.identified and ident.p_value < 1e-6
    assert ident.lag_low <= delay <= ident.lag_high and ident.lag_high - ident.lag_low <= 1.0
    assert abs(forward.best_lag - delay) <= 0.25
    backward = lead_lag(t_y, y, t_x, x, LAGS).identification
    assert backward.identified and backward.lag_low <= -delay <= backward.lag_high


def _circular_hy(t_x, x, t_y, y, shift):
    """HY at lag 0 of x against y's increments moved around the circle of the sample's span by
    ``shift``, by the definition: each increment's interval (s_{j-1}, s_j] becomes an arc, cut
    into two pieces where it crosses the window's edge; a pair counts once per piece it overlaps
    (half-open intervals). O(n m) double loop, independent of the compiled construction."""
    origin = min(t_x[0], t_y[0])
    span = max(t_x[-1], t_y[-1]) - origin
    total = 0.0
    for j in range(1, t_y.size):
        a, b = t_y[j - 1] - origin + shift, t_y[j] - origin + shift
        if b <= span:
            pieces = [(a, b)]
        elif a >= span:
            pieces = [(a - span, b - span)]
        else:
            pieces = [(a, span), (-span, b - span)]  # -span: any point before x's first tick
        dy = y[j] - y[j - 1]
        for lo, hi in pieces:
            for i in range(1, t_x.size):
                left, right = t_x[i - 1] - origin, t_x[i] - origin
                if left < hi and lo < right:
                    total += (x[i] - x[i - 1]) * dy
    return total


@pytest.mark.parametrize("y_window", [(0.0, 300.0), (60.0, 300.0), (0.0, 180.0), (40.0, 200.0)])
def test_circular_shift_is_the_covariance_with_y_moved_around_the_circle(y_window):
    """One shift pair: the null's variance is the mean square of HY at lag 0 of x against y
    moved around the circle by the shift (the definition, as a double loop), whether y ticks
    over the whole span, starts late or falls silent early (the arcs then wrap differently)."""
    rng = np.random.default_rng(3)
    t_x, x, t_y, y = _independent_pair(rng, 1.0, 0.7, 300.0, 0.0)
    keep = (t_y >= y_window[0]) & (t_y <= y_window[1])
    t_y, y = t_y[keep], y[keep]
    lags = np.array([-1.0, 0.0, 1.0])
    null = hayashi_yoshida_null(t_x, x, t_y, y, lags, pairs=1)
    guard = 2.0 * 1.0  # 2 max|lag|; the first of one pair of shifts
    at = _circular_hy(t_x, x, t_y, y, guard)
    beside = _circular_hy(t_x, x, t_y, y, guard + 1.0)  # + the grid step
    assert null.pairs == 1
    assert null.variance == pytest.approx(0.5 * (at ** 2 + beside ** 2), rel=1e-9)
    assert null.neighbour_covariance == pytest.approx(at * beside, rel=1e-9)
    # every shift of a pairs=7 null, against the definition
    many = hayashi_yoshida_null(t_x, x, t_y, y, lags, pairs=7)
    span = max(t_x[-1], t_y[-1]) - min(t_x[0], t_y[0])
    shifts = np.linspace(guard, span - guard - 1.0, 7)
    ref = [_circular_hy(t_x, x, t_y, y, h) for h in shifts]
    ref_beside = [_circular_hy(t_x, x, t_y, y, h + 1.0) for h in shifts]
    assert many.variance == pytest.approx(0.5 * (np.mean(np.square(ref)) + np.mean(np.square(ref_beside))),
                                          rel=1e-9)


def test_degrees_of_freedom_of_a_sum_of_nulls_are_satterthwaites():
    """A regime row's null variance is a sum of window estimates: one dominant window carries
    about its own shift pairs' worth of degrees of freedom, not the total."""
    from elecflow.leadership.hayashi_yoshida import HYNull

    one = HYNull(2.0, 1.0, 24)
    assert one.degrees_of_freedom == pytest.approx(24.0)
    equal = sum([HYNull(1.0, 0.5, 24)] * 12, HYNull(0.0, 0.0, 0))
    assert equal.pairs == 12 * 24 and equal.degrees_of_freedom == pytest.approx(12 * 24)
    dominant = HYNull(100.0, 50.0, 24) + sum([HYNull(1.0, 0.5, 24)] * 11, HYNull(0.0, 0.0, 0))
    assert dominant.degrees_of_freedom == pytest.approx(111.0 ** 2 / ((100.0 ** 2 + 11.0) / 24.0))
    assert 24.0 < dominant.degrees_of_freedom < 30.0


def test_regime_sum_of_window_nulls_is_the_null_of_the_union():
    """Windows are independent under the null, so their null variances add up to that of the
    whole sample (measured here with many more shifts than a window uses)."""
    rng = np.random.default_rng(5)
    span, window = 3600.0, 300.0
    path = _path(rng, span + 5.0)
    t_x, t_y = _poisson_clock(rng, 1.5, span), _poisson_clock(rng, 0.5, span)
    x = _sample(path, t_x)
    y = _sample(_path(rng, span + 5.0, 2.0), t_y) + _sample(path, np.maximum(t_y - 1.0, 0.0))  # y follows x
    wx, wy = TickWindow(), TickWindow()
    for t, v in zip(t_x, x):
        wx.append(int(round(t * NS)), float(v))
    for t, v in zip(t_y, y):
        wy.append(int(round(t * NS)), float(v))
    total = CurveSum(LAGS.size)
    edges = np.arange(0.0, span + 1.0, window) * NS
    for a, b in zip(edges[:-1].astype(np.int64), edges[1:].astype(np.int64)):
        total.add(*window_curve(wx, wy, int(a), int(b), LAGS), window_null(wx, wy, int(a), int(b), LAGS, pairs=48))
    assert total.windows == 12 and total.null.pairs == 12 * 48
    whole = hayashi_yoshida_null(t_x, x, t_y, y, LAGS, pairs=2000)
    assert math.sqrt(total.null.variance) == pytest.approx(math.sqrt(whole.variance), rel=0.1)
    assert total.null.neighbour_correlation == pytest.approx(whole.neighbour_correlation, abs=0.05)
    summary = total.summary(LAGS)  # the regime row: y follows x by about a second, identified
    assert summary.identified and summary.lag_low <= 1.0 <= summary.lag_high


def test_no_null_without_room_for_shifts():
    t = np.arange(0.0, 30.0, 0.5)
    v = np.cumsum(np.random.default_rng(6).standard_normal(t.size))
    assert hayashi_yoshida_null(t, v, t, v, LAGS) is None  # a 30 s span, shifts need 2 x 10 s margins
    result = lead_lag(t, v, t, v, LAGS)
    assert result.null is None and not result.identification.identified
    assert math.isnan(result.identification.null_sd)
    assert (result.identification.lag_low, result.identification.lag_high) == (LAGS[0], LAGS[-1])
    curve = hayashi_yoshida(t, v, t, v, LAGS)
    none = identify_lead_lag(LAGS, curve.correlation, 40, None, curve.realised_var_x, curve.realised_var_y)
    assert not none.identified and math.isnan(none.p_value)
