"""The whole synthetic Election Day in memory: vendor-format rows plus ground truth.

:func:`generate_day` runs every component from its own seeded stream and returns a
:class:`SyntheticDay` -- column arrays laid out as the vendors' files (rows in file order,
defects included), and ground-truth tables. No file I/O: the writer is
:mod:`elecflow.adapters.synthetic`.

With ``config.day_kind == "normal"`` it generates an ordinary pre-election trading day
instead (:mod:`elecflow.synth.normal`): the same equity microstructure on
``config.trading_date``, news in place of the election probability, no Kalshi, options
only if asked for. Its random streams are keyed by (seed, trading date).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pyarrow as pa

from elecflow import universe as U
from elecflow.calendar import (
    NS_PER_SECOND,
    Session,
    ny_datetime_to_utc,
    ny_to_utc,
    session_window,
    utc_ns,
)
from elecflow.synth import defects as D
from elecflow.synth import normal as N
from elecflow.synth.config import FULL_END_ET, FULL_START_ET, SyntheticDayConfig
from elecflow.synth.factor_universe import UniverseDay, factor_universe_day
from elecflow.synth.equities import (
    LOCATION_NAMES,
    PREMIUM_HALF_LIFE_SECONDS,
    PREMIUM_SD,
    PX,
    EfficientPaths,
    FlowParams,
    basket_mode_annual_vols,
    basket_mode_loadings,
    basket_weights,
    covered_etfs,
    generate_symbol_flow,
    nbbo_1s,
    premium_owner,
    simulate_basket_premium,
    simulate_efficient_prices,
)
from elecflow.synth.kalshi import CONTRACTS, KalshiFills, generate_kalshi
from elecflow.synth.options import THETA_CONDITION, YEAR_NS, OptionChain, generate_option_chain, listed_strikes
from elecflow.synth.probability import ClockSpec, ProbabilityPath, second_grid, simulate_probability
from elecflow.synth.rng import stream

DAY = dt.date(2024, 11, 5)


def equity_bounds(date: dt.date) -> tuple[int, int, int]:
    """UTC ns of 04:00, 20:00 (equity grid) and 16:00 (leveraged ETFs' reset) New York time on ``date``."""
    return (session_window(Session.PRE_OPEN, date).start_ns, session_window(Session.AFTER_HOURS, date).end_ns,
            session_window(Session.REGULAR, date).end_ns)


EQUITY_OPEN_NS, EQUITY_CLOSE_NS, REBALANCE_NS = equity_bounds(DAY)  # 04:00, 20:00, 16:00 ET on 11-05
UTC_TS = pa.timestamp("ns", tz="UTC")
DEFECT_STREAM_KEYS = {"quotes": 0, "trades": 1, "option_quotes": 2, "kalshi_trades": 3}


@dataclass
class SyntheticDay:
    """Everything the writer needs. Column dicts are in file order, defects included."""

    config: SyntheticDayConfig
    window_ns: tuple[int, int]
    tickers: list[str]  # Polygon file order (sorted); ``ticker`` columns index into it
    probability: ProbabilityPath | None  # full 30 h window, 1 s (None on a normal day)
    paths: EfficientPaths  # full 04:00-20:00 ET grid, 1 s
    quotes: dict[str, np.ndarray]
    trades: dict[str, np.ndarray]
    trades_truth: dict[str, np.ndarray]  # clean trades, file order
    nbbo: pa.Table
    options: dict[str, dict[str, np.ndarray]]  # underlying -> ThetaData raw columns (+ time_ns)
    chains: dict[str, OptionChain]
    kalshi: KalshiFills | None  # None on a normal day (no Kalshi files)
    kalshi_bad: list[dict]
    defects: list[dict]
    clean_rows: dict[str, int]
    params: dict = field(default_factory=dict)
    day_kind: str = "election"
    trading_date: dt.date = DAY
    news: list[dict] = field(default_factory=list)  # normal days: every news jump (see elecflow.synth.normal)
    universe: UniverseDay | None = None  # the broad factor universe (factor_universe_size > 0)
    # the simulated informed option market per underlying (impact_underlyings; elecflow.synth.impact):
    # OptionMarketSimulation objects, written by elecflow.theory.simulator.write_option_market
    impact_markets: dict = field(default_factory=dict)

    @property
    def is_normal(self) -> bool:
        return self.day_kind == "normal"

    # ------------------------------------------------------------------ ground truth
    def probability_table(self) -> pa.Table:
        pr = self.probability
        sel = (pr.time_ns >= self.window_ns[0]) & (pr.time_ns <= self.window_ns[1])
        return pa.table({
            "time": pa.array(pr.time_ns[sel]).cast(UTC_TS),
            "p_true": pr.p[sel], "z": pr.z[sel], "probit": pr.probit[sel],
            "clock_variance": pr.clock[sel], "remaining_variance": pr.remaining[sel],
        })

    def _equity_grid_selection(self) -> np.ndarray:
        t = self.paths.time_ns
        return np.flatnonzero((t >= self.window_ns[0]) & (t <= self.window_ns[1]))

    def efficient_prices_table(self) -> pa.Table:
        k = self._equity_grid_selection()
        rows = [self.paths.row(s) for s in self.tickers]
        n_sym = len(rows)
        x = self.paths.log_price[rows][:, k]
        m = self.paths.log_target[rows][:, k]
        columns = {
            "time": pa.array(np.repeat(self.paths.time_ns[k], n_sym)).cast(UTC_TS),
            "symbol": pa.DictionaryArray.from_arrays(
                pa.array(np.tile(np.arange(n_sym, dtype=np.int32), k.size)), pa.array(self.tickers)
            ).cast(pa.string()),
            "log_efficient_price": x.T.ravel(),
            "log_quoted_mid_target": m.T.ravel(),
        }
        premia = self.paths.basket_premia
        if premia:  # etf_baskets="constituents": log ETF - log NAV, null for symbols without a basket
            pi = np.array([premia[s][k] if s in premia else np.zeros(k.size) for s in self.tickers])
            no_basket = np.repeat(np.array([s not in premia for s in self.tickers])[:, None], k.size, axis=1)
            columns["log_etf_premium"] = pa.array(pi.T.ravel(), pa.float64(), mask=no_basket.T.ravel())
        return pa.table(columns)

    def factors_table(self) -> pa.Table:
        k = self._equity_grid_selection()
        nf = len(self.paths.factors)
        return pa.table({
            "time": pa.array(np.repeat(self.paths.time_ns[k], nf)).cast(UTC_TS),
            "factor": pa.array(np.tile(np.array(self.paths.factors, dtype=object), k.size), pa.string()),
            "log_level": self.paths.factor_log[:, k].T.ravel(),
        })

    def trades_truth_table(self) -> pa.Table:
        tt = self.trades_truth
        names = np.array(self.tickers, dtype=object)
        return pa.table({
            "symbol": pa.array(names[tt["ticker"]], pa.string()),
            "trade_id": pa.array(tt["id"].astype(str), pa.string()),
            "true_side": pa.array(tt["side"], pa.int8()),
            "informed": tt["informed"], "is_iso": tt["iso"],
            "sip_timestamp": pa.array(tt["sip_timestamp"], pa.int64()),
            "price": tt["price"],
            "location": pa.array(np.array(LOCATION_NAMES, dtype=object)[tt["location"]], pa.string()),
        })

    def news_table(self) -> pa.Table:
        """Normal days: every news jump (release, unscheduled macro news, a stock's own news)."""
        ev = self.news
        return pa.table({
            "time": pa.array(np.array([e["time_utc_ns"] for e in ev], dtype=np.int64)).cast(UTC_TS),
            "grid_time": pa.array(np.array([e["grid_time_utc_ns"] for e in ev], dtype=np.int64)).cast(UTC_TS),
            "kind": pa.array([e["kind"] for e in ev], pa.string()),
            "label": pa.array([e["label"] for e in ev], pa.string()),
            "symbol": pa.array([e["symbol"] for e in ev], pa.string()),
            "sd": pa.array([e["sd"] for e in ev], pa.float64()),
            "log_jump": pa.array([e["log_jump"] for e in ev], pa.float64()),
        })

    def kalshi_truth_table(self) -> pa.Table:
        k = self.kalshi
        return pa.table({
            "time": pa.array(k.time_ns).cast(UTC_TS),
            "contract": pa.array(np.array(CONTRACTS, dtype=object)[k.contract], pa.string()),
            "price": pa.array(k.price, pa.int64()),
            "true_p": k.true_p,
            "taker_side": pa.array(np.where(k.taker_yes, "yes", "no").astype(object), pa.string()),
            "count": pa.array(k.count, pa.int64()),
            "quoted_mid": pa.array(k.mid, pa.int64()),
            "informed": k.informed,
            "trade_id": pa.array(k.trade_id, pa.string()),
        })

    def options_truth_table(self) -> pa.Table:
        parts = []
        for sym, ch in self.chains.items():
            n = ch.snap_ns.size
            v_T, v_H = ch.sigma_trump ** 2 * ch.T, ch.sigma_harris ** 2 * ch.T
            parts.append(pa.table({
                "underlying": pa.array([sym] * n, pa.string()),
                "time": pa.array(ch.snap_ns).cast(UTC_TS),
                "spot": ch.spot, "forward": ch.forward, "q": ch.q,
                "r": np.full(n, ch.rate), "dividend_yield": np.full(n, ch.dividend_yield), "T": ch.T,
                "discount_factor": np.exp(-ch.rate * ch.T),
                "election_loading": np.full(n, ch.gamma),
                "mean_trump": ch.m_trump, "mean_harris": ch.m_harris,
                "mu_trump": np.log(ch.m_trump) - 0.5 * v_T, "sigma_trump": np.full(n, ch.sigma_trump),
                "mu_harris": np.log(ch.m_harris) - 0.5 * v_H, "sigma_harris": np.full(n, ch.sigma_harris),
            }))
        if not parts:
            return pa.table({"underlying": pa.array([], pa.string()), "time": pa.array([], UTC_TS)})
        return pa.concat_tables(parts)


def window_ns(config: SyntheticDayConfig) -> tuple[int, int]:
    return utc_ns(ny_datetime_to_utc(config.start_et)), utc_ns(ny_datetime_to_utc(config.end_et))


def clock_spec(config: SyntheticDayConfig) -> ClockSpec:
    return ClockSpec(jump_share=config.info_jump_share, terminal_share=config.info_terminal_share,
                     scale_hours=config.info_clock_scale_hours, floor=config.info_clock_floor)


def probability_path(config: SyntheticDayConfig) -> ProbabilityPath:
    """The true probability on the full 1 s grid (00:00 ET 11-05 .. 06:00 ET 11-06)."""
    spec = clock_spec(config)
    grid = second_grid(utc_ns(ny_datetime_to_utc(FULL_START_ET)), utc_ns(ny_datetime_to_utc(FULL_END_ET)))
    return simulate_probability(spec, grid, config.p_start, stream(config.seed, "probability_diffusion"),
                                stream(config.seed, "probability_jumps"))


def basket_premia(config: SyntheticDayConfig, n: int) -> dict[str, np.ndarray] | None:
    """Each covered ETF's log premium over its NAV on ``n`` grid seconds (``etf_baskets=
    "constituents"``; None otherwise). One stream per premium, keyed by the ETF that owns it
    (IVV and VOO carry SPY's: :func:`elecflow.synth.equities.premium_owner`)."""
    if config.etf_baskets != "constituents":
        return None
    owned = {owner: simulate_basket_premium(n, _rng(config, "etf_premium", U.symbol_index(owner)))
             for owner in dict.fromkeys(premium_owner(etf) for etf in covered_etfs())}
    return {etf: owned[premium_owner(etf)] for etf in covered_etfs()}


def efficient_paths(config: SyntheticDayConfig, prob: ProbabilityPath) -> EfficientPaths:
    """Efficient prices on the full 04:00-20:00 ET 1 s grid (independent of the window)."""
    grid = second_grid(EQUITY_OPEN_NS, EQUITY_CLOSE_NS)
    offset = int((EQUITY_OPEN_NS - prob.time_ns[0]) // NS_PER_SECOND)
    p = prob.p[offset: offset + grid.size]
    return simulate_efficient_prices(grid, p, REBALANCE_NS, stream(config.seed, "efficient_prices"),
                                     basket_premia=basket_premia(config, grid.size))


def normal_paths(config: SyntheticDayConfig) -> tuple[EfficientPaths, N.NormalNews]:
    """A normal day's news and efficient prices on its full 04:00-20:00 ET 1 s grid.

    The factors gain the macro news level as an extra row named ``MACRO``; ``paths.p``
    holds that level (``paths.driver == "macro"``), not a probability.
    """
    date = config.trading_date
    open_ns, close_ns, rebalance_ns = equity_bounds(date)
    grid = second_grid(open_ns, close_ns)
    rng_idio = {s: stream(config.seed, "idio_news", U.symbol_index(s), day=date) for s in N.news_stocks()}
    news = N.simulate_news(grid, date, N.NewsParams.from_config(config),
                           stream(config.seed, "macro_news", day=date), rng_idio)
    paths = simulate_efficient_prices(grid, news.level, rebalance_ns, stream(config.seed, "efficient_prices", day=date),
                                      date=date, factor_loadings=N.MACRO_FACTOR_LOADINGS, direct_loadings={},
                                      extra_increments=news.idio, driver="macro",
                                      basket_premia=basket_premia(config, grid.size))
    paths.factors = paths.factors + (N.MACRO_FACTOR,)
    paths.factor_log = np.vstack([paths.factor_log, news.level[None, :]])
    return paths, news


def progress_units(config: SyntheticDayConfig) -> int:
    """Number of ``tick`` calls :func:`generate_day` makes (for a progress bar)."""
    return (3 + len(U.SYMBOLS) + len(config.option_underlyings) + (1 if config.is_normal else 2)
            + (1 if config.factor_universe_size else 0) + len(config.impact_underlyings))


def _rng(config: SyntheticDayConfig, component: str, *key: int) -> np.random.Generator:
    """The component's stream: keyed by (seed, trading date) on a normal day, by seed on Election Day."""
    return stream(config.seed, component, *key, day=config.trading_date if config.is_normal else None)


def generate_day(config: SyntheticDayConfig, tick: Callable[[str], None] | None = None) -> SyntheticDay:
    """Generate the whole day described by ``config`` (deterministic in ``config``)."""
    tick = tick or (lambda name: None)
    w0, w1 = window_ns(config)
    k = config.defects_per_kind
    spec = clock_spec(config)
    date = config.trading_date
    open_ns, close_ns, _ = equity_bounds(date)

    news = None
    if config.is_normal:
        prob = None
        paths, news = normal_paths(config)
        tick("news")
    else:
        prob = probability_path(config)
        tick("probability")
        paths = efficient_paths(config, prob)
    tick("efficient prices")
    universe = None
    if config.factor_universe_size:  # own streams: the 40's draws do not depend on it
        universe = factor_universe_day(config.seed, date if config.is_normal else None, config.factor_universe_size,
                                       config.risk_free_rate, paths, (max(w0, open_ns), min(w1, close_ns)))
        tick("factor universe")

    # ---- equities
    tickers = sorted(U.SYMBOLS)
    eq_window = (max(w0, open_ns), min(w1, close_ns))
    fp = FlowParams(intensity_scale=config.intensity_scale, informed_base=config.informed_base,
                    informed_gap=config.informed_gap, iso_prob_informed=config.iso_prob_informed,
                    iso_prob_uninformed=config.iso_prob_uninformed)
    if eq_window[0] >= eq_window[1]:  # no equity session in the window
        eq_window = (open_ns, open_ns)
    flows = []
    for sym in tickers:
        flows.append(generate_symbol_flow(sym, paths, eq_window, fp, _rng(config, "equity_flow", U.symbol_index(sym))))
        tick(sym)
    nbbo = nbbo_1s(tickers, [f.q_time for f in flows], [f.q_bid for f in flows], [f.q_ask for f in flows])
    quotes = _quote_columns(flows)
    trades, truth = _trade_columns(flows)
    clean = {"quotes": quotes["sip_timestamp"].size, "trades": trades["sip_timestamp"].size,
             "nbbo_1s": nbbo.num_rows}
    quotes, q_log = D.inject_polygon("quotes", quotes, k, _rng(config, "defects", 0))
    trades, t_log = D.inject_polygon("trades", trades, k, _rng(config, "defects", 1))
    for entry in q_log + t_log:
        entry["ticker"] = tickers[entry.pop("ticker_index")]
    tick("equity defects")

    # ---- options
    expiry_ns = utc_ns(ny_to_utc(config.option_expiry, dt.time(16, 0)))
    regular = session_window(Session.REGULAR, date)
    cadence = int(config.option_snapshot_seconds) * NS_PER_SECOND
    snaps = np.arange(regular.start_ns, regular.end_ns, cadence, dtype=np.int64)
    snaps = snaps[(snaps >= w0) & (snaps < w1)]
    options, chains, o_log, n_opt_clean = {}, {}, [], 0
    n_under = len(config.option_underlyings)
    snap_k = ((snaps - paths.time_ns[0]) // NS_PER_SECOND).astype(np.int64)  # equity grid index
    # a normal day: the election is still ahead, its probability held at p_start
    q = prob.at(snaps) if prob is not None else np.full(snaps.size, config.p_start)
    q_at = prob.at if prob is not None else (lambda t: np.full(np.shape(t), config.p_start))
    for j, sym in enumerate(config.option_underlyings):
        k_here = k // n_under + (1 if j < k % n_under else 0)  # defects per reason spread over the files
        log_path = paths.log_price[paths.row(sym)]
        spot = np.exp(log_path[snap_k])
        stagger = {}
        spread_ms = int(round(min(config.option_quote_spread_seconds, config.option_snapshot_seconds) * 1000))
        if spread_ms > 0:
            n_strikes = listed_strikes(sym, (expiry_ns - regular.start_ns) / YEAR_NS, config.option_strike_range,
                                       config.option_strike_sds).size
            phase_rng = _rng(config, "option_phases", U.symbol_index(sym))
            stagger = dict(
                quote_offset_ms=phase_rng.integers(0, spread_ms, n_strikes),
                spot_at=lambda t, lp=log_path: np.exp(lp[np.minimum((t - paths.time_ns[0]) // NS_PER_SECOND,
                                                                    lp.size - 1)]),
                q_at=q_at, end_ns=w1)
        ch = generate_option_chain(sym, snaps, spot, q, config.risk_free_rate, expiry_ns, config.option_strike_range,
                                   _rng(config, "options", U.symbol_index(sym)), config.option_strike_sds,
                                   listing_ns=regular.start_ns,
                                   identical_states=config.option_states == "identical", **stagger)
        cols = _theta_columns(ch, config.option_expiry, date)
        n_opt_clean += cols["ms_of_day"].size
        cols, log = D.inject_options(cols, k_here, _rng(config, "defects", 2, U.symbol_index(sym)),
                                     int(config.option_snapshot_seconds * 1000))
        for entry in log:
            entry["underlying"] = sym
        o_log += log
        chains[sym], options[sym] = ch, cols
        tick(f"options {sym}")
    clean["option_quotes"] = n_opt_clean

    # ---- Kalshi (Election Day only)
    if prob is not None:
        fills = generate_kalshi(prob, spec, (w0, w1), config.kalshi_expected_trades, config.kalshi_informed_share,
                                config.kalshi_other_outcomes, stream(config.seed, "kalshi"))
        clean["kalshi_trades"] = int(fills.time_ns.size)
        k_bad = D.kalshi_defects((w0, w1), k, stream(config.seed, "defects", 3))
        for entry in k_bad:
            entry["contract"] = CONTRACTS[entry.pop("contract_index")]
        tick("kalshi")
    else:
        fills, k_bad = None, []
        clean["kalshi_trades"] = 0

    # ---- the informed option market (Election Day only; own streams: the 40's draws do not
    # depend on it, and its rows are not in `clean`, which params.json records)
    impact_markets = {}
    for sym in config.impact_underlyings:
        from elecflow.synth.impact import session_story, simulate_impact_market

        seed = int(_rng(config, "impact", U.symbol_index(sym)).integers(0, 2**63 - 1))
        sim = simulate_impact_market(sym, date=date, expiry=config.option_expiry, window_ns=(w0, w1),
                                     period_seconds=config.impact_period_seconds, n_strikes=config.impact_strikes,
                                     strike_range=config.impact_strike_range, story=session_story(float(prob.p[-1])),
                                     seed=seed)
        if sim is not None:  # None: the window holds no period of the regular session
            impact_markets[sym] = sim
        tick(f"impact {sym}")

    day = SyntheticDay(config, (w0, w1), tickers, prob, paths, quotes, trades, truth, nbbo, options, chains, fills,
                       k_bad, q_log + t_log + o_log + k_bad, clean, day_kind=config.day_kind, trading_date=date,
                       news=news.events if news is not None else [], universe=universe,
                       impact_markets=impact_markets)
    day.params = _normal_params(day) if config.is_normal else _params(day, spec)
    tick("ground truth")
    return day


# --------------------------------------------------------------------------- columns


def _quote_columns(flows) -> dict[str, np.ndarray]:
    n = [f.q_time.size for f in flows]
    cat = np.concatenate
    return {
        "ticker": np.repeat(np.arange(len(flows), dtype=np.int32), n),
        "ask_exchange": cat([f.q_ask_exchange for f in flows]).astype(np.int64),
        "ask_price": cat([f.q_ask for f in flows]) / PX,
        "ask_size": cat([f.q_ask_size for f in flows]).astype(np.int64),
        "bid_exchange": cat([f.q_bid_exchange for f in flows]).astype(np.int64),
        "bid_price": cat([f.q_bid for f in flows]) / PX,
        "bid_size": cat([f.q_bid_size for f in flows]).astype(np.int64),
        "participant_timestamp": cat([f.q_participant for f in flows]).astype(np.int64),
        "sequence_number": cat([f.q_seq for f in flows]).astype(np.int64),
        "sip_timestamp": cat([f.q_time for f in flows]).astype(np.int64),
        "tape": np.repeat(np.array([U.get(f.symbol).tape for f in flows], dtype=np.int64), n),
    }


def condition_text(masks: np.ndarray) -> np.ndarray:
    """Polygon condition lists as text (``"12,37"``, ascending ids; ``""`` for none)."""
    uniq, inv = np.unique(masks, return_inverse=True)
    texts = np.array([",".join(str(b) for b in range(63) if (int(m) >> b) & 1) for m in uniq], dtype=object)
    return texts[inv]


def _trade_columns(flows) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    n = [f.t_time.size for f in flows]
    cat = np.concatenate
    ticker = np.repeat(np.arange(len(flows), dtype=np.int32), n)
    cols = {
        "ticker": ticker,
        "conditions": condition_text(cat([f.t_cond_mask for f in flows]).astype(np.int64)),
        "correction": np.zeros(sum(n), dtype=np.int64),
        "exchange": cat([f.t_exchange for f in flows]).astype(np.int64),
        "id": cat([f.t_id for f in flows]).astype(np.int64),
        "participant_timestamp": cat([f.t_participant for f in flows]).astype(np.int64),
        "price": cat([f.t_price for f in flows]) / PX,
        "sequence_number": cat([f.t_seq for f in flows]).astype(np.int64),
        "sip_timestamp": cat([f.t_time for f in flows]).astype(np.int64),
        "size": cat([f.t_size for f in flows]).astype(np.int64),
        "tape": np.repeat(np.array([U.get(f.symbol).tape for f in flows], dtype=np.int64), n),
        "trf_id": cat([f.t_trf_id for f in flows]).astype(np.int64),
        "trf_timestamp": cat([f.t_trf_time for f in flows]).astype(np.int64),
    }
    truth = {
        "ticker": ticker, "id": cols["id"], "sip_timestamp": cols["sip_timestamp"], "price": cols["price"],
        "side": cat([f.t_side for f in flows]).astype(np.int8),
        "informed": cat([f.t_informed for f in flows]).astype(bool),
        "iso": cat([f.t_iso for f in flows]).astype(bool),
        "location": cat([f.t_location for f in flows]).astype(np.int8),
    }
    return cols, truth


def _theta_columns(ch: OptionChain, expiry: dt.date, date: dt.date = DAY) -> dict[str, np.ndarray]:
    n = ch.strike_milli.size
    day_midnight = utc_ns(ny_to_utc(date, dt.time(0, 0)))
    contract_key = ch.strike_milli * 2 + (~ch.is_call).astype(np.int64)
    return {
        "contract_key": contract_key,
        "time_ns": ch.time_ns.astype(np.int64),
        "root": np.full(n, U.get(ch.symbol).option_root, dtype=object),
        "exp": np.full(n, int(expiry.strftime("%Y%m%d")), dtype=np.int64),
        "strike": ch.strike_milli.astype(np.int64),
        "right": np.where(ch.is_call, "C", "P").astype(object),
        "date": np.full(n, int(date.strftime("%Y%m%d")), dtype=np.int64),
        "ms_of_day": ((ch.time_ns - day_midnight) // 1_000_000).astype(np.int64),
        "bid_size": ch.bid_size.astype(np.int64),
        "bid_exchange": ch.bid_exchange.astype(np.int64),
        "bid": ch.bid / PX,
        "bid_condition": np.full(n, THETA_CONDITION, dtype=np.int64),
        "ask_size": ch.ask_size.astype(np.int64),
        "ask_exchange": ch.ask_exchange.astype(np.int64),
        "ask": ch.ask / PX,
        "ask_condition": np.full(n, THETA_CONDITION, dtype=np.int64),
    }


# --------------------------------------------------------------------------- params


def _params(day: SyntheticDay, spec: ClockSpec) -> dict:
    cfg = day.config
    gamma = _effective_loadings(cfg, U.effective_election_loadings())
    pr = day.probability
    w_sel = (pr.time_ns >= day.window_ns[0]) & (pr.time_ns <= day.window_ns[1])
    defects_count: dict[str, dict[str, int]] = {s: {} for s in D.REASONS_BY_STREAM}
    for entry in day.defects:
        bucket = defects_count[entry["stream"]]
        bucket[entry["reason"]] = bucket.get(entry["reason"], 0) + 1
    params = {
        "seed": cfg.seed,
        "window_et": [cfg.start_et.isoformat(), cfg.end_et.isoformat()],
        "window_utc_ns": list(day.window_ns),
        "probability": {
            "construction": "p_t = Phi(Z_t / sqrt(V - v_t)), Z = Z0 + W(v), V = 1",
            "p_start": cfg.p_start,
            "z0": float(pr.z[0]),
            "total_variance": 1.0,
            "jump_share": spec.jump_share, "terminal_share": spec.terminal_share,
            "diffusive_share": spec.diffusive_share,
            "clock_speed": "c * (eps + (h / (T_R - t + h))**2), t in hours",
            "clock_scale_hours": spec.scale_hours, "clock_floor": spec.floor,
            "resolution_time_utc_ns": spec.resolution_ns,
            "news": pr.news,
            "p_final_full_window": float(pr.p[-1]),
            "p_at_window_start": float(pr.p[w_sel][0]),
            "p_at_window_end": float(pr.p[w_sel][-1]),
        },
        "equities": {
            "grid": "1 s, 04:00-20:00 ET (full, sliced to the window in the truth files)",
            "vol_session_multipliers": {"pre_open": 0.35, "regular": 1.0, "after_hours": 0.5},
            "leveraged_reset_utc_ns": REBALANCE_NS,
            "factors": {f.name: {"vol": f.vol, "election_loading": f.election_loading, "description": f.description}
                        for f in U.FACTORS},
            "instruments": _instruments_params(cfg, gamma),
            "designed_leaders": U.designed_leaders(),
            "adjustment_half_life_seconds": {s: U.INSTRUMENTS[s].half_life for s in U.SYMBOLS},
            "effective_election_loadings": gamma,
            "flow": {"informed_base": cfg.informed_base, "informed_gap": cfg.informed_gap,
                     "iso_prob_informed": cfg.iso_prob_informed, "iso_prob_uninformed": cfg.iso_prob_uninformed,
                     "intensity_scale": cfg.intensity_scale},
        },
        "options": {
            "expiry": cfg.option_expiry.isoformat(), "settlement": "16:00 ET, European, ACT/365",
            "risk_free_rate": cfg.risk_free_rate,
            "underlyings": {
                s: {"dividend_yield": ch.dividend_yield, "sigma_trump": ch.sigma_trump,
                    "sigma_harris": ch.sigma_harris, "election_loading": ch.gamma,
                    "strikes": int(np.unique(ch.strike_milli).size), "snapshots": int(ch.snap_ns.size)}
                for s, ch in day.chains.items()
            },
            "snapshot_seconds": cfg.option_snapshot_seconds,
        },
        "kalshi": {"contracts": list(CONTRACTS), "half_spread_cents": 1,
                   "informed_share": cfg.kalshi_informed_share, "other_outcomes": cfg.kalshi_other_outcomes,
                   "expected_trades_full_window": cfg.kalshi_expected_trades},
        "clean_rows": dict(day.clean_rows),
        "defects": defects_count,
    }
    _add_basket_params(params, day)
    return params


def _effective_loadings(cfg: SyntheticDayConfig, design: dict[str, float]) -> dict[str, float]:
    """The design's effective loadings, or those of the baskets when ``etf_baskets="constituents"``."""
    return basket_mode_loadings(design) if cfg.etf_baskets == "constituents" else design


def _add_basket_params(params: dict, day: SyntheticDay) -> None:
    """``etf_baskets="constituents"``: the premium's design and each covered ETF's basket. The
    section is absent in the default mode (``"factor"``), whose params.json predates the knob."""
    if day.config.etf_baskets != "constituents":
        return
    premia = day.paths.basket_premia
    k = day._equity_grid_selection()
    params["etf_baskets"] = {
        "mode": "constituents",
        "construction": "x_e = log NAV_e + pi_e, d log NAV_e = sum_j (W_j / sum W) dx_j (NAV_e = the ETF's "
                        "reference price at 04:00 ET); pi_k = phi pi_(k-1) + e_k on the 1 s grid, stationary "
                        "from 04:00 ET; leveraged ETFs stay multiples of their index",
        "premium_half_life_seconds": PREMIUM_HALF_LIFE_SECONDS,
        "premium_sd": PREMIUM_SD,
        "premium_ar1_coefficient": 2.0 ** (-1.0 / PREMIUM_HALF_LIFE_SECONDS),
        "premium_path": "ground_truth/efficient_prices.parquet, column log_etf_premium",
        "etfs": {etf: {"basket_weights": basket_weights(etf), "premium_of": premium_owner(etf),
                       "premium_sd_in_window": float(np.std(premia[etf][k])) if k.size else None}
                 for etf in covered_etfs()},
    }


def _defect_counts(day: SyntheticDay) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {s: {} for s in D.REASONS_BY_STREAM}
    for entry in day.defects:
        bucket = counts[entry["stream"]]
        bucket[entry["reason"]] = bucket.get(entry["reason"], 0) + 1
    return counts


def _normal_params(day: SyntheticDay) -> dict:
    """``params.json`` of a normal day: the news model and its jumps instead of the probability."""
    cfg = day.config
    gamma = _effective_loadings(cfg, U.effective_election_loadings())
    macro = _effective_loadings(cfg, N.effective_macro_loadings())
    kinds: dict[str, int] = {}
    for e in day.news:
        kinds[e["kind"]] = kinds.get(e["kind"], 0) + 1
    instruments = _instruments_params(cfg, gamma)
    for s in U.SYMBOLS:
        inst = instruments[s]
        inst["election_loading_direct"] = 0.0  # no election signal on a normal day
        inst["election_loading_effective"] = 0.0
        inst["macro_loading_effective"] = macro[s]
        inst["own_news_jump_sd"] = (cfg.idio_news_scale * U.INSTRUMENTS[s].idio_vol / np.sqrt(252.0)
                                    if s in N.news_stocks() else 0.0)
    params = {
        "seed": cfg.seed,
        "day_kind": "normal",
        "trading_date": day.trading_date.isoformat(),
        "window_et": [cfg.start_et.isoformat(), cfg.end_et.isoformat()],
        "window_utc_ns": list(day.window_ns),
        "news": {
            "construction": "dM = macro_vol s(t) dW + release jumps N(0, w sd_r^2) + unscheduled jumps N(0, sd_u^2); "
                            "dF_f = L_f dM + sigma_f s(t) dW_f; stocks add their own news jumps",
            "macro_vol": cfg.macro_vol, "macro_release_jump_sd": cfg.macro_release_jump_sd,
            "macro_news_per_day": cfg.macro_news_per_day, "macro_news_jump_sd": cfg.macro_news_jump_sd,
            "idio_news_per_day": cfg.idio_news_per_day, "idio_news_scale": cfg.idio_news_scale,
            "macro_factor_loadings": dict(N.MACRO_FACTOR_LOADINGS),
            "scheduled_releases": [{"time_et": r.time.isoformat(), "label": r.label, "weight": r.weight}
                                   for r in N.scheduled_releases(day.trading_date)],
            "stocks_with_own_news": list(N.news_stocks()),
            "jumps_by_kind": kinds,
            "jumps": day.news,
            "macro_level_final": float(day.paths.p[-1]),
        },
        "equities": {
            "grid": "1 s, 04:00-20:00 ET of the trading date (full, sliced to the window in the truth files)",
            "vol_session_multipliers": {"pre_open": 0.35, "regular": 1.0, "after_hours": 0.5},
            "leveraged_reset_utc_ns": equity_bounds(day.trading_date)[2],
            "factors": {f.name: {"vol": f.vol, "macro_loading": N.MACRO_FACTOR_LOADINGS.get(f.name, 0.0),
                                 "description": f.description} for f in U.FACTORS},
            "instruments": instruments,
            "designed_leaders": U.designed_leaders(),
            "adjustment_half_life_seconds": {s: U.INSTRUMENTS[s].half_life for s in U.SYMBOLS},
            "effective_macro_loadings": macro,
            "flow": {"informed_base": cfg.informed_base, "informed_gap": cfg.informed_gap,
                     "iso_prob_informed": cfg.iso_prob_informed, "iso_prob_uninformed": cfg.iso_prob_uninformed,
                     "intensity_scale": cfg.intensity_scale},
        },
        "options": {
            "expiry": cfg.option_expiry.isoformat(), "settlement": "16:00 ET, European, ACT/365",
            "risk_free_rate": cfg.risk_free_rate,
            "election_probability": cfg.p_start,
            "underlyings": {
                s: {"dividend_yield": ch.dividend_yield, "sigma_trump": ch.sigma_trump,
                    "sigma_harris": ch.sigma_harris, "election_loading": ch.gamma,
                    "strikes": int(np.unique(ch.strike_milli).size), "snapshots": int(ch.snap_ns.size)}
                for s, ch in day.chains.items()
            },
            "snapshot_seconds": cfg.option_snapshot_seconds,
        },
        "kalshi": None,
        "clean_rows": dict(day.clean_rows),
        "defects": _defect_counts(day),
    }
    _add_basket_params(params, day)
    return params


def _instruments_params(cfg: SyntheticDayConfig, gamma_eff: dict[str, float]) -> dict[str, dict]:
    """Every instrument's design, as generated: with ``etf_baskets="constituents"`` the covered
    ETFs list their rescaled baskets and no factor loadings, and the vols are the baskets'."""
    baskets = cfg.etf_baskets == "constituents"
    vols = basket_mode_annual_vols() if baskets else {s: U.annual_vol(s) for s in U.SYMBOLS}
    out = {s: _instrument_params(s, gamma_eff[s], vols[s]) for s in U.SYMBOLS}
    if baskets:
        for etf in covered_etfs():
            out[etf].update(factor_loadings={}, constituent_weights=basket_weights(etf))
    return out


def _instrument_params(sym: str, gamma_eff: float, annual_vol: float) -> dict:
    i = U.INSTRUMENTS[sym]
    return {
        "kind": i.kind, "ref_price": i.ref_price, "tape": i.tape, "tick": i.tick, "dividend_yield": i.dividend_yield,
        "election_loading_direct": i.election_loading, "election_loading_effective": gamma_eff,
        "idio_vol": i.idio_vol, "factor_loadings": dict(i.factor_loadings),
        "constituent_weights": dict(i.constituent_weights),
        "leverage": list(i.leverage) if i.leverage else None,
        "half_life_seconds": i.half_life, "spread_ticks": i.spread_ticks, "size_lots": i.size_lots,
        "quote_rate": i.quote_rate, "trade_rate": i.trade_rate, "odd_lot_prob": i.odd_lot_prob,
        "annual_vol": annual_vol,
    }
