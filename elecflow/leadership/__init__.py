"""Price discovery and lead-lag between markets quoting the same value (library layer).

Estimation core, no csp, no I/O (numpy, numba); model, conventions and measured figures in
``docs/leadership.md``.

* :func:`fit_vecm` - Johansen maximum-likelihood VECM (reduced-rank regression from moment
  matrices) with statsmodels' deterministic cases ``"n"``, ``"co"``, ``"ci"``, ``"lo"``,
  ``"li"`` and their combinations; results (:class:`VECMFit`) in statsmodels' layout.
* :func:`select_order` - lag order by AIC / BIC / HQ / FPE; :func:`select_coint_rank` -
  rank by the Johansen trace test (Osterwald-Lenum critical values).
* :class:`RollingVECM` - the same estimate over a window moving one observation per step,
  from cross-product sums updated by adding the new and removing the leaving observation.
* :func:`price_discovery_shares` - Hasbrouck information-share bounds, the Lien-Shrestha
  order-invariant share, Gonzalo-Granger component share and Putnins' information
  leadership share; :func:`long_run_impact` - the common-trend loading ``Xi``.
* :func:`hayashi_yoshida`, :func:`lead_lag` - the Hayashi-Yoshida covariance of
  asynchronous ticks at a grid of lags, its argmax and the Huth-Abergel lead-lag ratio;
  :func:`hayashi_yoshida_null`, :func:`identify_lead_lag` - the curve's null measured by
  circular shifts of the same ticks, and whether the peak is identified, with its lag interval.

Applied in the replay graph (``graphs/leadership.py``; docs/leadership.md, "In the replay
graph"): :mod:`~elecflow.leadership.groups` (price-discovery groups, NAV and election-portfolio
series, :class:`LeadershipConfig`), :mod:`~elecflow.leadership.regimes` (:class:`RegimeCalendar`),
:mod:`~elecflow.leadership.monitor` (:class:`GroupMonitor`: one group's rolling VECM, shares and
regime averages), :mod:`~elecflow.leadership.ticks` (tick windows, summed HY curves) and
:mod:`~elecflow.leadership.sweep` (ISO shares, the sweep regression, Fama-MacBeth with
Newey-West errors).
"""

from elecflow.leadership.hayashi_yoshida import (
    HayashiYoshida,
    HYNull,
    Identification,
    LeadLag,
    hayashi_yoshida,
    hayashi_yoshida_null,
    identify_lead_lag,
    lead_lag,
)
from elecflow.leadership.rolling import RollingVECM, rolling_fits
from elecflow.leadership.shares import (
    PriceDiscoveryShares,
    long_run_impact,
    orthogonal_complement,
    price_discovery_shares,
)
from elecflow.leadership.vecm import (
    TRACE_CRITICAL_VALUES,
    CointRankTest,
    LagOrderSelection,
    VECMFit,
    fit_vecm,
    select_coint_rank,
    select_order,
)
from elecflow.leadership.groups import GroupSpec, LeadershipConfig, SeriesBook, default_groups
from elecflow.leadership.monitor import GroupMonitor, trace_rank
from elecflow.leadership.regimes import REGIME_NAMES, Regime, RegimeCalendar
from elecflow.leadership.sweep import FamaMacBeth, IsoShareWindow, cross_section_slope, newey_west_mean
from elecflow.leadership.ticks import CurveSum, DerivedTicks, TickWindow, summarise_curve

__all__ = [
    "REGIME_NAMES",
    "CurveSum",
    "DerivedTicks",
    "FamaMacBeth",
    "GroupMonitor",
    "GroupSpec",
    "IsoShareWindow",
    "LeadershipConfig",
    "Regime",
    "RegimeCalendar",
    "SeriesBook",
    "TickWindow",
    "cross_section_slope",
    "default_groups",
    "newey_west_mean",
    "summarise_curve",
    "trace_rank",
    "TRACE_CRITICAL_VALUES",
    "CointRankTest",
    "HayashiYoshida",
    "HYNull",
    "Identification",
    "LagOrderSelection",
    "LeadLag",
    "PriceDiscoveryShares",
    "RollingVECM",
    "VECMFit",
    "fit_vecm",
    "hayashi_yoshida",
    "hayashi_yoshida_null",
    "identify_lead_lag",
    "lead_lag",
    "long_run_impact",
    "orthogonal_complement",
    "price_discovery_shares",
    "rolling_fits",
    "select_coint_rank",
    "select_order",
]
