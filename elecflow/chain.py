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
    """One refresh of one chain. Arrays are float64; ``k`` is ``log(K / forward)`` with the
    forward of this snapshot. ``rnd`` is ``None`` when there were too few usable quotes (or
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
    forward_ref: float  # the forward the GP inputs are anchored to
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
    forward_refit_threshold : re-anchor the GP inputs (a counted full fit) when the forward
        has moved by more than this fraction since the anchor. GP inputs are
        ``log(K / F_ref)``; between re-anchors the current ``k = log(K/F)`` is the exact shift
        ``k_ref - log(F/F_ref)``, so no approximation is involved (docs/chain.md).
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
                 density: bool = True):
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
        self.density = bool(density)
        # book: contract -> [time_ns, strike, is_call, bid, ask, bid_size, ask_size]
        self._book: dict[str, list] = {}
        self._arrivals: list[tuple] = []  # (strike, is_call, bid, ask, bid_size, ask_size) since last refresh
        self._dirty: set[str] = set()  # contracts whose quote changed since they were last priced
        self._cache: dict[str, tuple[int, float, float]] = {}  # contract -> (quote_filter code, iv, iv variance)
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
                 bid_size: float, ask_size: float) -> None:
        """Keep the latest quote of ``contract``. O(1), no numpy: classification (which needs the
        forward) happens at the next refresh, vectorised over the quotes that arrived."""
        rec = (float(strike), bool(is_call), float(bid), float(ask), float(bid_size), float(ask_size))
        self._book[contract] = [int(time_ns), *rec]
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

        # 1. forward and discount from put-call parity (model-free-valid quotes only)
        fit = self._forward(K, is_call, bid, ask, qb, qa, mp, spot, tau)
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
        # 3. implied vols, sticky: a contract's IV and noise are computed when its quote arrives
        # (against this refresh's forward) and kept until the quote changes, so one changed
        # quote changes one GP target. Everything is re-priced at a re-anchor (the forward
        # moved by more than forward_refit_threshold since the GP's anchor).
        reanchor = have_fwd and (self.gp is None or abs(F / self.forward_ref - 1.0) > self.forward_refit_threshold)
        if have_fwd and n:
            names = list(self._book) if reanchor else [c for c in self._dirty if c in self._book]
            if names:
                self._price_contracts(names, F, DF, tau)
            self._dirty.clear()
        codes = np.full(n, -1, dtype=np.int64)  # -1: not classified yet (no forward so far)
        iv = np.full(n, np.nan)
        noise = np.full(n, np.nan)
        for i, c in enumerate(self._book):
            cached = self._cache.get(c)
            if cached is not None:
                codes[i], iv[i], noise[i] = cached
        used = np.zeros(n, dtype=bool)
        if have_fwd and n:
            ok = codes == 0
            otm = ok & (is_call == (K >= F))  # the out-of-the-money leg w.r.t. the current forward
            used = otm & np.isfinite(iv) & (iv > 0) & np.isfinite(noise)
            book_counts["used"] = int(used.sum())
            book_counts["itm_side"] = int((ok & ~otm).sum())
            book_counts["no_iv"] = int((otm & ~used).sum())
            for c in range(1, len(QUOTE_REASONS)):
                book_counts[QUOTE_REASONS[c]] = int((codes == c).sum())

        # 4. the GP, kept in sync incrementally
        Ku, ivu, nu, cu = K[used], iv[used], noise[used], is_call[used]
        order = np.argsort(Ku, kind="stable")
        Ku, ivu, nu, cu = Ku[order], ivu[order], nu[order], cu[order]
        have_smile = Ku.size >= self.min_points
        if have_smile:
            self._sync(Ku, ivu, nu, F, reanchor)

        snap = self._snapshot(int(time_ns), tau, fit, book_counts, Ku, ivu, nu, cu, have_smile)
        snap.latency_s = _time.perf_counter() - t0
        return snap

    def _price_contracts(self, names, F, DF, tau) -> None:
        """Classify ``names`` (quote_filter code) and, for valid quotes, their implied vol and
        its variance sigma_P^2 / vega^2, against (F, DF, tau); both legs of a strike are
        priced, the sync uses the leg out of the money at its time."""
        a = np.array([self._book[c][1:] for c in names], dtype=np.float64).reshape(len(names), 6)
        K, is_call = a[:, 0], a[:, 1] > 0.5
        bid, ask, qb, qa = a[:, 2], a[:, 3], a[:, 4], a[:, 5]
        codes = quote_filter(bid, ask, F, DF, K, is_call, qb, qa)
        iv = np.full(len(names), np.nan)
        noise = np.full(len(names), np.nan)
        ok = codes == 0
        if ok.any():
            with np.errstate(all="ignore"):
                mp = microprice(bid[ok], ask[ok], qb[ok], qa[ok])
                mpv = microprice_var(bid[ok], ask[ok], qb[ok], qa[ok])
                price = np.where(np.isfinite(mp), mp, 0.5 * (bid[ok] + ask[ok]))
                iv[ok] = black_implied_vol(price, F, K[ok], tau, is_call[ok], DF)
                r_impl = -math.log(DF) / tau
                # Black vega on (F, DF): spot F with rate = div_yield = r_impl gives DF*F*phi(d1)*sqrt(tau)
                vg = vega(F, K[ok], tau, r_impl, iv[ok], r_impl)
                pv = np.maximum(np.where(np.isfinite(mpv), mpv, self.price_var_floor), self.price_var_floor)
                noise[ok] = np.maximum(pv / (vg * vg), self.iv_var_floor)
        for c, code, v, w in zip(names, codes.tolist(), iv.tolist(), noise.tolist()):
            self._cache[c] = (code, v, w)
        self.counters["priced"] += len(names)

    def _forward(self, K, is_call, bid, ask, qb, qa, mp, spot, tau):
        with np.errstate(all="ignore"):
            valid = (np.isfinite(mp) & (bid > 0) & (ask >= bid) & (qb >= 0) & (qa >= 0))
        calls = {k: i for i, k in enumerate(K) if is_call[i] and valid[i]}
        ks, c_mid, p_mid, w = [], [], [], []
        for i in np.nonzero(valid & ~is_call)[0]:
            j = calls.get(K[i])
            if j is not None:
                ks.append(K[i])
                c_mid.append(mp[j])
                p_mid.append(mp[i])
                w.append(1.0 / max((ask[j] - bid[j]) + (ask[i] - bid[i]), 1e-4) ** 2)
        return implied_forward(np.array(ks), np.array(c_mid), np.array(p_mid), np.array(w), spot=spot,
                               rate=self.rate if spot is not None else None,
                               tau=tau if spot is not None else None, div_yield=self.div_yield,
                               n_near=self.n_near)

    def _full_fit(self, K, y, s, F, first: bool, reanchor: bool = True) -> None:
        if reanchor:
            self.forward_ref = F
        x = np.log(K / self.forward_ref)
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

    def _sync(self, K, y, s, F, reanchor: bool) -> None:
        """Bring the GP to the points (K, y, s) by exact incremental operations."""
        if self.gp is None:
            self._full_fit(K, y, s, F, first=True)
            return
        if reanchor:
            self._full_fit(K, y, s, F, first=False)
            self.counters["forward_refits"] += 1
        else:
            try:
                self._incremental(K, y, s, F)
            except SmileGPError:
                self._full_fit(K, y, s, F, first=False, reanchor=False)
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

    def _incremental(self, K, y, s, F) -> None:
        gp = self.gp
        target = {float(k): (float(yy), float(ss)) for k, yy, ss in zip(K, y, s)}
        keys = self._gp_keys
        gone = [i for i, k in enumerate(keys) if k not in target]
        have = set(keys)
        new = [k for k in target if k not in have]
        gy, gs = gp.y, gp.noise
        changed = []
        tol = self.change_tol
        for i, k in enumerate(keys):
            if k not in target:
                continue
            yy, ss = target[k]
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
            self._full_fit(K, y, s, self.forward_ref, first=False, reanchor=False)
            self.counters["bulk_fits"] += 1
            return
        for i, k, dy, ds in changed:  # changed targets / noise (positions before any removal)
            yy, ss = target[k]
            gp.update(i, y=yy if dy else None, noise=ss if ds else None)
            self.counters["updates"] += 1
        for i in reversed(gone):  # removes, last position first
            gp.remove(i)
            del keys[i]
            self.counters["removes"] += 1
        for k in new:  # new strikes, appended
            yy, ss = target[k]
            gp.insert(math.log(k / self.forward_ref), yy, ss)
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
        return self.gp.predict_mean(np.asarray(k, dtype=np.float64) + math.log(forward / self.forward_ref))

    def _snapshot(self, time_ns, tau, fit, book_counts, Ku, ivu, nu, cu, have_smile) -> ChainSnapshot:
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
            quoted_strike=Ku, quoted_k=np.log(Ku / F) if Ku.size else e, quoted_iv=ivu,
            quoted_iv_sd=np.sqrt(nu), quoted_is_call=cu, k_min=math.nan, k_max=math.nan)
        if not have_smile:
            snap.density_error = "too few usable quotes" if math.isfinite(F) else "no forward"
            return snap
        shift = math.log(F / self.forward_ref)
        k_min, k_max = float(snap.quoted_k[0]), float(snap.quoted_k[-1])
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
