"""The deterministic synthetic Election Day 2024 with ground truth (library layer, no I/O).

* :mod:`elecflow.synth.config` -- :class:`SyntheticDayConfig`, every knob with a default;
* :mod:`elecflow.synth.probability` -- the true probability martingale (information clock);
* :mod:`elecflow.synth.equities` -- efficient prices, quotes, signed trades, 1 s NBBO;
* :mod:`elecflow.synth.options` -- two-lognormal mixture pricing and option chains;
* :mod:`elecflow.synth.kalshi` -- DJT / KH fills;
* :mod:`elecflow.synth.defects` -- injected bad rows with their reason codes;
* :mod:`elecflow.synth.normal` -- normal (pre-election) days: macro and stock news in place
  of the election signal (``SyntheticDayConfig(day_kind="normal", trading_date=...)``);
* :mod:`elecflow.synth.factor_universe` -- the broad Fama-French universe (a few hundred
  stocks with characteristics, factor weights, 1 s NBBO) tied to the day's factor paths;
* :mod:`elecflow.synth.day` -- :func:`generate_day`, the whole day in memory.

The writer (vendor formats, ground-truth files, manifest) is
:func:`elecflow.adapters.synthetic.write_synthetic_day`; many normal days:
:func:`elecflow.adapters.synthetic.write_training_days`. See docs/synthetic-day.md.
"""

from elecflow.synth.config import SyntheticDayConfig
from elecflow.synth.day import SyntheticDay, generate_day

__all__ = ["SyntheticDayConfig", "SyntheticDay", "generate_day"]
