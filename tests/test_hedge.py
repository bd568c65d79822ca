"""Election sensitivities and the Kalshi hedge (elecflow.hedge).

References: central finite differences in ``p`` of the synthetic generator's own mixture
pricer (``elecflow.synth.options.mixture_price``, state densities held fixed), of implied
vols recomputed with ``elecflow.options.black_implied_vol``, and of a whole book's value.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from pathlib import Path

import numpy as np
import pytest

from elecflow import universe as U
from elecflow.hedge import (
    ElectionStates,
    PositionFileError,
    atm_iv,
    atm_iv_sensitivity,
    election_exposure,
    forward_sensitivity,
    option_iv_sensitivity,
    option_price,
    option_sensitivity,
    read_positions,
    spot_sensitivity,
)
from elecflow.options import black_implied_vol
from elecflow.synth import options as so

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "positions.csv"
EXPIRY = dt.date(2024, 11, 15)
TAU, RATE = 0.028, 0.0483
H = 1e-5


def truth_states(symbol: str, p: float = 0.58) -> ElectionStates:
    """The generator's states for ``symbol`` at its reference price (expiry 2024-11-15)."""
    inst = U.get(symbol)
    F = inst.ref_price * math.exp((RATE - inst.dividend_yield) * TAU)
    m_t, m_h = so.state_means(F, p, U.effective_election_loadings()[symbol])
    s_t, s_h = so.state_vols(symbol)
    return ElectionStates(symbol, p, float(m_t), s_t * math.sqrt(TAU), float(m_h), s_h * math.sqrt(TAU),
                          math.exp(-RATE * TAU), TAU, EXPIRY, spot_per_forward=inst.ref_price / F)


def _at(states, p):
    return dataclasses.replace(states, probability=p)


def _generator_price(st: ElectionStates, K, is_call, p):
    """The generator's pricer at probability p with the states held fixed (annual vols)."""
    return so.mixture_price(K, st.tau, st.discount, p, st.mean_trump, st.sdlog_trump / math.sqrt(st.tau),
                            st.mean_harris, st.sdlog_harris / math.sqrt(st.tau), is_call)


@pytest.mark.parametrize("symbol", ["SPY", "QQQ", "IWM", "TLT", "DJT", "TSLA"])
def test_option_sensitivities_match_differences_of_mixture_prices(symbol):
    st = truth_states(symbol)
    K = so.strike_grid(symbol, U.get(symbol).ref_price, 0.2)
    for is_call in (True, False):
        fd = (_generator_price(st, K, is_call, st.probability + H)
              - _generator_price(st, K, is_call, st.probability - H)) / (2 * H)
        np.testing.assert_allclose(option_sensitivity(st, K, is_call), fd, rtol=1e-6, atol=1e-9 * st.forward)
        np.testing.assert_allclose(option_price(st, K, is_call), _generator_price(st, K, is_call, st.probability),
                                   rtol=1e-10, atol=1e-12)
    # the forward and one share
    assert forward_sensitivity(st) == pytest.approx(
        (_at(st, st.probability + H).forward - _at(st, st.probability - H).forward) / (2 * H), rel=1e-8)
    assert spot_sensitivity(st) == pytest.approx(st.spot_per_forward * forward_sensitivity(st))
    assert np.sign(forward_sensitivity(st)) == np.sign(U.effective_election_loadings()[symbol])


@pytest.mark.parametrize("symbol", ["SPY", "TLT", "TSLA"])
def test_vol_sensitivities_match_differences_of_implied_vols(symbol):
    st = truth_states(symbol)
    F = st.forward
    K = F * np.array([0.93, 0.98, 1.0, 1.02, 1.08])
    c = K >= F

    def iv_at(p):
        s = _at(st, p)
        return black_implied_vol(option_price(s, K, c), s.forward, K, s.tau, c, s.discount)

    fd = (iv_at(st.probability + H) - iv_at(st.probability - H)) / (2 * H)
    np.testing.assert_allclose(option_iv_sensitivity(st, K, c), fd, rtol=1e-5, atol=1e-8)
    fd_atm = (atm_iv(_at(st, st.probability + H)) - atm_iv(_at(st, st.probability - H))) / (2 * H)
    assert atm_iv_sensitivity(st) == pytest.approx(fd_atm, rel=1e-5, abs=1e-9)


def test_example_position_file_and_a_neutral_hedge():
    """The book plus the reported number of Kalshi contracts has zero value change in p."""
    positions = read_positions(EXAMPLE)
    assert {p.underlying for p in positions} == {"SPY", "QQQ", "IWM", "TLT", "DJT", "TSLA", "KALSHI"}
    states = {s: truth_states(s) for s in ("SPY", "QQQ", "IWM", "TLT", "DJT", "TSLA")}
    report = election_exposure(positions, states)
    assert report.kalshi_contracts == pytest.approx(-report.total_delta)
    assert report.kalshi_contracts_rounded == round(-report.total_delta)
    assert report.total_delta == pytest.approx(sum(report.by_underlying.values()))
    assert report.by_underlying["KALSHI"] == 2500.0

    def book_value(p):
        moved = {k: _at(v, p) for k, v in states.items()}
        r = election_exposure(positions, moved)
        return sum(x.position.quantity * x.position.multiplier * x.value for x in r.lines)

    p0 = 0.58
    fd = (book_value(p0 + H) - book_value(p0 - H)) / (2 * H)
    assert report.total_delta == pytest.approx(fd, rel=1e-6)
    # hedged: book + n contracts (each worth p) does not move with p
    assert fd + report.kalshi_contracts == pytest.approx(0.0, abs=1e-6 * abs(fd))
    # one SPY call line, by hand
    spy_call = next(x for x in report.lines if x.position.underlying == "SPY" and x.position.right == "C")
    st = states["SPY"]
    assert spy_call.dollar_delta == pytest.approx(
        50 * 100 * st.discount * (so.black76(st.mean_trump, 580.0, 1.0, st.sdlog_trump, 1.0, True)
                                  - so.black76(st.mean_harris, 580.0, 1.0, st.sdlog_harris, 1.0, True)))


def test_positions_parse_defaults_and_kinds(tmp_path):
    f = tmp_path / "book.csv"
    f.write_text("# a comment\n\nUnderlying,Quantity,Right,Strike,Expiry\nspy,10,call,570,2024-11-15\n"
                 "SPY,-5,p,560.5,2024-11-15\nQQQ,100,,,\nkalshi,-40,,,\n")
    pos = read_positions(f)
    assert [p.kind for p in pos] == ["option", "option", "underlying", "kalshi"]
    assert [p.line for p in pos] == [4, 5, 6, 7]
    assert pos[0].right == "C" and pos[0].multiplier == 100.0 and pos[0].expiry == EXPIRY
    assert pos[1].right == "P" and pos[1].strike == 560.5 and pos[1].quantity == -5
    assert pos[2].multiplier == 1.0 and pos[3].underlying == "KALSHI"


@pytest.mark.parametrize("text, where", [
    ("underlying,expiry,strike,right,qty\nSPY,,,,1\n", ":1: column 'qty': unknown column"),
    ("underlying,expiry,strike,right\nSPY,,,\n", ":1: column 'quantity': required column missing"),
    ("underlying,expiry,strike,right,quantity\nSPY,2024-11-15,570,X,1\n", ":2: column 'right'"),
    ("underlying,expiry,strike,right,quantity\nSPY,15/11/2024,570,C,1\n", ":2: column 'expiry': not a YYYY-MM-DD"),
    ("underlying,expiry,strike,right,quantity\nSPY,2024-11-15,,C,1\n", ":2: column 'strike': an option needs"),
    ("underlying,expiry,strike,right,quantity\nSPY,2024-11-15,-5,C,1\n", ":2: column 'strike': must be a positive"),
    ("underlying,expiry,strike,right,quantity\nSPY,,,C,1\n", ":2: column 'expiry': an option needs"),
    ("underlying,expiry,strike,right,quantity\n\nSPY,,,,ten\n", ":3: column 'quantity': not a number"),
    ("underlying,expiry,strike,right,quantity\nSPY,2024-11-15,,,1\n", ":2: column 'expiry': must be empty"),
    ("underlying,expiry,strike,right,quantity,multiplier\nSPY,,,,1,0\n", ":2: column 'multiplier'"),
    ("underlying,expiry,strike,right,quantity\n,,,,1\n", ":2: column 'underlying': empty"),
    ("underlying,expiry,strike,right,quantity\nSPY,,,,1,9\n", ":2: 6 cells for 5 columns"),
    ("underlying,expiry,strike,right,quantity\nKALSHI,2024-11-15,1,C,1\n", ":2: column 'right': Kalshi"),
    ("# only a comment\n", "empty position file"),
])
def test_position_file_errors_name_file_line_and_column(tmp_path, text, where):
    f = tmp_path / "bad.csv"
    f.write_text(text)
    with pytest.raises(PositionFileError) as exc:
        read_positions(f)
    assert str(f) in str(exc.value) and where in str(exc.value)


def test_missing_file_and_missing_states(tmp_path):
    with pytest.raises(PositionFileError, match="cannot read"):
        read_positions(tmp_path / "nope.csv")
    f = tmp_path / "book.csv"
    f.write_text("underlying,expiry,strike,right,quantity\nSPY,2024-11-15,570,C,1\nAAPL,,,,5\n")
    pos = read_positions(f)
    with pytest.raises(ValueError, match="line 3: no election states for underlying 'AAPL'"):
        election_exposure(pos, {"SPY": truth_states("SPY")})
    with pytest.raises(ValueError, match="line 2: SPY expiry 2024-11-15 has no states"):
        election_exposure(pos[:1], {"SPY": dataclasses.replace(truth_states("SPY"), expiry=dt.date(2024, 11, 22))})


def test_states_from_a_fit():
    from elecflow.states import fit_states

    st = truth_states("IWM", p=0.6)
    K = so.strike_grid("IWM", U.get("IWM").ref_price, 0.25)
    c = K >= st.forward
    price = option_price(st, K, c)
    fit = fit_states(K, price, np.full(K.size, 0.005), c, st.forward, st.discount, st.tau, weight=0.6)
    from_fit = ElectionStates.from_fit(fit, "IWM", expiry=EXPIRY)
    assert from_fit.probability == 0.6
    assert from_fit.mean_trump == pytest.approx(st.mean_trump, rel=1e-6)
    assert from_fit.sdlog_harris == pytest.approx(st.sdlog_harris, rel=1e-5)
    assert forward_sensitivity(from_fit) == pytest.approx(forward_sensitivity(st), rel=1e-4)
    # mode B without a label cannot be used for a hedge
    unlabelled = fit_states(K, price, np.full(K.size, 0.005), c, st.forward, st.discount, st.tau)
    with pytest.raises(ValueError, match="undetermined"):
        ElectionStates.from_fit(unlabelled, "IWM")
    with pytest.raises(ValueError, match="probability"):
        ElectionStates("X", 1.5, 1.0, 0.1, 1.0, 0.1, 1.0, 0.1)
