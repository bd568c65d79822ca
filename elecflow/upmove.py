"""Forward up-move classifier on the per-minute microstructure bars (issue 3).

Pure numerics (numpy/scipy): no I/O, no csp. See docs/upmove.md.

For bar ``t`` of a ticker (a row of :data:`elecflow.microstructure.BAR_COLUMNS`) the model
gives ``P(log_mid[t + 1 min] > log_mid[t])``: the probability that the **next** minute's
time-weighted mid of the same ticker is above this minute's.

Features (:data:`FEATURES`, raw values from :func:`raw_features` / :func:`row_features`)
    ``iso_flow_intensity``  signed ISO dollar flow / dollar volume (the bar's column)
    ``flow_intensity``      ``total_flow / (total_volume * exp(log_mid))``: all signed dollar
                            flow over dollar volume valued at the mid, clipped to [-1, 1]
    ``pct_trades_iso``      fraction of counted trades that are ISO
    ``pct_volume_iso``      fraction of shares that are ISO
    ``avg_rsprd``           time-weighted relative spread
    ``log_quote_updates``   ``log1p(quote_updates)``
    ``lag_ret``             ``asinh(r / 1 bp)`` with ``r = log_mid[t] - log_mid[t - 1 min]``
                            of the same ticker (the 1-minute log-mid return that just
                            happened); asinh keeps the sign, is linear near 0 and only
                            logarithmic in the tails, so news jumps do not dominate the fit
    ``lag_ret_spreads``     ``asinh(r / avg_rsprd)``: the same return in units of the bar's
                            relative spread (unit-free across tickers)

Undefined values (a minute without trades, no previous minute, no quote yet) are NaN in
the raw features and become 0 after standardisation (= the training mean), except that the
trade features of a minute without trades are 0 raw (no flow, no ISO share).

Label (:func:`forward_labels`)
    ``y[t] = 1`` if ``log_mid[t+1] - log_mid[t] > 0``, ``0`` if ``< 0``, where bar ``t+1`` is
    the same ticker's bar with ``bucket = bucket[t] + 60 s``; undefined (masked out) when that
    bar is missing, either log_mid is NaN, or the change is exactly 0.

Model
    :class:`UpMoveModel`: standardised features, logistic regression with an L2 penalty
    ``l2/2 * ||coef||^2`` on the coefficients (not the intercept), fitted by Newton / IRLS
    (:func:`fit_logistic`). Stored as JSON of plain numbers (:meth:`UpMoveModel.to_json`),
    never pickled. :class:`UpMoveScorer` is the streaming counterpart of
    :meth:`UpMoveModel.predict_bars` (identical numbers, bar by bar).

Evaluation: :func:`auc` (rank based, ties count 1/2), :func:`log_loss`, and the naive
baselines :func:`naive_scores` (the previous minute's return sign, momentum; a constant
base rate has AUC 0.5 by construction).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit
from scipy.stats import rankdata

__all__ = [
    "FEATURES",
    "FORMAT",
    "NS_PER_MINUTE",
    "UpMoveModel",
    "UpMoveScorer",
    "auc",
    "bar_columns",
    "fit_logistic",
    "forward_labels",
    "log_loss",
    "naive_scores",
    "raw_features",
    "row_features",
]

FORMAT = "elecflow.upmove/1"
NS_PER_MINUTE = 60_000_000_000
_BP = 1e4

FEATURES = (
    "iso_flow_intensity",
    "flow_intensity",
    "pct_trades_iso",
    "pct_volume_iso",
    "avg_rsprd",
    "log_quote_updates",
    "lag_ret",
    "lag_ret_spreads",
)

#: bar columns the features and labels read
_NEEDED = ("ticker", "bucket", "log_mid", "quote_updates", "avg_rsprd", "pct_trades_iso", "pct_volume_iso",
           "num_trades", "total_volume", "total_flow", "iso_flow_intensity")

_EPOCH = dt.datetime(1970, 1, 1)


# --------------------------------------------------------------------------------------------
# bars in, columns out
# --------------------------------------------------------------------------------------------


def _bucket_ns(values) -> np.ndarray:
    a = np.asarray(values)
    if a.dtype.kind == "M":
        return a.astype("datetime64[ns]").view(np.int64)
    if a.dtype.kind == "O":  # datetimes
        return np.array([_dt_ns(v) for v in a], dtype=np.int64)
    return a.astype(np.int64)


def _dt_ns(v) -> int:
    if isinstance(v, dt.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(dt.timezone.utc).replace(tzinfo=None)
        d = v - _EPOCH
        return (d.days * 86_400 + d.seconds) * 1_000_000_000 + d.microseconds * 1000
    return int(v)


def bar_columns(bars) -> dict[str, np.ndarray]:
    """The columns the model needs as numpy arrays (``bucket`` as int64 epoch ns).

    ``bars``: a dict of arrays (e.g. :func:`elecflow.microstructure.minute_bars`), a pandas
    DataFrame, or a pyarrow Table (e.g. ``pq.read_table(out / "bars_1m")``).
    """
    out = {}
    for name in _NEEDED:
        if hasattr(bars, "column_names"):  # pyarrow Table
            col = bars.column(name)
            col = col.to_numpy() if name != "ticker" else np.asarray(col.to_pylist(), dtype=object)
        else:
            col = bars[name]
            col = col.to_numpy() if hasattr(col, "to_numpy") else np.asarray(col)
        if name == "bucket":
            col = _bucket_ns(col)
        elif name == "ticker":
            col = np.asarray(col, dtype=object)
        else:
            col = np.asarray(col, dtype=np.float64)
        out[name] = col
    return out


def _order(c) -> np.ndarray:
    """Row order sorted by (ticker, bucket)."""
    _, codes = np.unique(c["ticker"].astype(str), return_inverse=True)
    return np.lexsort((c["bucket"], codes.reshape(-1)))


def _neighbour(c, step: int) -> np.ndarray:
    """Index of the same ticker's bar at bucket + step minutes, -1 where there is none."""
    n = c["bucket"].shape[0]
    idx = np.full(n, -1, np.int64)
    if n == 0:
        return idx
    o = _order(c)
    tick = c["ticker"][o].astype(str)
    b = c["bucket"][o]
    if step > 0:
        ok = (tick[1:] == tick[:-1]) & (b[1:] - b[:-1] == step * NS_PER_MINUTE)
        idx[o[:-1][ok]] = o[1:][ok]
    else:
        ok = (tick[1:] == tick[:-1]) & (b[1:] - b[:-1] == -step * NS_PER_MINUTE)
        idx[o[1:][ok]] = o[:-1][ok]
    dup = (tick[1:] == tick[:-1]) & (b[1:] == b[:-1])
    if dup.any():
        raise ValueError("bars contain two rows of the same (ticker, bucket)")
    return idx


# --------------------------------------------------------------------------------------------
# features and labels
# --------------------------------------------------------------------------------------------


def _features_core(log_mid, quote_updates, avg_rsprd, pct_trades_iso, pct_volume_iso, num_trades, total_volume,
                   total_flow, iso_flow_intensity, prev_log_mid):
    """Raw features from aligned float arrays (vectorised; scalars work too via np.asarray)."""
    has_trades = num_trades > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        dollar_volume = total_volume * np.exp(log_mid)
        flow = np.where(dollar_volume > 0, np.clip(total_flow / dollar_volume, -1.0, 1.0), 0.0)
        flow = np.where(np.isfinite(flow), flow, np.nan)
        iso = np.where(has_trades, np.nan_to_num(iso_flow_intensity, nan=0.0), 0.0)
        pti = np.where(has_trades, np.nan_to_num(pct_trades_iso, nan=0.0), 0.0)
        pvi = np.where(has_trades, np.nan_to_num(pct_volume_iso, nan=0.0), 0.0)
        lag = np.arcsinh((log_mid - prev_log_mid) * _BP)
        lag_spr = np.where(avg_rsprd > 0, np.arcsinh((log_mid - prev_log_mid) / avg_rsprd), np.nan)
        lqu = np.log1p(np.maximum(quote_updates, 0.0))
    return np.stack(np.broadcast_arrays(iso, flow, pti, pvi, avg_rsprd, lqu, lag, lag_spr), axis=-1).astype(np.float64)


def raw_features(bars) -> np.ndarray:
    """Raw (unstandardised) feature matrix, one row per bar in the input order, columns
    :data:`FEATURES`. ``lag_ret`` uses the same ticker's bar one minute earlier (NaN when
    there is none)."""
    c = bar_columns(bars)
    prev = _neighbour(c, -1)
    lm = c["log_mid"]
    prev_lm = np.where(prev >= 0, lm[np.maximum(prev, 0)], np.nan)
    return _features_core(lm, c["quote_updates"], c["avg_rsprd"], c["pct_trades_iso"], c["pct_volume_iso"],
                          c["num_trades"], c["total_volume"], c["total_flow"], c["iso_flow_intensity"], prev_lm)


def _get(row, name):
    return row[name] if isinstance(row, Mapping) else getattr(row, name)


def row_features(row, prev_log_mid: float = math.nan) -> np.ndarray:
    """Raw features of one bar (a dict keyed by bar columns or a ``MinuteBar`` struct), given
    the log_mid of the same ticker's bar one minute earlier (NaN if none)."""
    vals = [float(_get(row, k)) for k in ("log_mid", "quote_updates", "avg_rsprd", "pct_trades_iso", "pct_volume_iso",
                                          "num_trades", "total_volume", "total_flow", "iso_flow_intensity")]
    a = [np.array([v]) for v in vals]
    return _features_core(*a, np.array([float(prev_log_mid)]))[0]


def forward_labels(bars) -> tuple[np.ndarray, np.ndarray]:
    """``(y, defined)`` per bar in the input order: ``y = 1`` if the same ticker's log_mid one
    minute later is higher, 0 if lower; ``defined`` is False where the next-minute bar is
    missing, a log_mid is NaN, or the change is exactly zero (y is 0 there)."""
    c = bar_columns(bars)
    nxt = _neighbour(c, +1)
    lm = c["log_mid"]
    nxt_lm = np.where(nxt >= 0, lm[np.maximum(nxt, 0)], np.nan)
    with np.errstate(invalid="ignore"):
        d = nxt_lm - lm
        defined = np.isfinite(d) & (d != 0)
        y = (defined & (d > 0)).astype(np.int8)
    return y, defined


def naive_scores(bars) -> dict[str, np.ndarray]:
    """Naive baseline scores per bar: ``lag_sign`` = sign of the previous minute's log-mid
    return (momentum; 0 when undefined), ``constant`` = 0 everywhere (a base rate: AUC 0.5)."""
    lag = raw_features(bars)[:, FEATURES.index("lag_ret")]
    return {"lag_sign": np.nan_to_num(np.sign(lag), nan=0.0), "constant": np.zeros(lag.shape[0])}


# --------------------------------------------------------------------------------------------
# logistic regression
# --------------------------------------------------------------------------------------------


def fit_logistic(X, y, l2: float = 0.0, tol: float = 1e-10, max_iter: int = 100) -> tuple[float, np.ndarray, int]:
    """Penalised logistic regression by Newton's method (IRLS).

    Maximises ``sum_i [y_i eta_i - log(1 + e^eta_i)] - l2/2 * ||coef||^2`` with
    ``eta = intercept + X @ coef`` (the intercept is not penalised). Stops when the largest
    Newton step is below ``tol`` (relative to 1 + |parameter|); step halving keeps the
    objective non-decreasing. Returns ``(intercept, coef, iterations)``; raises
    ``RuntimeError`` without convergence (e.g. separable data with ``l2 = 0``).
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise ValueError("X must be (n, k) and y (n,)")
    if not (np.all(np.isfinite(X)) and np.all((y == 0) | (y == 1))):
        raise ValueError("X must be finite and y in {0, 1}")
    n, k = X.shape
    Z = np.hstack([np.ones((n, 1)), X])
    pen = np.full(k + 1, float(l2))
    pen[0] = 0.0
    beta = np.zeros(k + 1)
    p0 = min(max(y.mean(), 1e-6), 1 - 1e-6)
    beta[0] = math.log(p0 / (1 - p0))

    def objective(b):
        eta = Z @ b
        return float(np.sum(y * eta - np.logaddexp(0.0, eta)) - 0.5 * np.sum(pen * b * b))

    obj = objective(beta)
    for it in range(1, max_iter + 1):
        p = expit(Z @ beta)
        w = p * (1 - p)
        grad = Z.T @ (y - p) - pen * beta
        H = (Z * w[:, None]).T @ Z + np.diag(pen)
        step = np.linalg.solve(H, grad)
        t = 1.0
        for _ in range(50):
            cand = beta + t * step
            new = objective(cand)
            if new >= obj - 1e-12 * abs(obj):
                break
            t *= 0.5
        beta, obj = cand, new
        if np.max(np.abs(t * step) / (1.0 + np.abs(beta))) < tol:
            return float(beta[0]), beta[1:].copy(), it
    raise RuntimeError(f"logistic fit did not converge in {max_iter} iterations")


def _finite(x) -> float:
    x = float(x)
    if not math.isfinite(x):
        raise ValueError("model numbers must be finite")
    return x


@dataclass(frozen=True)
class UpMoveModel:
    """Standardise -> logistic. ``predict_proba(X)`` takes the raw feature matrix."""

    features: tuple[str, ...]
    means: tuple[float, ...]
    sds: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    l2: float = 0.0
    metadata: dict = field(default_factory=dict, compare=True)

    def __post_init__(self):
        k = len(self.features)
        if not (len(self.means) == len(self.sds) == len(self.coef) == k):
            raise ValueError("features, means, sds and coef must have the same length")
        if any(s <= 0 for s in self.sds):
            raise ValueError("sds must be positive")

    @classmethod
    def fit(cls, X, y, features=FEATURES, l2: float = 1.0, metadata: dict | None = None) -> "UpMoveModel":
        """Fit on raw features ``X`` (NaN allowed: it becomes the mean) and labels ``y``."""
        X = np.asarray(X, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            means = np.nanmean(X, axis=0)
            sds = np.nanstd(X, axis=0)
        means = np.nan_to_num(means, nan=0.0)
        sds = np.where(np.isfinite(sds) & (sds > 0), sds, 1.0)
        Z = np.nan_to_num((X - means) / sds, nan=0.0)
        b0, b, it = fit_logistic(Z, y, l2=l2)
        meta = dict(metadata or {})
        meta.setdefault("fit_iterations", it)
        return cls(tuple(features), tuple(map(float, means)), tuple(map(float, sds)), tuple(map(float, b)), float(b0),
                   float(l2), meta)

    def standardize(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        Z = (X - np.asarray(self.means)) / np.asarray(self.sds)
        return np.where(np.isfinite(Z), Z, 0.0)

    def decision_function(self, X) -> np.ndarray:
        return self.intercept + self.standardize(X) @ np.asarray(self.coef)

    def predict_proba(self, X) -> np.ndarray:
        """P(next minute's log_mid is up) for each row of the raw feature matrix ``X``."""
        return expit(self.decision_function(X))

    def predict_bars(self, bars) -> np.ndarray:
        """P(up) for each bar of a bars table (input order); batch twin of UpMoveScorer."""
        return self.predict_proba(raw_features(bars))

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "features": list(self.features),
            "means": [_finite(v) for v in self.means],
            "sds": [_finite(v) for v in self.sds],
            "coef": [_finite(v) for v in self.coef],
            "intercept": _finite(self.intercept),
            "l2": _finite(self.l2),
            "metadata": self.metadata,
        }

    def to_json(self, indent: int | None = 1) -> str:
        """Plain-number JSON (floats written with repr: the round trip is exact)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, d: Mapping) -> "UpMoveModel":
        if d.get("format") != FORMAT:
            raise ValueError(f"not an {FORMAT} model (format={d.get('format')!r})")
        return cls(tuple(str(f) for f in d["features"]), tuple(_finite(v) for v in d["means"]),
                   tuple(_finite(v) for v in d["sds"]), tuple(_finite(v) for v in d["coef"]),
                   _finite(d["intercept"]), _finite(d.get("l2", 0.0)), dict(d.get("metadata", {})))

    @classmethod
    def from_json(cls, text: str) -> "UpMoveModel":
        return cls.from_dict(json.loads(text))


class UpMoveScorer:
    """Streaming scorer: ``on_bar(bar) -> p_up`` per bar, keeping each ticker's previous
    (bucket, log_mid) for the lagged return. Bars of one ticker must come in increasing
    bucket order (``ValueError`` otherwise). Equals :meth:`UpMoveModel.predict_bars`."""

    def __init__(self, model: UpMoveModel):
        if tuple(model.features) != FEATURES:
            raise ValueError(f"model features {model.features} differ from {FEATURES}")
        self.model = model
        self._means = np.asarray(model.means)
        self._sds = np.asarray(model.sds)
        self._coef = np.asarray(model.coef)
        self._prev: dict[str, tuple[int, float]] = {}

    def features(self, bar) -> np.ndarray:
        """Raw features of ``bar`` and remember it as the ticker's latest bar."""
        ticker = str(_get(bar, "ticker"))
        bucket = _dt_ns(_get(bar, "bucket"))
        prev = self._prev.get(ticker)
        if prev is not None and bucket <= prev[0]:
            raise ValueError(f"{ticker}: bar at {bucket} not after the previous one at {prev[0]}")
        prev_lm = prev[1] if prev is not None and bucket - prev[0] == NS_PER_MINUTE else math.nan
        x = row_features(bar, prev_lm)
        self._prev[ticker] = (bucket, float(_get(bar, "log_mid")))
        return x

    def on_bar(self, bar) -> float:
        x = self.features(bar)
        z = (x - self._means) / self._sds
        z = np.where(np.isfinite(z), z, 0.0)
        return float(expit(self.model.intercept + z @ self._coef))


# --------------------------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------------------------


def auc(y, score) -> float:
    """Area under the ROC curve = P(score of a random positive > a random negative), ties
    counted 1/2 (Mann-Whitney with average ranks). NaN if only one class is present."""
    y = np.asarray(y).astype(bool)
    s = np.asarray(score, dtype=np.float64)
    if y.shape != s.shape:
        raise ValueError("y and score must have the same shape")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite")
    n1 = int(y.sum())
    n0 = y.size - n1
    if n1 == 0 or n0 == 0:
        return math.nan
    r = rankdata(s)
    return float((r[y].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def log_loss(y, p, eps: float = 1e-15) -> float:
    """Mean negative log likelihood of labels ``y`` under probabilities ``p``."""
    y = np.asarray(y, dtype=np.float64)
    p = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))
