"""csp node publishing the up-move probability per ticker per minute (docs/upmove.md).

The numerics live in :mod:`elecflow.upmove`; the node owns one
:class:`~elecflow.upmove.UpMoveScorer` in ``csp.state`` and turns each minute's list of
``MinuteBar`` structs into a list of :class:`UpMoveScore` structs (same order).
"""


from importlib import resources

import csp
from csp import ts

from elecflow.schema import MinuteBar, UpMoveScore
from elecflow.upmove import UpMoveModel, UpMoveScorer

DEFAULT_MODEL_RESOURCE = "data/upmove_model.json"


def load_default_model() -> UpMoveModel:
    """The committed model (``elecflow/data/upmove_model.json``, package data)."""
    text = resources.files("elecflow").joinpath(DEFAULT_MODEL_RESOURCE).read_text(encoding="utf-8")
    return UpMoveModel.from_json(text)


@csp.node(memoize=False)  # the model (a dataclass holding a dict) is not hashable
def upmove_probabilities(bars: ts[[MinuteBar]], model: object) -> ts[[UpMoveScore]]:
    """One :class:`UpMoveScore` per bar of each tick of ``bars`` (a minute's bars)."""
    with csp.state():
        s_scorer = UpMoveScorer(model)
    if csp.ticked(bars):
        out = [UpMoveScore(ticker=b.ticker, bucket=b.bucket, p_up=s_scorer.on_bar(b)) for b in bars]
        if out:
            return out


def upmove_streams(bars: ts[[MinuteBar]], model: UpMoveModel | None = None) -> dict:
    """Output streams by name, for the replay graph: ``{"upmove_1m": ...}``."""
    return {"upmove_1m": upmove_probabilities(bars, model if model is not None else load_default_model())}
