"""Fama-French factors in real time (library layer; model and figures in docs/factors.md).

* :mod:`~elecflow.factors.weights` -- the vendor's factor weights JSON (factor -> ticker ->
  weight) validated into a matrix: :class:`FactorWeights`;
* :mod:`~elecflow.factors.returns` -- factor returns each second as weighted sums of the
  universe's 1 s mid returns: :class:`FactorReturnBuilder`, :func:`factor_returns_batch`;
* :mod:`~elecflow.factors.model` -- interval returns, Dimson betas with a prior from baseline
  days updated intraday, rolling and per-regime systematic / idiosyncratic variance:
  :class:`IntervalAggregator`, :class:`FactorModel` and their batch references;
* :mod:`~elecflow.factors.baseline` -- the regression's sufficient statistics on prior days:
  :class:`BaselineStats`;
* :mod:`~elecflow.factors.replication` -- minimum-norm ETF replication ``w = L'(LL')^{-1} beta``
  and its tracking error.

numpy only: no csp, no I/O.
"""

from elecflow.factors.baseline import BaselineStats, RegimeStats, accumulate, solve_betas
from elecflow.factors.model import (
    ClosedInterval,
    FactorModel,
    FactorModelSettings,
    FactorStep,
    IntervalAggregator,
    dimson_regressors,
    ew_betas_batch,
    interval_end,
    interval_returns_batch,
    regime_of,
    rolling_decomposition_batch,
)
from elecflow.factors.replication import (
    Replication,
    ex_ante_tracking_variance,
    min_norm_replication,
    realized_tracking_variance,
)
from elecflow.factors.returns import SECONDS_PER_YEAR, FactorReturnBuilder, factor_returns_batch
from elecflow.factors.weights import FF_FACTORS, FactorWeights, FactorWeightsError

__all__ = [
    "FF_FACTORS", "FactorWeights", "FactorWeightsError",
    "FactorReturnBuilder", "factor_returns_batch", "SECONDS_PER_YEAR",
    "FactorModelSettings", "IntervalAggregator", "ClosedInterval", "FactorModel", "FactorStep", "regime_of",
    "interval_end", "dimson_regressors", "interval_returns_batch", "ew_betas_batch", "rolling_decomposition_batch",
    "BaselineStats", "RegimeStats", "accumulate", "solve_betas",
    "Replication", "min_norm_replication", "ex_ante_tracking_variance", "realized_tracking_variance",
]
