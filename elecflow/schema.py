"""Canonical event types: what every reader produces and every node consumes.

All timestamps are UTC. csp carries them as naive ``datetime`` values meaning UTC (csp's
engine clock is UTC); conversion to New York time happens only for display
(:mod:`elecflow.calendar`).

A live push adapter that produces these same structs can replace any file reader without
changing the graph: nodes see ``ts[EquityQuote]`` and cannot tell where it came from.
"""


import datetime as dt

import csp


class EquityQuote(csp.Struct):
    """One consolidated NBBO update (Polygon ``quotes_v1`` row)."""

    time: dt.datetime  # SIP timestamp, UTC: the time the quote became public
    symbol: str  # ticker as Polygon spells it (``BRK.B``)
    bid_price: float
    bid_size: float  # shares (vendor round lots are converted at read time)
    bid_exchange: int
    ask_price: float
    ask_size: float
    ask_exchange: int
    sequence_number: int


class EquityTrade(csp.Struct):
    """One consolidated trade print (Polygon ``trades_v1`` row)."""

    time: dt.datetime  # SIP timestamp, UTC
    symbol: str
    price: float
    size: float  # shares
    exchange: int
    # Polygon condition ids as a bitmask: bit ``i`` set <=> condition id ``i`` present. Trade
    # sale conditions are ids 0..62 (elecflow/data/polygon_trade_conditions.csv); a trade with
    # any other id is quarantined as unknown_condition. Decode with elecflow.conditions.
    condition_mask: int
    is_iso: bool  # Intermarket Sweep Order (condition 14)
    correction: int  # vendor correction indicator; non-zero = corrected or cancelled
    sequence_number: int
    trade_id: str


class Nbbo1s(csp.Struct):
    """Downsampled NBBO: the last quote seen in [time - 1 s, time) (right-endpoint label)."""

    time: dt.datetime
    symbol: str
    bid_price: float
    ask_price: float


class OptionQuote(csp.Struct):
    """One option quote snapshot (ThetaData)."""

    time: dt.datetime  # snapshot time, UTC (vendor's New York ms_of_day converted)
    contract: str  # OCC symbol, e.g. ``SPY241115C00580000``
    underlying: str  # equity ticker as Polygon spells it (root BRKB -> BRK.B)
    expiry: dt.date
    strike: float  # dollars
    right: str  # "C" or "P"
    bid: float
    ask: float
    bid_size: float
    ask_size: float


class OptionTrade(csp.Struct):
    """One option trade print (ThetaData option trade ticks, ``thetadata_trades``)."""

    time: dt.datetime  # trade time, UTC (vendor's New York ms_of_day converted)
    contract: str  # OCC symbol, as for quotes
    underlying: str  # equity ticker as Polygon spells it
    expiry: dt.date
    strike: float  # dollars
    right: str  # "C" or "P"
    price: float
    size: float  # contracts
    side: int  # aggressor: +1 buy, -1 sell, 0 unsigned (the vendor gave no side: real prints)
    exchange: int
    condition: int
    sequence: int


class KalshiTrade(csp.Struct):
    """One Kalshi fill."""

    time: dt.datetime  # UTC
    contract: str  # e.g. ``PRES-2024-DJT``
    price: float  # yes price in dollars, in (0, 1)
    count: int  # contracts
    taker_side: str  # "yes", "no", or "" when the source does not say (daily reports)
    trade_id: str  # "" when the source does not give one


class ReplayClock(csp.Struct):
    """Progress of a replay, as shown on the dashboard."""

    time: dt.datetime  # engine (event) time
    state: str  # "running", "paused" or "finished"
    speed: float  # multiple of real time; 0 in simulation mode (as fast as possible)
    quotes: int
    trades: int
    nbbo_1s: int
    option_quotes: int
    kalshi_trades: int
    option_trades: int  # unset (None on the dashboard) where a clock is built without it


class MinuteBar(csp.Struct):
    """Per-minute microstructure features of one ticker (output stream ``bars_1m``).

    The seed's table plus microprice; definitions in docs/microstructure.md. ``bucket`` is the
    end of the interval [bucket - 60 s, bucket). ``pct_*`` are fractions in [0, 1].
    """

    ticker: str
    bucket: dt.datetime
    log_mid: float
    quote_updates: int
    avg_rsprd: float
    pct_trades_iso: float
    pct_volume_iso: float
    total_flow_non_iso: float
    total_flow_iso: float
    num_trades: int
    num_trades_iso: int
    total_volume: float
    total_flow: float
    iso_flow_intensity: float
    microprice: float
    microprice_var: float


class KalshiProbability(csp.Struct):
    """Denoised Trump-wins probability (output stream ``kalshi_probability``).

    ``kind`` is ``"fill"`` for the filter's update at a DJT or KH fill, ``"grid"`` for its
    prediction at each whole second (from the fills strictly before it). Model in
    docs/kalshi-filter.md.
    """

    time: dt.datetime
    kind: str  # "fill" or "grid"
    contract: str  # the fill's contract; "" on the grid
    raw_price: float  # the fill's own price in dollars; NaN on the grid
    p_obs: float  # the fill read as a Trump-wins probability (1 - price for KH); NaN on the grid
    p: float  # filtered probability
    sd: float  # its standard deviation
    z: float  # standardised innovation of the fill; NaN on the grid
    regime: str  # "calm" / "moving" / "shock" by |z| of the latest fill
    jump_prob: float  # posterior probability of a news jump since the previous fill (fills only)
    warm: bool  # False while the filter runs on provisional parameters (warm-up window)


class UpMoveScore(csp.Struct):
    """P(the ticker's next-minute time-weighted log mid is above this minute's), published
    when the bar of minute ``[bucket - 60 s, bucket)`` closes."""

    ticker: str
    bucket: dt.datetime
    p_up: float


class RndSummary(csp.Struct):
    """One refresh of an underlying's option chain (output stream ``rnd_summary``)."""

    time: dt.datetime
    underlying: str
    expiry: dt.date
    tau: float  # years to the 16:00 New York close of the expiry date (ACT/365)
    forward: float
    discount: float
    forward_method: str  # "parity_huber", "spot_carry" or "none"
    atm_iv: float
    mean: float  # of S_T under the density
    sd: float
    skew: float
    kurtosis: float
    log_mean: float  # of log(S_T / F)
    log_sd: float
    log_skew: float
    log_kurtosis: float
    q01: float
    q05: float
    q25: float
    q50: float
    q75: float
    q95: float
    q99: float
    n_quotes_used: int
    n_excluded: int  # cumulative quotes excluded by the quote filter (reasons in docs/chain.md)
    mass_error: float  # total density mass - 1 (tails included, never renormalised)
    n_arbitrage_violations: int  # before repair: increasing + below -DF + non-convex points
    repair_max_abs: float  # size of the projection onto the arbitrage-free set (0 if none)
    gp_incremental: int  # cumulative exact incremental GP operations
    gp_full_fits: int  # cumulative full fits (first fit, re-anchoring, bulk changes, refits)
    density_error: str  # why no density was computed ("" if it was)


class SmilePoint(csp.Struct):
    """The smile of an underlying (output stream ``smile``): quoted points (``kind="quote"``,
    the out-of-the-money contract per strike) and the GP posterior (``kind="fit"``)."""

    time: dt.datetime
    underlying: str
    kind: str
    k: float  # log(K / F)
    strike: float
    iv: float  # quoted IV, or the GP posterior mean
    iv_sd: float  # quote's IV sd, or the GP posterior sd


class RndCurvePoint(csp.Struct):
    """The risk-neutral density of S_T on its strike grid (output stream ``rnd_curve``)."""

    time: dt.datetime
    underlying: str
    strike: float
    density: float
    cdf: float


class ElectionState(csp.Struct):
    """One two-state fit of one underlying's chain (output stream ``election_states``, one
    row per underlying, mode and minute). States: S_T is a mixture of a Trump-wins and a
    Harris-wins lognormal. Mode ``A`` fixes the Trump weight to the denoised Kalshi
    probability; mode ``B`` frees it (the option-implied probability). Expected returns are
    ``E[S_T | state] / spot - 1`` to expiry; vols are annualised sd of log S_T. NaN where a
    quantity does not exist (failed fit, undetermined label). Model in docs/states.md."""

    time: dt.datetime
    underlying: str
    mode: str  # "A" | "B"
    success: bool
    message: str  # why the fit failed ("" on success)
    identified: bool
    identification_reason: str  # "ok" or why the states are not identified
    label: str  # trump_upper | trump_lower | undetermined
    kalshi_probability: float
    trump_probability: float  # A: the fixed weight; B: the Trump component's weight
    trump_probability_se: float
    probability_gap: float  # B: trump_probability - kalshi_probability
    spot: float
    forward: float
    discount: float
    tau: float
    trump_mean: float
    trump_expected_return: float
    trump_expected_return_se: float
    trump_vol: float
    trump_vol_se: float
    harris_mean: float
    harris_expected_return: float
    harris_expected_return_se: float
    harris_vol: float
    harris_vol_se: float
    separation: float  # log(mean_upper / mean_lower)
    separation_z: float
    side_lr: float  # A without a label: LR of the chosen side against the mirrored one (NaN otherwise)
    weight_upper: float  # the upper component's weight (A: fixed; B: fitted, reported even while undetermined)
    weight_upper_se: float
    trump_probability_filtered: float  # B: local-level filter of the identified weights (docs/states.md)
    trump_probability_filtered_se: float
    rmse_price: float
    rmse_vol_points: float
    n_points: int
    warm_started: bool
    fit_ms: float


class ElectionHedge(csp.Struct):
    """Election delta of the position file's book (output stream ``election_hedge``): one row
    per underlying of the book and one ``TOTAL`` row, each time its states are re-fitted.
    ``election_delta`` is dollars per unit of Trump-wins probability (divide by 100 for one
    point); ``kalshi_contracts`` = -delta Trump-wins contracts neutralise it (TOTAL row).
    Model in docs/states.md."""

    time: dt.datetime
    underlying: str  # or "TOTAL"
    election_delta: float
    kalshi_contracts: float
    market_value: float
    status: str  # "ok", or what the row is waiting for


# ---- leadership (docs/leadership.md, "In the replay graph"): rows with scope "window" are the
# rolling estimate ending at `time`; rows with scope "regime" aggregate the pure windows (lying
# entirely in `regime`) seen so far, so the last such row per key is the regime's figure.


class PriceDiscovery(csp.Struct):
    """Price-discovery shares of one member of one group (output stream ``price_discovery``)."""

    time: dt.datetime  # end of the window (its last 1 s grid row)
    scope: str  # "window" | "regime"
    group: str
    member: str  # ticker, NAV:<ETF>, KALSHI or ELECTION
    n_members: int
    regime: str  # pre_open | regular | close | after_hours | results_night | closed
    regime_fraction: float  # share of the window inside `regime` (1 on regime rows)
    windows: int  # 1 on window rows; pure windows averaged on regime rows
    window_seconds: float  # span of the window's rows
    nobs: int  # VECM equations per window
    is_lower: float  # Hasbrouck information share bounds (min / max over Cholesky orderings)
    is_upper: float
    is_mid: float
    mis: float  # Lien-Shrestha modified information share
    cs: float  # Gonzalo-Granger component share
    ils: float  # Putnins information leadership share
    leader_fraction: float  # share of windows in which this member has the largest IS midpoint
    coint_rank: int  # Johansen trace-test rank of the window (5 %), -1 unknown / on regime rows
    coint_fraction: float  # share of windows whose trace-test rank is n_members - 1
    exact: bool  # Hasbrouck bounds over all orderings (False: sampled)
    error: str  # why the window has no shares ("" if it has)


class LeadLagEstimate(csp.Struct):
    """Hayashi-Yoshida lead-lag of ``y`` against ``x`` on asynchronous ticks (stream ``lead_lag``).
    A positive ``best_lag`` (seconds) and ``lead_lag_ratio > 1`` mean x leads y; ``identified``
    says whether the peak stands out of the noise measured on the same ticks (circular shifts,
    docs/leadership.md), ``lag_low..lag_high`` the lags compatible with it."""

    time: dt.datetime  # end of the tick window
    scope: str  # "window" | "regime"
    pair: str  # "kalshi" (x = KALSHI, y = a ticker) or the group whose members x, y are
    x: str
    y: str
    regime: str
    regime_fraction: float
    windows: int  # 1, or the non-overlapping pure windows summed on regime rows
    window_seconds: float
    n_x: int  # ticks used
    n_y: int
    best_lag: float  # argmax of |HY covariance| over the lag grid, seconds
    best_correlation: float  # HY correlation at that lag
    zero_lag_correlation: float
    lead_lag_ratio: float  # Huth-Abergel: sum rho^2 (lag > 0) / sum rho^2 (lag < 0)
    null_sd: float  # sd of the HY correlation under no lead-lag, measured on the same ticks
    p_value: float  # P(the grid's largest |correlation| reaches the peak's | no lead-lag)
    identified: bool  # p_value <= 1 %: the peak is distinguishable from noise
    lag_low: float  # grid lags whose correlation is within 2 null sds of the peak, seconds
    lag_high: float  # (the whole grid when not identified)


class SweepLeadership(csp.Struct):
    """Leadership measure regressed on the ISO volume share across assets (stream
    ``sweep_leadership``): per window, and Fama-MacBeth with Newey-West errors per regime."""

    time: dt.datetime
    scope: str  # "window" | "regime"
    measure: str  # is_mid | mis | cs | ils (group shares, group fixed effects) | kalshi_llr
    regime: str
    regime_fraction: float
    window_seconds: float
    slope: float  # per-window OLS slope, or the mean of the regime's per-window slopes
    se: float  # cluster-robust (CR1) by group, or Newey-West of the mean
    t_stat: float
    n_obs: int  # observations in the window's cross-section (0 on regime rows)
    n_groups: int  # fixed-effect groups (clusters); 0 on regime rows
    r2: float  # within R^2 (NaN on regime rows)
    windows: int  # 1, or per-window slopes averaged
    nw_lags: int  # Newey-West bandwidth (windows' overlap in publications); 0 on window rows
    independent_windows: float  # windows / (nw_lags + 1): how many non-overlapping windows that is
    error: str


# ---- Fama-French factors (issue 6; docs/factors.md). Regimes: elecflow.leadership.regimes.


class FactorReturn(csp.Struct):
    """The five Fama-French factor returns of one second (output stream ``factor_returns``):
    weighted sums of the universe's 1 s mid returns, ``time`` the 1 s label (right end)."""

    time: dt.datetime
    regime: str  # pre_open | regular | close | after_hours | results_night | closed
    mkt_rf: float  # market minus the risk-free rate
    smb: float
    hml: float
    rmw: float
    cma: float
    n_quotes: int  # universe stocks with a row this second
    coverage: float  # share of the market's weight whose stocks have a mid


class FactorDecomposition(csp.Struct):
    """One instrument's factor exposure and variance split at the end of an interval (output
    stream ``factor_decomposition``). Variances are per interval (realised: means of squared
    returns). ``window_*`` over the last ``window_intervals``, ``regime_*`` since the regime
    began (one-step-ahead betas). Model in docs/factors.md."""

    time: dt.datetime  # end of the interval (b - interval, b]
    symbol: str
    regime: str
    interval_return: float  # NaN when the instrument had no mid at either end
    systematic_return: float  # b_prev' x: the factor-explained part (one-step-ahead)
    beta_mkt_rf: float  # total (Dimson: summed over lags) betas after this interval's update
    beta_smb: float
    beta_hml: float
    beta_rmw: float
    beta_cma: float
    window_total_var: float
    window_systematic_var: float
    window_idiosyncratic_var: float
    systematic_share: float  # window sys / (sys + idio)
    regime_total_var: float
    regime_systematic_var: float
    regime_idiosyncratic_var: float
    regime_intervals: int
    baseline_idiosyncratic_var: float  # baseline days, this regime, prior betas (NaN without baseline)
    idio_ratio_vs_baseline: float  # regime idio with the prior betas / baseline_idiosyncratic_var
    warm: bool  # betas defined (a prior, or enough intervals)


class EtfReplication(csp.Struct):
    """Minimum-norm replication of one ETF by the stocks from their total betas (output stream
    ``etf_replication``): ``w = L'(LL')^{-1} beta``. Tracking errors are per interval (sd of the
    tracking difference) in basis points; ``*_annual`` scale them to a regular-hours year."""

    time: dt.datetime
    etf: str
    regime: str
    n_stocks: int
    weight_sum: float  # the rest is cash
    weight_norm: float  # Euclidean norm of w (what the solution minimises)
    gross_exposure: float  # sum |w|
    exposure_error: float  # max |L w - beta| (0 up to rounding unless the pseudo-inverse fallback ran)
    condition: float  # condition number of L L'
    method: str  # normal_equations | pseudo_inverse
    tracking_error_bps: float  # ex ante: sqrt(d_ETF + sum w_j^2 d_j)
    realized_tracking_error_bps: float  # over the decomposition window, these weights
    tracking_error_annual: float
    realized_tracking_error_annual: float


class EtfReplicationWeight(csp.Struct):
    """One stock's weight in an ETF's replica (output stream ``etf_replication_weights``)."""

    time: dt.datetime
    etf: str
    stock: str
    weight: float


# ---- cross impact of option order flow (issue 7; docs/theory.md, "Simulator and streaming
# estimator"; elecflow.impact_stream). `time` is the end of the last period in the window.


class CrossImpact(csp.Struct):
    """One entry of the estimated price-impact matrix of eq. (45) (output stream
    ``cross_impact``): the response of contract i's mid to signed order flow in contract j,
    dollars per contract, with its standard error."""

    time: dt.datetime
    underlying: str
    expiry: dt.date
    i: int  # row: the price (contracts ordered by strike, call before put)
    j: int  # column: the order flow
    contract_i: str
    contract_j: str
    label_i: str  # "C 046.00" style: sorts as the contracts do
    label_j: str
    strike_i: float
    right_i: str
    strike_j: float
    right_j: str
    impact: float  # Lambda_ij (NaN for a contract without flow variation in the window)
    se: float
    n: int  # periods in the window


class ImpactStat(csp.Struct):
    """A cross-impact statistic of one underlying (output stream ``impact_stats``), long form:
    ``statistic`` is ``straddle`` (footnote 34, one row per strike), ``portfolio`` (footnote
    35's CI^(m) for the theory's prescribed portfolio of story ``label``), ``wing`` (footnote
    37's CI^wing), ``kappa`` (footnote 37's smile curvature; no se) or ``r_squared`` (mean over
    the contracts' equations). Every row carries the fit's window, shrinkage and dof."""

    time: dt.datetime
    underlying: str
    expiry: dt.date
    statistic: str
    label: str  # straddle: the strike; portfolio: the story; wing: "low | high"; kappa: the delta
    strike: float  # straddle rows; NaN otherwise
    value: float
    se: float
    n: int  # periods in the window
    periods: int  # periods used since the contract set was chosen
    shrinkage: float  # delta of the shrinkage toward the diagonal flow covariance (0 = OLS)
    dof: float
    source: str  # kappa: "chain_smile" | "quotes" | "none"; portfolio: the weights' model; else ""
