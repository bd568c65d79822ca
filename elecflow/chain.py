"""Per-underlying option chain -> incremental GP smile -> risk-neutral density (issue 4).

:class:`ChainSmile` is the estimator a csp node owns for one (underlying, expiry): it keeps
the latest quote per contract (``on_quote``) and, on each ``refresh`` (1 s engine-time
cadence in the graph, or on demand), re-estimates the forward and discount from put-call
parity, turns the out-of-the-money quotes into implied vols with noise, keeps a
:class:`~elecflow.smile.SmileGP` in sync with them by exact incremental operations, and
publishes a :class:`ChainSnapshot` with the smile and the risk-neutral density.

Library layer: numpy only, no I/O, no csp. See docs/chain.md for the pipeline and choices.
"""

from __future__ import annotations

import datetime as dt
import math
import time as _time
from dataclasses import dataclass, field

import numpy as np

from elecflow.options import (
    QUOTE_REASONS,
    ForwardFit,
    black_implied_vol,
    implied_forward,
    microprice,
    microprice_var,
    quote_filter,
    time_to_expiry,
    vega,
)
from elecflow.rnd import RiskNeutralDensity, density_from_smile
from elecflow.smile import SmileGP, SmileGPError, heuristic_hyperparameters

__all__ = ["ChainSmile", "ChainSnapshot", "BOOK_STATES"]

# Where every contract of the book stands at a refresh: used in the smile, a valid quote on the
# in-the-money side (used for parity only), or excluded with a quote_filter reason.
BOOK_STATES = ("used", "itm_side", "no_iv") + QUOTE_REASONS[1:]


@dataclass
class ChainSnapshot:
    """One refresh of one chain. Arrays are float64; ``smile_k``, ``k_min``, ``k_max`` are
    ``log(K / forward)`` with the forward of this snapshot, ``quoted_k`` each quote's
    log-moneyness against its own forward (what the GP holds). ``rnd`` is ``None`` when there were too few usable quotes (or
    no forward); the flat density fields are then NaN / empty."""

    time: int  # engine time, UTC ns
    underlying: str
    expiry: dt.date
    tau: float  # years, ACT/365 to the 16:00 New York close
    forward: float
    discount: float
    forward_method: str  # "parity_huber" | "spot_carry" | "none"
    n_parity_pairs: int
    atm_iv: float  # GP mean at k = 0
    n_quotes_used: int
    quotes_seen: int  # cumulative quotes given to on_quote
    reason_counts: dict  # cumulative, per QUOTE_REASONS name, over classified quotes
    n_pending: int  # seen but not yet classified (no forward yet)
    book_counts: dict  # this refresh, per BOOK_STATES name, over the latest quote per contract
    gp_counters: dict
    hyperparameters: dict  # lengthscale, signal_var, mean
    forward_ref: float  # the chain forward when the whole book was last priced
    # smile on a k-grid (latent GP: mean and sd) and the quoted points
    smile_k: np.ndarray
    smile_mean: np.ndarray
    smile_sd: np.ndarray
    quoted_strike: np.ndarray
    quoted_k: np.ndarray
    quoted_iv: np.ndarray
    quoted_iv_sd: np.ndarray
    quoted_is_call: np.ndarray
    k_min: float
    k_max: float
    # density summary (copied from rnd for convenience)
    mean: float = math.nan
    sd: float = math.nan
    skew: float = math.nan
    kurtosis: float = math.nan
    log_mean: float = math.nan
    log_sd: float = math.nan
    log_skew: float = math.nan
    log_kurtosis: float = math.nan
    quantile_levels: np.ndarray = field(default_factory=lambda: np.empty(0))
    quantiles: np.ndarray = field(default_factory=lambda: np.empty(0))
    rnd: RiskNeutralDensity | None = None  # grid strikes/density/cdf, masses, diagnostics
    density_error: str = ""
    latency_s: float = math.nan  # wall time of this refresh (diagnostic only)


class ChainSmile:
    """Incremental smile and density of one option chain (one underlying, one expiry).

    Parameters
    ----------
    underlying, expiry : labels; ``expiry`` is the expiry *date* (16:00 New York close).
    rate, div_yield : continuous rates, used only by the ``spot_carry`` forward fallback
        (which also needs a spot: ``refresh(..., spot=S)``).
    refit_every : marginal-likelihood hyperparameter optimisation every this many refreshes
        (default 60: once a minute at the 1 s cadence); the first fit uses the heuristics.
    forward_refit_threshold : re-price every contract (a counted full fit, ``forward_refits``)
        when the chain forward has moved by more than this fraction since everything was
        last priced (``forward_ref``): quotes without a spot are priced on the chain forward
        of their arrival, and this bounds how stale that gets. GP inputs are each quote's
        own log-moneyness ``log(K / F_quote)`` (docs/chain.md).
    pair_window_seconds : a strike's call and put quoted at most this far apart (both with a
        spot) form a parity pair of the spot-unit carry fit (default 1 s).
    price_var_floor : floor of the microprice variance in price units (default one penny
        tick's uniform rounding variance, 0.01^2 / 12).
    iv_var_floor : floor of the IV variance (default 1e-8, i.e. 1 vol basis point).
    min_points : fewer usable OTM quotes than this -> no smile/density in the snapshot.
    change_tol : dead-band of the sync, in units of a point's own IV sd: a target moving by
        less than ``change_tol * sd`` and a noise sd moving by less than ``change_tol``
        relative are not pushed to the GP (0 pushes every change). Absorbs the 1 s drift of
        every IV through tau (~1e-7 vol per second at 10 days) without touching the GP.
    min_lengthscale_gaps : lower bound of the marginal-likelihood lengthscale, in units of
        the widest gap between neighbouring quoted k. Sparse far strikes (DJT, TSLA) let the
        likelihood pick a lengthscale far below their spacing, and between such points the
        posterior mean reverts to the prior level: a bump in the smile, i.e. butterfly
        arbitrage (measured on the synthetic TSLA chain: 19 % negative density mass at
        l = 0.03 with a 0.08 gap, none at l = gap). 0 disables the bound.
    max_update_fraction : when more than this fraction of the GP's points change at one
        refresh (e.g. a whole chain re-quoted), one full fit at the current hyperparameters
        (counted ``bulk_fits``) replaces the rank-one operations: k updates cost ~k n^2, a fit
        ~n^3/3 (break-even ~0.1-0.15 n measured in docs/smile.md); 1.0 = always incremental.
    """

    def __init__(self, underlying: str, expiry: dt.date, rate: float, div_yield: float = 0.0, *,
                 refit_every: int = 60, forward_refit_threshold: float = 0.01,
                 price_var_floor: float = 0.01**2 / 12.0, iv_var_floor: float = 1e-8,
                 min_points: int = 5, n_grid: int = 400, n_smile: int = 101,
                 tails: str = "lognormal", repair: str = "auto", n_near: int = 8,
                 change_tol: float = 0.1, max_update_fraction: float = 0.25, min_lengthscale_gaps: float = 1.0,
                 pair_window_seconds: float = 1.0, density: bool = True):
        if refit_every < 1:
            raise ValueError("refit_every must be >= 1")
        self.underlying = underlying
        self.expiry = expiry
        self.rate = float(rate)
        self.div_yield = float(div_yield)
        self.refit_every = int(refit_every)
        self.forward_refit_threshold = float(forward_refit_threshold)
        self.price_var_floor = float(price_var_floor)
        self.iv_var_floor = float(iv_var_floor)
        self.min_points = max(int(min_points), 2)
        self.n_grid, self.n_smile = int(n_grid), int(n_smile)
        self.tails, self.repair, self.n_near = tails, repair, int(n_near)
        self.change_tol = float(change_tol)
        self.max_update_fraction = float(max_update_fraction)
        self.min_lengthscale_gaps = float(min_lengthscale_gaps)
        self.pair_window_ns = int(round(float(pair_window_seconds) * 1e9))
        self.carry = math.nan  # F / S from spot-normalised parity (NaN without spots)
        self.density = bool(density)
        # book: contract -> [time_ns, strike, is_call, bid, ask, bid_size, ask_size]
        self._book: dict[str, list] = {}
        self._arrivals: list[tuple] = []  # (strike, is_call, bid, ask, bid_size, ask_size) since last refresh
        self._dirty: set[str] = set()  # contracts whose quote changed since they were last priced
        self._cache: dict[str, tuple[int, float, float, float]] = {}  # contract -> (code, iv, iv var, k at quote)
        self._spot_at: dict[str, float] = {}  # contract -> underlying mid when its quote arrived (NaN: unknown)
        self.quotes_seen = 0
        self.reason_counts = {name: 0 for name in QUOTE_REASONS}
        # GP state
        self.gp: SmileGP | None = None
        self.forward_ref = math.nan
        self._gp_keys: list[float] = []  # strike at each GP position (GP's internal order)
        self.n_refreshes = 0
        self.counters = {"updates": 0, "inserts": 0, "removes": 0, "full_fits": 0, "forward_refits": 0,
                         "bulk_fits": 0, "fallback_fits": 0, "hyper_optimisations": 0, "skipped_changes": 0,
                         "priced": 0}
        self.last_forward = math.nan
        self.last_discount = math.nan

    # ------------------------------------------------------------------ ticks
    def on_quote(self, time_ns: int, contract: str, strike: float, is_call: bool, bid: float, ask: float,
                 bid_size: float, ask_size: float, spot: float | None = None) -> None:
        """Keep the latest quote of ``contract``. O(1), no numpy: classification (which needs the
        forward) happens at the next refresh, vectorised over the quotes that arrived.
        ``spot``: the underlying's mid when the quote arrived (the graph passes the equity
        NBBO); with it each quote is priced on its own forward (carry x spot at its time)."""
        rec = (float(strike), bool(is_call), float(bid), float(ask), float(bid_size), float(ask_size))
        self._book[contract] = [int(time_ns), *rec]
        self._spot_at[contract] = float(spot) if spot is not None and spot > 0 else math.nan
        self._arrivals.append(rec)
        self._dirty.add(contract)
        self.quotes_seen += 1

    @property
    def n_contracts(self) -> int:
        return len(self._book)

    # ------------------------------------------------------------------ refresh
    def refresh(self, time_ns: int, spot: float | None = None) -> ChainSnapshot:
        t0 = _time.perf_counter()
        self.n_refreshes += 1
        tau = float(time_to_expiry(int(time_ns), self.expiry))
        rows = list(self._book.values())
        n = len(rows)
        arr = np.array([r[1:] for r in rows], dtype=np.float64).reshape(n, 6)
        K, is_call = arr[:, 0], arr[:, 1] > 0.5
        bid, ask, qb, qa = arr[:, 2], arr[:, 3], arr[:, 4], arr[:, 5]
        with np.errstate(all="ignore"):
            mp = microprice(bid, ask, qb, qa)

        # 1. forward and discount from put-call parity (model-free-valid quotes only): in spot
        # units when the quotes carry the underlying's mid at their arrival (a carry F/S that
        # holds whichever instant a pair was quoted at, times the spot now), else in dollars
        names = list(self._book)
        S_q = np.array([self._spot_at.get(c, math.nan) for c in names], dtype=np.float64)
        t_q = np.array([r[0] for r in rows], dtype=np.int64)
        spot_now = spot if spot is not None else self._latest_spot(t_q, S_q)
        fit = self._forward(K, is_call, bid, ask, qb, qa, mp, spot, tau, S_q, t_q, spot_now)
        F, DF = fit.forward, fit.discount
        self.last_forward, self.last_discount = F, DF
        have_fwd = math.isfinite(F) and math.isfinite(DF) and tau > 0

        # 2. classification: arrivals (cumulative counts) and the book (this snapshot)
        book_counts = {name: 0 for name in BOOK_STATES}
        if have_fwd and self._arrivals:
            a = np.array(self._arrivals, dtype=np.float64)
            codes = quote_filter(a[:, 2], a[:, 3], F, DF, a[:, 0], a[:, 1] > 0.5, a[:, 4], a[:, 5])
            for c, cnt in zip(*np.unique(codes, return_counts=True)):
                self.reason_counts[QUOTE_REASONS[int(c)]] += int(cnt)
            self._arrivals.clear()
        # 3. implied vols, sticky: a contract's IV, noise and log-moneyness are computed when
        # its quote arrives (on its own forward: carry x its spot, else this refresh's F) and
        # kept until the quote changes, so one changed quote changes one GP point.
        # Everything is re-priced when the chain forward has moved by more than
        # forward_refit_threshold since the last full pricing.
        reanchor = have_fwd and (self.gp is None or abs(F / self.forward_ref - 1.0) > self.forward_refit_threshold)
        if have_fwd and n:
            todo = names if reanchor else [c for c in self._dirty if c in self._book]
            if todo:
                self._price_contracts(todo, F, DF, tau)
            self._dirty.clear()
        codes = np.full(n, -1, dtype=np.int64)  # -1: not classified yet (no forward so far)
        iv = np.full(n, np.nan)
        noise = np.full(n, np.nan)
        k_quote = np.full(n, np.nan)
        for i, c in enumerate(names):
            cached = self._cache.get(c)
            if cached is not None:
                codes[i], iv[i], noise[i], k_quote[i] = cached
        used = np.zeros(n, dtype=bool)
        if have_fwd and n:
            ok = codes == 0
            otm = ok & (is_call == (K >= F))  # the out-of-the-money leg w.r.t. the current forward
            used = otm & np.isfinite(iv) & (iv > 0) & np.isfinite(noise) & np.isfinite(k_quote)
            book_counts["used"] = int(used.sum())
            book_counts["itm_side"] = int((ok & ~otm).sum())
            book_counts["no_iv"] = int((otm & ~used).sum())
            for c in range(1, len(QUOTE_REASONS)):
                book_counts[QUOTE_REASONS[c]] = int((codes == c).sum())

        # 4. the GP, kept in sync incrementally
        Ku, xu, ivu, nu, cu = K[used], k_quote[used], iv[used], noise[used], is_call[used]
        order = np.argsort(Ku, kind="stable")
        Ku, xu, ivu, nu, cu = Ku[order], xu[order], ivu[order], nu[order], cu[order]
        have_smile = Ku.size >= self.min_points
        if have_smile:
            self._sync(Ku, xu, ivu, nu, F, reanchor)

        snap = self._snapshot(int(time_ns), tau, fit, book_counts, Ku, xu, ivu, nu, cu, have_smile)
        snap.latency_s = _time.perf_counter() - t0
        return snap

    def _price_contracts(self, names, F, DF, tau) -> None:
        """Classify ``names`` (quote_filter code) and, for valid quotes, their implied vol,
        its variance sigma_P^2 / vega^2 and their log-moneyness, each against the quote's
        own forward: ``carry * spot`` at the quote's arrival when both are known, else this
        refresh's chain forward F. Both legs of a strike are priced; the sync uses the leg
        out of the money w.r.t. the current forward.

        Why the quote's own forward: with asynchronous quotes a single chain forward is
        wrong for every quote made at another spot, and Black on a forward off by dF moves
        an IV by about delta dF / vega (measured on a day whose strikes re-quote at their
        own second of the minute: neighbouring SPY IVs 20x their noise apart, L1 > 1)."""
        a = np.array([self._book[c][1:] for c in names], dtype=np.float64).reshape(len(names), 6)
        K, is_call = a[:, 0], a[:, 1] > 0.5
        bid, ask, qb, qa = a[:, 2], a[:, 3], a[:, 4], a[:, 5]
        codes = quote_filter(bid, ask, F, DF, K, is_call, qb, qa)
        s_q = np.array([self._spot_at.get(c, math.nan) for c in names], dtype=np.float64)
        f_quote = np.where(np.isfinite(s_q) & math.isfinite(self.carry), self.carry * s_q, F)
        iv = np.full(len(names), np.nan)
        noise = np.full(len(names), np.nan)
        k_quote = np.full(len(names), np.nan)
        ok = codes == 0
        if ok.any():
            with np.errstate(all="ignore"):
                mp = microprice(bid[ok], ask[ok], qb[ok], qa[ok])
                mpv = microprice_var(bid[ok], ask[ok], qb[ok], qa[ok])
                price = np.where(np.isfinite(mp), mp, 0.5 * (bid[ok] + ask[ok]))
                fq = f_quote[ok]
                iv[ok] = black_implied_vol(price, fq, K[ok], tau, is_call[ok], DF)
                r_impl = -math.log(DF) / tau
                # Black vega on (F, DF): spot F with rate = div_yield = r_impl gives DF*F*phi(d1)*sqrt(tau)
                vg = vega(fq, K[ok], tau, r_impl, iv[ok], r_impl)
                pv = np.maximum(np.where(np.isfinite(mpv), mpv, self.price_var_floor), self.price_var_floor)
                noise[ok] = np.maximum(pv / (vg * vg), self.iv_var_floor)
                k_quote[ok] = np.log(K[ok] / fq)
        for c, code, v, w, x in zip(names, codes.tolist(), iv.tolist(), noise.tolist(), k_quote.tolist()):
            self._cache[c] = (code, v, w, x)
        self.counters["priced"] += len(names)

    @staticmethod
    def _latest_spot(t_q: np.ndarray, s_q: np.ndarray) -> float | None:
        ok = np.isfinite(s_q)
        return float(s_q[ok][np.argmax(t_q[ok])]) if ok.any() else None

    def _forward(self, K, is_call, bid, ask, qb, qa, mp, spot, tau, S_q, t_q, spot_now):
        """Parity pairs (both legs model-free valid) -> ``implied_forward``. When both legs of
        a pair were quoted within ``pair_window_seconds`` with a known spot, the pair is
        taken in spot units (K/S, C/S, P/S): its fitted "forward" is the carry F/S, and the
        chain forward is carry x the spot now (method ``parity_carry``)."""
        with np.errstate(all="ignore"):
            valid = (np.isfinite(mp) & (bid > 0) & (ask >= bid) & (qb >= 0) & (qa >= 0))
        calls = {k: i for i, k in enumerate(K) if is_call[i] and valid[i]}
        pairs = [(calls[K[i]], i) for i in np.nonzero(valid & ~is_call)[0] if K[i] in calls]
        if not pairs:
            ci = pi = np.empty(0, dtype=np.int64)
        else:
            ci, pi = (np.array(v, dtype=np.int64) for v in zip(*pairs))
        w = 1.0 / np.maximum((ask[ci] - bid[ci]) + (ask[pi] - bid[pi]), 1e-4) ** 2
        fallback = dict(spot=spot, rate=self.rate if spot is not None else None,
                        tau=tau if spot is not None else None, div_yield=self.div_yield, n_near=self.n_near)
        S = 0.5 * (S_q[ci] + S_q[pi])
        sync = np.isfinite(S) & (np.abs(t_q[ci] - t_q[pi]) <= self.pair_window_ns)
        if spot_now is not None and sync.sum() >= 3:
            c, p, s_ = ci[sync], pi[sync], S[sync]
            fit = implied_forward(K[c] / s_, mp[c] / s_, mp[p] / s_, w[sync] * s_ * s_, n_near=self.n_near)
            if fit.method == "parity_huber":
                self.carry = fit.forward
                return ForwardFit(fit.forward * spot_now, fit.discount, fit.n_pairs, "parity_carry")
        self.carry = math.nan
        return implied_forward(K[ci], mp[ci], mp[pi], w, **fallback)

    def _full_fit(self, K, x, y, s, F, first: bool, reanchor: bool = True) -> None:
        if reanchor:
            self.forward_ref = F
        level = float(np.median(y))
        if first or self.gp is None:
            ell, sf2 = heuristic_hyperparameters(x, y)
            ell = 0.1 if not (math.isfinite(ell) and ell > 0) else ell
            sf2 = max(sf2, 1e-8) if math.isfinite(sf2) else 1e-4
            self.gp = SmileGP(ell, sf2, mean=level)
        elif reanchor:
            self.gp.mean = level  # the prior level is re-set at re-anchors (and hyper refits)
        self.gp.fit(x, y, s)
        self._gp_keys = [float(k) for k in K]
        self.counters["full_fits"] += 1

    def _sync(self, K, x, y, s, F, reanchor: bool) -> None:
        """Bring the GP to the points (K, x, y, s) by exact incremental operations."""
        if self.gp is None:
            self._full_fit(K, x, y, s, F, first=True)
            return
        if reanchor:
            self._full_fit(K, x, y, s, F, first=False)
            self.counters["forward_refits"] += 1
        else:
            try:
                self._incremental(K, x, y, s)
            except SmileGPError:
                self._full_fit(K, x, y, s, F, first=False, reanchor=False)
                self.counters["fallback_fits"] += 1
        if self.n_refreshes % self.refit_every == 0:
            gp = self.gp
            gp.set_hyperparameters(mean=float(np.median(y)))
            x = np.sort(gp.x)
            ell_min = max(1e-3, self.min_lengthscale_gaps * float(np.diff(x).max())) if x.size > 1 else 1e-3
            try:
                gp.optimise_hyperparameters(optimise_mean=False, lengthscale_bounds=(ell_min, max(10.0, ell_min)))
            except SmileGPError:  # pragma: no cover - optimiser lands on a singular kernel
                pass
            self.counters["hyper_optimisations"] += 1

    def _incremental(self, K, x, y, s) -> None:
        gp = self.gp
        target = {float(k): (float(xx), float(yy), float(ss)) for k, xx, yy, ss in zip(K, x, y, s)}
        keys = self._gp_keys
        gx, gy, gs = gp.x, gp.y, gp.noise
        # a strike whose input moved (re-quoted at another forward, or its other leg now out
        # of the money) leaves and re-enters: remove + insert, both O(n^2)
        gone = [i for i, k in enumerate(keys) if k not in target or target[k][0] != gx[i]]
        have = set(keys) - {keys[i] for i in gone}
        new = [k for k in target if k not in have]
        changed = []
        tol = self.change_tol
        for i, k in enumerate(keys):
            if k not in have:
                continue
            _, yy, ss = target[k]
            dy, ds = yy != gy[i], ss != gs[i]
            if tol > 0.0 and (dy or ds):
                sd = math.sqrt(min(ss, gs[i]))
                dy = abs(yy - gy[i]) > tol * sd
                ds = abs(math.sqrt(ss / gs[i]) - 1.0) > tol
                if not (dy or ds):
                    self.counters["skipped_changes"] += 1
            if dy or ds:
                changed.append((i, k, dy, ds))
        n_ops = len(gone) + len(new) + len(changed)
        if self.max_update_fraction < 1.0 and n_ops > self.max_update_fraction * max(len(keys), 1):
            self._full_fit(K, x, y, s, self.forward_ref, first=False, reanchor=False)
            self.counters["bulk_fits"] += 1
            return
        for i, k, dy, ds in changed:  # changed targets / noise (positions before any removal)
            _, yy, ss = target[k]
            gp.update(i, y=yy if dy else None, noise=ss if ds else None)
            self.counters["updates"] += 1
        for i in reversed(gone):  # removes, last position first
            gp.remove(i)
            del keys[i]
            self.counters["removes"] += 1
        for k in new:  # new strikes, appended
            xx, yy, ss = target[k]
            gp.insert(xx, yy, ss)
            keys.append(k)
            self.counters["inserts"] += 1

    # ------------------------------------------------------------------ output
    def gp_counters(self) -> dict:
        out = dict(self.counters)
        gp = self.gp
        out.update(refreshes=self.n_refreshes,
                   gp_incremental=gp.n_incremental if gp else 0,
                   gp_fits=gp.n_fits if gp else 0,
                   gp_refits=gp.n_refits if gp else 0,
                   gp_refactorisations=gp.n_refactorisations if gp else 0,
                   gp_downdate_fallbacks=gp.n_downdate_fallbacks if gp else 0)
        return out

    def iv_of_k(self, k, forward: float) -> np.ndarray:
        """GP mean smile as a function of ``k = log(K / forward)``."""
        return self.gp.predict_mean(np.asarray(k, dtype=np.float64))

    def _snapshot(self, time_ns, tau, fit, book_counts, Ku, xu, ivu, nu, cu, have_smile) -> ChainSnapshot:
        F, DF = fit.forward, fit.discount
        gp = self.gp
        e = np.empty(0)
        snap = ChainSnapshot(
            time=time_ns, underlying=self.underlying, expiry=self.expiry, tau=tau, forward=F, discount=DF,
            forward_method=fit.method, n_parity_pairs=fit.n_pairs, atm_iv=math.nan,
            n_quotes_used=int(Ku.size) if have_smile else 0, quotes_seen=self.quotes_seen,
            reason_counts=dict(self.reason_counts), n_pending=len(self._arrivals), book_counts=book_counts,
            gp_counters=self.gp_counters(),
            hyperparameters=({"lengthscale": gp.lengthscale, "signal_var": gp.signal_var, "mean": gp.mean}
                             if gp else {}),
            forward_ref=self.forward_ref, smile_k=e, smile_mean=e, smile_sd=e,
            quoted_strike=Ku, quoted_k=xu, quoted_iv=ivu,
            quoted_iv_sd=np.sqrt(nu), quoted_is_call=cu, k_min=math.nan, k_max=math.nan)
        if not have_smile:
            snap.density_error = "too few usable quotes" if math.isfinite(F) else "no forward"
            return snap
        shift = 0.0  # GP inputs are each quote's own log-moneyness: the smile is sticky in moneyness
        k_min, k_max = float(snap.quoted_k.min()), float(snap.quoted_k.max())
        snap.k_min, snap.k_max = k_min, k_max
        snap.smile_k = np.linspace(k_min, k_max, self.n_smile)
        m, v = gp.predict(snap.smile_k + shift)
        snap.smile_mean, snap.smile_sd = m, np.sqrt(v)
        snap.atm_iv = float(gp.predict_mean(np.array([shift]))[0])
        if not self.density:
            return snap
        try:
            r = density_from_smile(lambda k: gp.predict_mean(np.asarray(k, dtype=np.float64) + shift),
                                   F, DF, tau, k_min, k_max, n_grid=self.n_grid, tails=self.tails,
                                   repair=self.repair)
        except (ValueError, ArithmeticError) as exc:
            snap.density_error = f"{type(exc).__name__}: {exc}"
            return snap
        snap.rnd = r
        for name in ("mean", "sd", "skew", "kurtosis", "log_mean", "log_sd", "log_skew", "log_kurtosis",
                     "quantile_levels", "quantiles"):
            setattr(snap, name, getattr(r, name))
        return snap

    def points(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The GP's data in its internal order: (strike, k_ref = log(K/F_ref), iv, iv variance)."""
        if self.gp is None:
            e = np.empty(0)
            return e, e, e, e
        return np.array(self._gp_keys), self.gp.x, self.gp.y, self.gp.noise
