"""csp nodes for price discovery, lead-lag and the sweep-leadership regression.

The numerics live in :mod:`elecflow.leadership` (``GroupMonitor``, ``TickWindow``,
``DerivedTicks``, ``CurveSum``, ``IsoShareWindow``, ``cross_section_slope``, ``FamaMacBeth``);
these nodes own them in ``csp.state``, feed them ticks and grid steps, and turn their results
into :class:`~elecflow.schema.PriceDiscovery`, :class:`~elecflow.schema.LeadLagEstimate` and
:class:`~elecflow.schema.SweepLeadership` rows. Model, settings and measured figures:
docs/leadership.md ("In the replay graph").

* :func:`price_discovery` samples the base series on the step grid (default 1 s): each ticker's
  log mid from the 1 s NBBO sample (the quote in force before the second, carried forward) and
  the Kalshi probit from the filter's grid rows; moves one rolling VECM per group by one row per
  step; publishes every ``publish_seconds``.
* :func:`lead_lag` keeps each series' ticks (every mid change of the raw quotes; at each Kalshi
  fill, the fill itself or the filter's estimate, ``lead_lag_kalshi``; derived series at each
  constituent tick) over a moving window and publishes Hayashi-Yoshida curves every
  ``lead_lag_publish_seconds``, each with its null measured on the same ticks and the
  identification of its peak.
* :func:`sweep_leadership` accumulates ISO and total volume per ticker and regresses, at each
  published window, the leadership measures on the ISO shares.

Every node also fires once at the engine's end time, so the last per-regime rows are final.
"""

from __future__ import annotations

import datetime as dt
import math

import csp
import numpy as np
from csp import ts
from scipy.special import ndtri

from elecflow.graphs.microstructure import one_second_nbbo
from elecflow.graphs.replay import datetime_to_ns, next_grid_time, ns_to_datetime
from elecflow.leadership.groups import KALSHI, LeadershipConfig, SeriesBook
from elecflow.leadership.monitor import EXACT_MAX_MARKETS, SHARE_FIELDS, GroupMonitor
from elecflow.leadership.regimes import Regime, RegimeCalendar, regime_name
from elecflow.leadership.sweep import FamaMacBeth, IsoShareWindow, cross_section_slope
from elecflow.leadership.ticks import CurveSum, DerivedTicks, TickWindow, window_curve, window_null
from elecflow.microstructure import counts_in_bars
from elecflow.schema import (EquityQuote, EquityTrade, KalshiProbability, LeadLagEstimate, Nbbo1s, PriceDiscovery,
                             SweepLeadership)

__all__ = ["price_discovery", "lead_lag", "sweep_leadership", "leadership_streams", "GROUP_MEASURES"]

NAN = math.nan
GROUP_MEASURES = ("is_mid", "mis", "cs", "ils")  # the sweep measures read from price_discovery rows


def _ns(seconds: float) -> int:
    return int(round(seconds * 1e9))


def _probit(p: float) -> float:
    """A Kalshi probability on the probit scale (NaN outside (0, 1))."""
    return float(ndtri(p)) if 0.0 < p < 1.0 else NAN


def _calendar(settings: LeadershipConfig, date: dt.date) -> RegimeCalendar:
    return RegimeCalendar(date, settings.close_start)


# --------------------------------------------------------------------------- price discovery


def _window_rows(now: dt.datetime, monitor: GroupMonitor, estimate, step_s: float) -> list[PriceDiscovery]:
    regime = regime_name(estimate.regime)
    rank_full = estimate.coint_rank == monitor.n_series - 1 if estimate.coint_rank >= 0 else None
    mid = estimate.shares[SHARE_FIELDS.index("is_mid")]
    leader = int(np.argmax(mid)) if estimate.ok else -1
    rows = []
    for j, member in enumerate(monitor.members):
        values = {name: float(estimate.shares[i, j]) for i, name in enumerate(SHARE_FIELDS)}
        rows.append(PriceDiscovery(
            time=now, scope="window", group=monitor.spec.name, member=member, n_members=monitor.n_series,
            regime=regime, regime_fraction=estimate.regime_fraction, windows=1,
            window_seconds=estimate.rows * step_s, nobs=estimate.nobs, **values,
            leader_fraction=(1.0 if j == leader else 0.0) if estimate.ok else NAN,
            coint_rank=estimate.coint_rank, coint_fraction=NAN if rank_full is None else float(rank_full),
            exact=estimate.exact, error=estimate.error))
    return rows


def _regime_rows(now: dt.datetime, monitor: GroupMonitor, summary, window_s: float) -> list[PriceDiscovery]:
    means = summary.means
    leaders = summary.leader_fraction
    return [PriceDiscovery(
        time=now, scope="regime", group=monitor.spec.name, member=member, n_members=monitor.n_series,
        regime=regime_name(summary.regime), regime_fraction=1.0, windows=summary.windows, window_seconds=window_s,
        nobs=monitor.roll.nobs, **{name: float(means[i, j]) for i, name in enumerate(SHARE_FIELDS)},
        leader_fraction=float(leaders[j]), coint_rank=-1, coint_fraction=summary.coint_fraction,
        exact=monitor.per_step, error="") for j, member in enumerate(monitor.members)]


@csp.node(memoize=False)
def price_discovery(nbbo: ts[[Nbbo1s]], kalshi: ts[[KalshiProbability]], settings: object,
                    date: object) -> ts[[PriceDiscovery]]:
    """Rolling VECM price-discovery shares per group on the step grid (module docstring).

    At each step ``T`` the base values are those in force before ``T`` (the 1 s NBBO row and the
    Kalshi grid row stamped ``T`` summarise the time before it), so the inputs ticking at ``T``
    are applied before the step.
    """
    with csp.alarms():
        a_step = csp.alarm(bool)
        a_publish = csp.alarm(bool)
        a_final = csp.alarm(bool)
    with csp.state():
        s_groups = settings.all_groups()
        s_book = SeriesBook.build([m for g in s_groups for m in g.members], settings.election_weights)
        s_index = {b: i for i, b in enumerate(s_book.bases)}
        s_values = np.full(len(s_book.bases), np.nan)
        s_updated = np.full(len(s_book.bases), np.iinfo(np.int64).min // 2, dtype=np.int64)
        s_step_ns = _ns(settings.step_seconds)
        s_stale_ns = _ns(settings.stale_seconds)
        s_calendar = _calendar(settings, date)
        s_monitors = [GroupMonitor(g, s_book, settings.window_seconds, s_step_ns, s_calendar, settings.k_ar_diff,
                                   settings.deterministic, settings.shares_every_steps) for g in s_groups]
        s_emitted = {}  # (group, regime) -> windows in the last regime row sent
        s_published_at = None  # the publish alarm and the end-time alarm may fire at one instant
        s_kalshi = s_index.get(KALSHI, -1)
    with csp.start():
        csp.schedule_alarm(a_step, next_grid_time(csp.now(), dt.timedelta(seconds=settings.step_seconds)), True)
        csp.schedule_alarm(a_publish, next_grid_time(csp.now(), dt.timedelta(seconds=settings.publish_seconds)),
                           True)
        csp.schedule_alarm(a_final, csp.engine_end_time(), True)

    if csp.ticked(nbbo):
        for q in nbbo:
            i = s_index.get(q.symbol)
            if i is not None and 0.0 < q.bid_price <= q.ask_price:
                s_values[i] = math.log(0.5 * (q.bid_price + q.ask_price))
                s_updated[i] = datetime_to_ns(q.time)
    if csp.ticked(kalshi) and s_kalshi >= 0:
        for k in kalshi:
            if k.kind == "grid":
                s_values[s_kalshi] = _probit(k.p)
            else:  # fills say the market is open; the value moves on the grid
                s_updated[s_kalshi] = datetime_to_ns(k.time)
    if csp.ticked(a_step):
        csp.schedule_alarm(a_step, dt.timedelta(seconds=settings.step_seconds), True)
        t = datetime_to_ns(csp.now())
        fresh = (t - s_updated) <= s_stale_ns
        for m in s_monitors:
            m.step(t, s_values, fresh)
    if csp.ticked(a_publish):
        csp.schedule_alarm(a_publish, dt.timedelta(seconds=settings.publish_seconds), True)
    if (csp.ticked(a_publish) or csp.ticked(a_final)) and s_published_at != csp.now():
        s_published_at = csp.now()
        now = s_published_at
        rows = []
        t_now = datetime_to_ns(now)
        big_due = csp.ticked(a_final) or t_now % _ns(settings.panel_publish_seconds) == 0
        for m in s_monitors:
            if not m.per_step and not big_due:  # large groups (the panel) on their own, slower cadence
                continue
            estimate = m.estimate()
            if estimate is not None and estimate.t_ns == datetime_to_ns(now):
                rows += _window_rows(now, m, estimate, settings.step_seconds)
            for regime, summary in m.regimes.items():
                if summary.windows and s_emitted.get((m.spec.name, regime)) != summary.windows:
                    s_emitted[(m.spec.name, regime)] = summary.windows
                    rows += _regime_rows(ns_to_datetime(summary.last_t_ns), m, summary,
                                         settings.window_seconds * settings.step_seconds)
        if rows:
            return rows


# --------------------------------------------------------------------------- lead-lag


def _lead_lag_row(now, scope, pair, x, y, regime, fraction, windows, window_s, n_x, n_y, summary) -> LeadLagEstimate:
    return LeadLagEstimate(time=now, scope=scope, pair=pair, x=x, y=y, regime=regime, regime_fraction=fraction,
                           windows=windows, window_seconds=window_s, n_x=n_x, n_y=n_y, best_lag=summary.best_lag,
                           best_correlation=summary.best_correlation,
                           zero_lag_correlation=summary.zero_lag_correlation,
                           lead_lag_ratio=summary.lead_lag_ratio, null_sd=summary.null_sd, p_value=summary.p_value,
                           identified=summary.identified, lag_low=summary.lag_low, lag_high=summary.lag_high)


@csp.node(memoize=False)
def lead_lag(quotes: ts[EquityQuote], kalshi: ts[[KalshiProbability]], settings: object,
             date: object) -> ts[[LeadLagEstimate]]:
    """Hayashi-Yoshida lead-lag of every asset against Kalshi and within every group, on the
    ticks of a moving window, and summed over each regime's non-overlapping pure windows; each
    curve identified against its null (circular shifts of the same ticks, summed alike)."""
    with csp.alarms():
        a_publish = csp.alarm(bool)
        a_final = csp.alarm(bool)
    with csp.state():
        s_groups = settings.all_groups()
        s_book = SeriesBook.build([m for g in s_groups for m in g.members], settings.election_weights)
        s_assets = None if settings.lead_lag_assets is None else set(settings.lead_lag_assets)
        s_windows = {}  # series name -> TickWindow (tickers, KALSHI, derived members)
        s_derived = {}  # derived member -> DerivedTicks
        s_users = {}  # ticker -> derived members it feeds
        s_needed = {b for g in s_groups for m in g.members for b in s_book.constituents[m]}
        s_last_mid = {}
        # within-group pairs; not for the panel (820 pairs, and its members all meet Kalshi anyway)
        s_group_pairs = [(g.name, a, b) for g in s_groups if len(g.members) <= EXACT_MAX_MARKETS
                         for i, a in enumerate(g.members) for b in g.members[i + 1:]
                         ] if settings.lead_lag_within_groups else []
        s_kalshi_assets = []  # tickers paired with Kalshi, in order of first quote
        s_lags = settings.lag_grid()
        s_kalshi_field = settings.lead_lag_kalshi  # "p_obs" (the fill) or "p" (the filter)
        s_window_ns = _ns(settings.lead_lag_window_seconds)
        s_calendar = _calendar(settings, date)
        s_sums = {}  # (pair, x, y, regime) -> CurveSum
        s_published_at = None
    with csp.start():
        for name, combo in s_book.constituents.items():
            if s_book.is_derived(name):
                weights = {b: float(s_book.weights[name][s_book.bases.index(b)]) for b in combo}
                s_derived[name] = DerivedTicks(weights)
                s_windows[name] = s_derived[name].ticks
                for b in combo:
                    s_users.setdefault(b, []).append(s_derived[name])
        cadence = dt.timedelta(seconds=settings.lead_lag_publish_seconds)
        csp.schedule_alarm(a_publish, next_grid_time(csp.now(), cadence), True)
        csp.schedule_alarm(a_final, csp.engine_end_time(), True)

    if csp.ticked(quotes):
        q = quotes
        sym = q.symbol
        if 0.0 < q.bid_price <= q.ask_price:
            value = math.log(0.5 * (q.bid_price + q.ask_price))
            if s_last_mid.get(sym) != value:
                if sym not in s_last_mid:
                    if s_assets is None or sym in s_assets:
                        s_kalshi_assets.append(sym)
                    if sym in s_needed or s_assets is None or sym in s_assets:
                        s_windows.setdefault(sym, TickWindow())
                s_last_mid[sym] = value
                t = datetime_to_ns(q.time)
                w = s_windows.get(sym)
                if w is not None:
                    w.append(t, value)
                for d in s_users.get(sym, ()):
                    d.update(sym, t, value)
    if csp.ticked(kalshi):
        for k in kalshi:
            if k.kind == "fill":
                value = _probit(getattr(k, s_kalshi_field))
                kalshi_ticks = s_windows.setdefault(KALSHI, TickWindow())
                # like the mids: a tick per change (consecutive fills often trade at one price)
                if math.isfinite(value) and value != kalshi_ticks.last_value:
                    kalshi_ticks.append(datetime_to_ns(k.time), value)
    if csp.ticked(a_publish):
        csp.schedule_alarm(a_publish, dt.timedelta(seconds=settings.lead_lag_publish_seconds), True)
    if (csp.ticked(a_publish) or csp.ticked(a_final)) and s_published_at != csp.now():
        s_published_at = csp.now()
        now = s_published_at
        end = datetime_to_ns(now)
        start = end - s_window_ns
        regime = s_calendar.interval_regime(end)
        fraction = s_calendar.fraction(start, end)
        # a tile: windows ending on the window-length grid do not overlap, so their curves add up
        tile = end % s_window_ns == 0 and fraction == 1.0
        regime_label = regime_name(regime)
        window_s = settings.lead_lag_window_seconds
        pairs = [("kalshi", KALSHI, a) for a in s_kalshi_assets] + s_group_pairs
        rows = []
        for pair, x, y in pairs:
            wx, wy = s_windows.get(x), s_windows.get(y)
            if wx is None or wy is None:
                continue
            curve = window_curve(wx, wy, start, end, s_lags)
            if curve is None:
                continue
            null = window_null(wx, wy, start, end, s_lags, settings.lead_lag_null_pairs)
            acc = CurveSum(len(s_lags))
            acc.add(*curve, null)
            rows.append(_lead_lag_row(now, "window", pair, x, y, regime_label, fraction, 1, window_s, curve[3],
                                      curve[4], acc.summary(s_lags)))
            # a regime's null must cover every window of its curve: a window too short for shifts
            # beyond the lag grid (a series' first ticks) stays out of the sum
            if tile and null is not None:
                total = s_sums.setdefault((pair, x, y, regime), CurveSum(len(s_lags)))
                total.add(*curve, null)
                rows.append(_lead_lag_row(now, "regime", pair, x, y, regime_label, 1.0, total.windows, window_s,
                                          total.n_x, total.n_y, total.summary(s_lags)))
        # ticks before the next window's start are no longer needed (the end-time window included)
        next_start = min(end + _ns(settings.lead_lag_publish_seconds), datetime_to_ns(csp.engine_end_time())) \
            - s_window_ns
        for w in s_windows.values():
            w.trim(next_start)
        for d in s_derived.values():
            d.resync()
        if rows:
            return rows


# --------------------------------------------------------------------------- sweeps


def _iso_of(member: str, book: SeriesBook, iso: dict) -> float:
    """A member's ISO share: a ticker's own; a derived series' |w|-weighted average over its
    constituents with volume (NaN if none traded)."""
    combo = book.constituents.get(member, (member,))
    if combo == (member,):
        return iso.get(member, NAN)
    num = den = 0.0
    for b in combo:
        share = iso.get(b, NAN)
        if math.isfinite(share):
            w = abs(float(book.weights[member][book.bases.index(b)]))
            num += w * share
            den += w
    return num / den if den > 0.0 else NAN


def _sweep_row(now, scope, measure, regime, fraction, window_s, slope, se, n_obs, n_groups, r2, windows, lags,
               error) -> SweepLeadership:
    t_stat = slope / se if se > 0.0 and math.isfinite(slope) else NAN
    return SweepLeadership(time=now, scope=scope, measure=measure, regime=regime, regime_fraction=fraction,
                           window_seconds=window_s, slope=slope, se=se, t_stat=t_stat, n_obs=n_obs,
                           n_groups=n_groups, r2=r2, windows=windows, nw_lags=lags,
                           independent_windows=windows / (lags + 1), error=error)


def _measure(row, measure: str) -> float:
    if measure == "kalshi_llr":  # positive: the asset leads Kalshi
        return -math.log(row.lead_lag_ratio) if math.isfinite(row.lead_lag_ratio) and row.lead_lag_ratio > 0 else NAN
    return float(getattr(row, measure))


def _sweep_rows(now, measures, source_rows, x, groups, regime: Regime, fraction: float, window_ns: int, lags: int,
                fm: dict) -> list[SweepLeadership]:
    out = []
    label = regime_name(regime)
    window_s = window_ns / 1e9
    for measure in measures:
        y = np.array([_measure(r, measure) for r in source_rows])
        fit = cross_section_slope(y, x, groups)
        out.append(_sweep_row(now, "window", measure, label, fraction, window_s, fit.slope, fit.se, fit.n_obs,
                              fit.n_groups, fit.r2, 1, 0, fit.error))
        if fraction == 1.0 and math.isfinite(fit.slope):
            acc = fm.setdefault((measure, regime), FamaMacBeth(lags))
            acc.add(fit.slope)
            mean, se, windows = acc.result()
            out.append(_sweep_row(now, "regime", measure, label, 1.0, window_s, mean, se, 0, 0, NAN,
                                  windows, lags, ""))
    return out


@csp.node(memoize=False)
def sweep_leadership(trades: ts[EquityTrade], shares: ts[[PriceDiscovery]], lead_lags: ts[[LeadLagEstimate]],
                     settings: object, date: object) -> ts[[SweepLeadership]]:
    """Per published window: the cross-sectional regression of each leadership measure on the
    ISO volume share (group measures with group fixed effects, the Kalshi lead-lag ratio with an
    intercept); per regime: Fama-MacBeth means with Newey-West errors over the pure windows."""
    with csp.state():
        s_groups = settings.all_groups()
        s_book = SeriesBook.build([m for g in s_groups for m in g.members], settings.election_weights)
        s_step_ns = _ns(settings.step_seconds)
        s_pd_window_ns = settings.window_seconds * s_step_ns
        s_ll_window_ns = _ns(settings.lead_lag_window_seconds)
        s_iso = IsoShareWindow(s_step_ns, max(s_pd_window_ns, s_ll_window_ns))
        s_calendar = _calendar(settings, date)
        s_group_measures = [m for m in settings.sweep_measures if m in GROUP_MEASURES]
        s_llr = "kalshi_llr" in settings.sweep_measures
        s_pd_lags = max(0, math.ceil(settings.window_seconds * settings.step_seconds / settings.publish_seconds) - 1)
        s_ll_lags = max(0, math.ceil(settings.lead_lag_window_seconds / settings.lead_lag_publish_seconds) - 1)
        s_fm = {}  # (measure, regime) -> FamaMacBeth
    if csp.ticked(trades):
        t = trades
        if counts_in_bars(t.condition_mask, t.correction) and t.size > 0.0:
            s_iso.add(t.symbol, datetime_to_ns(t.time), t.size, t.is_iso)

    rows = []
    if csp.ticked(shares) and s_group_measures:
        # full windows of groups whose members all have an ISO share (Kalshi has none)
        kalshi_groups = {r.group for r in shares if r.member == KALSHI}
        full = [r for r in shares if r.scope == "window" and not r.error and r.group not in kalshi_groups
                and r.window_seconds * 1e9 >= s_pd_window_ns - 1
                and (r.coint_rank == r.n_members - 1 or not settings.sweep_cointegrated_only)]
        if full:
            now = csp.now()
            end = datetime_to_ns(now)
            start = end - s_pd_window_ns
            iso = s_iso.shares(start, end)
            x = np.array([_iso_of(r.member, s_book, iso) for r in full])
            groups = [r.group for r in full]
            regime = s_calendar.interval_regime(end)
            fraction = s_calendar.fraction(start, end)
            rows += _sweep_rows(now, s_group_measures, full, x, groups, regime, fraction, s_pd_window_ns, s_pd_lags,
                                s_fm)
    if csp.ticked(lead_lags) and s_llr:
        vs_kalshi = [r for r in lead_lags if r.scope == "window" and r.pair == "kalshi"
                     and math.isfinite(r.lead_lag_ratio) and r.lead_lag_ratio > 0.0]
        if vs_kalshi:
            now = csp.now()
            end = datetime_to_ns(now)
            start = end - s_ll_window_ns
            iso = s_iso.shares(start, end)
            x = np.array([iso.get(r.y, NAN) for r in vs_kalshi])
            regime = s_calendar.interval_regime(end)
            fraction = s_calendar.fraction(start, end)
            rows += _sweep_rows(now, ["kalshi_llr"], vs_kalshi, x, None, regime, fraction, s_ll_window_ns, s_ll_lags,
                                s_fm)
    if rows:
        return rows


# --------------------------------------------------------------------------- wiring


def leadership_streams(quotes: ts[EquityQuote], trades: ts[EquityTrade], settings: LeadershipConfig,
                       date: dt.date, nbbo: ts[[Nbbo1s]] | None = None,
                       kalshi: ts[[KalshiProbability]] | None = None) -> dict:
    """The three leadership output streams by name. ``nbbo`` is the 1 s NBBO sample (computed
    here from ``quotes`` when not given); without ``kalshi`` (filter off) the Kalshi members and
    pairs stay empty."""
    if nbbo is None:
        nbbo = one_second_nbbo(quotes)
    if kalshi is None:
        kalshi = csp.null_ts([KalshiProbability])
    shares = price_discovery(nbbo, kalshi, settings, date)
    lags = lead_lag(quotes, kalshi, settings, date)
    return {"price_discovery": shares, "lead_lag": lags,
            "sweep_leadership": sweep_leadership(trades, shares, lags, settings, date)}
