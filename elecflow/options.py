"""Per-contract option numerics: Black/Black-Scholes prices, implied volatility, microprice,
quote filtering, the parity-implied forward, and time to expiry (library layer: numpy +
numba, no I/O).

Conventions (see ``docs/options.md``):

* ``bs_price(spot, strike, tau, rate, vol, is_call, div_yield)`` is Black-Scholes-Merton with
  continuous rate ``r`` and dividend yield ``q``: forward ``F = S e^{(r-q) tau}``,
  discount ``DF = e^{-r tau}``, price ``DF * Black(F, K, sigma sqrt(tau))``.
* All functions broadcast their arguments like numpy and return ``float64`` arrays
  (0-d inputs give 0-d arrays).  ``is_call`` is boolean-like (True/1 = call).
* ``implied_vol`` is NaN where no volatility exists: price at or above the upper bound
  (``DF*F`` for a call, ``DF*K`` for a put), price strictly below the lower bound
  (``DF*max(F-K,0)`` / ``DF*max(K-F,0)``), non-finite or non-positive inputs, ``tau <= 0``.
  A price exactly at the lower bound has volatility 0.

The implied-volatility solver works on Jaeckel's normalised Black function
``b(x, s) = Phi(x/s + s/2) e^{x/2} - Phi(x/s - s/2) e^{-x/2}`` with ``x = ln(F/K)``,
``s = sigma sqrt(tau)``, always on the out-of-the-money side (in-the-money prices are
converted through put-call parity on the forward).  ``b`` is evaluated with the four
regions of Jaeckel's "Let's be rational" (2013/2016): an asymptotic expansion for large
negative ``h = x/s``, a small-``t`` expansion, the plain cumulative-normal form near the
money, and the scaled complementary error function (Cody's ``erfcx``) elsewhere, so that
deep out-of-the-money prices keep full relative accuracy.  The root is found by
Householder(3) steps on Jaeckel's transformed objectives (``1/ln b`` below the inflection
point ``s_c = sqrt(2|x|)``, ``ln(b_max - b)`` in the upper wing, ``b`` in between) from
bracket-safe initial guesses (lower map inverse, the tangent at the inflection point,
upper map inverse), with bisection on a maintained bracket as a safeguard.  The
expansions and Cody's coefficients are ported from Jaeckel's reference code (as
republished in py_lets_be_rational / cody_special, MIT; "Permission to use, copy, modify,
and distribute this software is freely granted, provided that this notice is preserved."
Copyright 2013-2014 Peter Jaeckel).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import NamedTuple

import numba as nb
import numpy as np

__all__ = [
    "bs_price",
    "black_price",
    "implied_vol",
    "black_implied_vol",
    "vega",
    "normalised_black",
    "microprice",
    "microprice_var",
    "iv_variance",
    "quote_filter",
    "QuoteReason",
    "QUOTE_REASONS",
    "implied_forward",
    "ForwardFit",
    "time_to_expiry",
    "expiry_close_ns",
    "DAYS_PER_YEAR",
]

_DBL_EPS = 2.220446049250313e-16
_DBL_MAX = 1.7976931348623157e308
_DBL_MIN = 2.2250738585072014e-308
_ONE_OVER_SQRT_TWO = 0.7071067811865475244008443621048490392848359376887
_ONE_OVER_SQRT_TWO_PI = 0.3989422804014326779399460599343818684758586311649
_SQRT_TWO_PI = 2.506628274631000502415765284811045253006986740610
_SQRT_THREE = 1.732050807568877293527446341505872366942805253810
_TWO_PI_OVER_SQRT_27 = 1.209199576156145233729385505094770488189377498728
_FOURTH_ROOT_EPS = 1.2207031250000000e-04
_ASYMPTOTIC_THRESHOLD = -10.0
_SMALL_T_THRESHOLD = 2.0 * 0.10511205190671433  # 2 * eps^(1/16)
_MAX_ITER = 60

# --------------------------------------------------------------------------- special fns

# W. J. Cody, "Rational Chebyshev approximations for the error function", Math. Comp. 1969.
_CA = np.array([3.1611237438705656, 113.864154151050156, 377.485237685302021,
                3209.37758913846947, 0.185777706184603153])
_CB = np.array([23.6012909523441209, 244.024637934444173, 1282.61652607737228,
                2844.23683343917062])
_CC = np.array([0.564188496988670089, 8.88314979438837594, 66.1191906371416295,
                298.635138197400131, 881.95222124176909, 1712.04761263407058,
                2051.07837782607147, 1230.33935479799725, 2.15311535474403846e-8])
_CD = np.array([15.7449261107098347, 117.693950891312499, 537.181101862009858,
                1621.38957456669019, 3290.79923573345963, 4362.61909014324716,
                3439.36767414372164, 1230.33935480374942])
_CP = np.array([0.305326634961232344, 0.360344899949804439, 0.125781726111229246,
                0.0160837851487422766, 6.58749161529837803e-4, 0.0163153871373020978])
_CQ = np.array([2.56852019228982242, 1.87295284992346047, 0.527905102951428412,
                0.0605183413124413191, 0.00233520497626869185])


@nb.njit(cache=True)
def _erfcx(x):  # pragma: no cover - numba
    """exp(x^2) erfc(x) (Cody), accurate to ~1e-16 relative, no overflow for large x."""
    y = abs(x)
    if y <= 0.46875:
        ysq = y * y if y > 1.11e-16 else 0.0
        xnum = _CA[4] * ysq
        xden = ysq
        for i in range(3):
            xnum = (xnum + _CA[i]) * ysq
            xden = (xden + _CB[i]) * ysq
        r = 1.0 - x * (xnum + _CA[3]) / (xden + _CB[3])
        return r * math.exp(ysq)
    if y <= 4.0:
        xnum = _CC[8] * y
        xden = y
        for i in range(7):
            xnum = (xnum + _CC[i]) * y
            xden = (xden + _CD[i]) * y
        r = (xnum + _CC[7]) / (xden + _CD[7])
    elif y >= 6.71e7:
        r = 0.56418958354775628695 / y
    else:
        ysq = 1.0 / (y * y)
        xnum = _CP[5] * ysq
        xden = ysq
        for i in range(4):
            xnum = (xnum + _CP[i]) * ysq
            xden = (xden + _CQ[i]) * ysq
        r = ysq * (xnum + _CP[4]) / (xden + _CQ[4])
        r = (0.56418958354775628695 - r) / y
    if x < 0.0:
        if x < -26.628:
            return _DBL_MAX
        ysq = math.floor(x * 16.0) if x > 0 else -math.floor(-x * 16.0)
        ysq = ysq / 16.0
        d = (x - ysq) * (x + ysq)
        e = math.exp(ysq * ysq) * math.exp(d)
        r = e + e - r
    return r


@nb.njit(cache=True)
def _norm_cdf(z):  # pragma: no cover - numba
    return 0.5 * math.erfc(-z * _ONE_OVER_SQRT_TWO)


@nb.njit(cache=True)
def _inverse_norm_cdf(u):  # pragma: no cover - numba
    """Wichura's AS241 (PPND16), ~1e-16 relative."""
    if u <= 0.0:
        return -_DBL_MAX
    if u >= 1.0:
        return _DBL_MAX
    q = u - 0.5
    if abs(q) <= 0.425:
        r = 0.180625 - q * q
        return q * (((((((2.5090809287301226727e3 * r + 3.3430575583588128105e4) * r
                         + 6.7265770927008700853e4) * r + 4.5921953931549871457e4) * r
                       + 1.3731693765509461125e4) * r + 1.9715909503065514427e3) * r
                     + 1.3314166789178437745e2) * r + 3.3871328727963666080e0) / (
            ((((((5.2264952788528545610e3 * r + 2.8729085735721942674e4) * r
                 + 3.9307895800092710610e4) * r + 2.1213794301586595867e4) * r
               + 5.3941960214247511077e3) * r + 6.8718700749205790830e2) * r
             + 4.2313330701600911252e1) * r + 1.0)
    r = u if q < 0.0 else 1.0 - u
    r = math.sqrt(-math.log(r))
    if r < 5.0:
        r -= 1.6
        v = (((((((7.74545014278341407640e-4 * r + 2.27238449892691845833e-2) * r
                  + 2.41780725177450611770e-1) * r + 1.27045825245236838258e0) * r
                + 3.64784832476320460504e0) * r + 5.76949722146069140550e0) * r
              + 4.63033784615654529590e0) * r + 1.42343711074968357734e0) / (
            ((((((1.05075007164441684324e-9 * r + 5.47593808499534494600e-4) * r
                 + 1.51986665636164571966e-2) * r + 1.48103976427480074590e-1) * r
               + 6.89767334985100004550e-1) * r + 1.67638483018380384940e0) * r
             + 2.05319162663775882187e0) * r + 1.0)
    else:
        r -= 5.0
        v = (((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r
                  + 1.24266094738807843860e-3) * r + 2.65321895265761230930e-2) * r
                + 2.96560571828504891230e-1) * r + 1.78482653991729133580e0) * r
              + 5.46378491116411436990e0) * r + 6.65790464350110377720e0) / (
            ((((((2.04426310338993978564e-15 * r + 1.42151175831644588870e-7) * r
                 + 1.84631831751005468180e-5) * r + 7.86869131145613259100e-4) * r
               + 1.48753612908506148525e-2) * r + 1.36929880922735805310e-1) * r
             + 5.99832206555887937690e-1) * r + 1.0)
    return -v if q < 0.0 else v


# --------------------------------------------------------------------------- normalised Black


@nb.njit(cache=True)
def _asymptotic_expansion(h, t):  # pragma: no cover - numba
    e = (t / h) * (t / h)
    r = (h + t) * (h - t)
    q = (h / r) * (h / r)
    asymptotic_expansion_sum = ((2.0+q*(-6.0E0-2.0*e+3.0*q*(1.0E1+e*(2.0E1+2.0*e)+5.0*q*(-1.4E1+e*(-7.0E1+e*(-4.2E1-2.0*e))+
        7.0*q*(1.8E1+e*(1.68E2+e*(2.52E2+e*(7.2E1+2.0*e)))+9.0*q*(-2.2E1+e*(-3.3E2+e*(-9.24E2+
        e*(-6.6E2+e*(-1.1E2-2.0*e))))+1.1E1*q*(2.6E1+e*(5.72E2+e*(2.574E3+e*(3.432E3+e*(1.43E3+
        e*(1.56E2+2.0*e)))))+1.3E1*q*(-3.0E1+e*(-9.1E2+e*(-6.006E3+e*(-1.287E4+e*(-1.001E4+e*(-2.73E3+
        e*(-2.1E2-2.0*e))))))+1.5E1*q*(3.4E1+e*(1.36E3+e*(1.2376E4+e*(3.8896E4+e*(4.862E4+e*(2.4752E4+
        e*(4.76E3+e*(2.72E2+2.0*e)))))))+1.7E1*q*(-3.8E1+e*(-1.938E3+e*(-2.3256E4+e*(-1.00776E5+
        e*(-1.84756E5+e*(-1.51164E5+e*(-5.4264E4+e*(-7.752E3+e*(-3.42E2-2.0*e))))))))+1.9E1*q*(4.2E1+
        e*(2.66E3+e*(4.0698E4+e*(2.3256E5+e*(5.8786E5+e*(7.05432E5+e*(4.0698E5+e*(1.08528E5+e*(1.197E4+
        e*(4.2E2+2.0*e)))))))))+2.1E1*q*(-4.6E1+e*(-3.542E3+e*(-6.7298E4+e*(-4.90314E5+e*(-1.63438E6+
        e*(-2.704156E6+e*(-2.288132E6+e*(-9.80628E5+e*(-2.01894E5+e*(-1.771E4+
        e*(-5.06E2-2.0*e))))))))))+2.3E1*q*(5.0E1+e*(4.6E3+e*(1.0626E5+e*(9.614E5+e*(4.08595E6+
        e*(8.9148E6+e*(1.04006E7+e*(6.53752E6+e*(2.16315E6+e*(3.542E5+e*(2.53E4+e*(6.0E2+
        2.0*e)))))))))))+2.5E1*q*(-5.4E1+e*(-5.85E3+e*(-1.6146E5+e*(-1.77606E6+e*(-9.37365E6+
        e*(-2.607579E7+e*(-4.01166E7+e*(-3.476772E7+e*(-1.687257E7+e*(-4.44015E6+e*(-5.9202E5+
        e*(-3.51E4+e*(-7.02E2-2.0*e))))))))))))+2.7E1*q*(5.8E1+e*(7.308E3+e*(2.3751E5+e*(3.12156E6+
        e*(2.003001E7+e*(6.919458E7+e*(1.3572783E8+e*(1.5511752E8+e*(1.0379187E8+e*(4.006002E7+
        e*(8.58429E6+e*(9.5004E5+e*(4.7502E4+e*(8.12E2+2.0*e)))))))))))))+2.9E1*q*(-6.2E1+e*(-8.99E3+
        e*(-3.39822E5+e*(-5.25915E6+e*(-4.032015E7+e*(-1.6934463E8+e*(-4.1250615E8+e*(-6.0108039E8+
        e*(-5.3036505E8+e*(-2.8224105E8+e*(-8.870433E7+e*(-1.577745E7+e*(-1.472562E6+e*(-6.293E4+
        e*(-9.3E2-2.0*e))))))))))))))+3.1E1*q*(6.6E1+e*(1.0912E4+e*(4.74672E5+e*(8.544096E6+
        e*(7.71342E7+e*(3.8707344E8+e*(1.14633288E9+e*(2.07431664E9+e*(2.33360622E9+e*(1.6376184E9+
        e*(7.0963464E8+e*(1.8512208E8+e*(2.7768312E7+e*(2.215136E6+e*(8.184E4+e*(1.056E3+
        2.0*e)))))))))))))))+3.3E1*(-7.0E1+e*(-1.309E4+e*(-6.49264E5+e*(-1.344904E7+e*(-1.4121492E8+
        e*(-8.344518E8+e*(-2.9526756E9+e*(-6.49588632E9+e*(-9.0751353E9+e*(-8.1198579E9+
        e*(-4.6399188E9+e*(-1.6689036E9+e*(-3.67158792E8+e*(-4.707164E7+e*(-3.24632E6+e*(-1.0472E5+
        e*(-1.19E3-2.0*e)))))))))))))))))*q))))))))))))))))))
    b = _ONE_OVER_SQRT_TWO_PI * math.exp(-0.5 * (h * h + t * t)) * (t / r) * asymptotic_expansion_sum
    return abs(max(b, 0.0))


@nb.njit(cache=True)
def _small_t_expansion(h, t):  # pragma: no cover - numba
    a = 1.0 + h * (0.5 * _SQRT_TWO_PI) * _erfcx(-_ONE_OVER_SQRT_TWO * h)
    w = t * t
    h2 = h * h
    expansion = (2*t*(a+w*((-1+3*a+a*h2)/6+w*((-7+15*a+h2*(-1+10*a+a*h2))/120+w*((-57+105*a+h2*(-18+105*a+
        h2*(-1+21*a+a*h2)))/5040+w*((-561+945*a+h2*(-285+1260*a+h2*(-33+378*a+h2*(-1+36*a+
        a*h2))))/362880+w*((-6555+10395*a+h2*(-4680+17325*a+h2*(-840+6930*a+h2*(-52+990*a+h2*(-1+55*a+
        a*h2)))))/39916800+((-89055+135135*a+h2*(-82845+270270*a+h2*(-20370+135135*a+h2*(-1926+25740*a+
        h2*(-75+2145*a+h2*(-1+78*a+a*h2))))))*w)/6227020800.0)))))))
    b = _ONE_OVER_SQRT_TWO_PI * math.exp(-0.5 * (h * h + t * t)) * expansion
    return abs(max(b, 0.0))


@nb.njit(cache=True)
def _nb_otm(x, s):  # pragma: no cover - numba
    """Normalised Black call b(x, s) for x <= 0 (out of the money), s > 0."""
    if s <= 0.0:
        return 0.0
    if x < s * _ASYMPTOTIC_THRESHOLD and 0.5 * s * s + x < s * (_SMALL_T_THRESHOLD + _ASYMPTOTIC_THRESHOLD):
        return _asymptotic_expansion(x / s, 0.5 * s)
    if 0.5 * s < _SMALL_T_THRESHOLD:
        return _small_t_expansion(x / s, 0.5 * s)
    if x + 0.5 * s * s > s * 0.85:
        h = x / s
        t = 0.5 * s
        bmax = math.exp(0.5 * x)
        b = _norm_cdf(h + t) * bmax - _norm_cdf(h - t) / bmax
        return abs(max(b, 0.0))
    h = x / s
    t = 0.5 * s
    b = 0.5 * math.exp(-0.5 * (h * h + t * t)) * (
        _erfcx(-_ONE_OVER_SQRT_TWO * (h + t)) - _erfcx(-_ONE_OVER_SQRT_TWO * (h - t)))
    return abs(max(b, 0.0))


@nb.njit(cache=True)
def _nb_otm_complement(x, s):  # pragma: no cover - numba
    """b_max - b(x, s) = e^{x/2} Phi(-h-t) + e^{-x/2} Phi(h-t) for x <= 0, without cancellation."""
    h = x / s
    t = 0.5 * s
    return 0.5 * math.exp(0.5 * x) * math.erfc((h + t) * _ONE_OVER_SQRT_TWO) + \
        0.5 * math.exp(-0.5 * x) * math.erfc((t - h) * _ONE_OVER_SQRT_TWO)


@nb.njit(cache=True)
def _nvega(x, s):  # pragma: no cover - numba
    """db/ds = phi(h+t) e^{x/2} = exp(-(h^2+t^2)/2)/sqrt(2 pi)."""
    if s <= 0.0:
        return 0.0
    h = x / s
    t = 0.5 * s
    return _ONE_OVER_SQRT_TWO_PI * math.exp(-0.5 * (h * h + t * t))


@nb.njit(cache=True)
def _householder_factor(newton, halley, hh3):  # pragma: no cover - numba
    return (1.0 + 0.5 * halley * newton) / (1.0 + newton * (halley + hh3 * newton / 6.0))


@nb.njit(cache=True)
def _normalised_iv_otm(beta, x):  # pragma: no cover - numba
    """s with b(x, s) = beta for x <= 0 (OTM call), 0 < beta < e^{x/2}.  Returns (s, iterations)."""
    bmax = math.exp(0.5 * x)
    ax = -x
    s_left = 0.0
    s_right = _DBL_MAX
    s_c = math.sqrt(2.0 * ax)
    region = 0  # 0: lower (1/ln b), 1: middle (b), 2: upper (ln(bmax-b))
    if s_c > 0.0:
        b_c = _nb_otm(x, s_c)
        v_c = _nvega(x, s_c)
    else:
        b_c = 0.0
        v_c = _ONE_OVER_SQRT_TWO_PI
    if beta < b_c:
        region = 0
        s_right = s_c
        # b is convex on (0, s_c): the tangent at s_c bounds the root from above.
        s_t = s_c - (b_c - beta) / v_c
        if s_t > 0.0 and s_t < s_right:
            s_right = s_t
        # Jaeckel's lower map f(s) = 2pi/sqrt(27) |x| Phi(-|x|/(sqrt(3) s))^3 ~ b(s) for small s.
        u = beta / (_TWO_PI_OVER_SQRT_27 * ax)
        s = -1.0
        if u > 0.0:
            u = u ** (1.0 / 3.0)
            if u < 0.5:
                z = _inverse_norm_cdf(u)
                if z < 0.0:
                    s = ax / (-_SQRT_THREE * z)
        if not (s > s_left and s < s_right):
            s = 0.5 * s_right
    else:
        # b is concave on (s_c, inf): the tangent at s_c bounds the root from below.
        s_left = s_c + (beta - b_c) / v_c if v_c > 0.0 else s_c
        if s_left < s_c:
            s_left = s_c
        region = 2 if beta > 0.5 * bmax else 1
        # Upper map: b_max - b ~ (e^{x/2} + e^{-x/2}) Phi(-s/2) for large s (exact at x = 0).
        f = (bmax - beta) / (bmax + 1.0 / bmax)
        s = s_left
        if f > 0.0 and f < 0.5:
            s_u = -2.0 * _inverse_norm_cdf(f)
            if s_u > s:
                s = s_u
        if region == 1:
            s = s_left if s_left > s_c else s
    ln_beta = math.log(beta)
    bmax_minus_beta = bmax - beta
    it = 0
    while it < _MAX_ITER:
        it += 1
        b = _nb_otm(x, s)
        bp = _nvega(x, s)
        if b > beta:
            if s < s_right:
                s_right = s
        elif b < beta:
            if s > s_left:
                s_left = s
        else:
            return s, it
        if abs(b - beta) <= 2.0 * _DBL_EPS * beta:
            return s, it  # price reproduced to machine precision
        ok = bp > 0.0 and b > 0.0
        ds = 0.0
        if ok:
            h = x / s
            b_halley = h * h / s - 0.25 * s
            b_hh3 = b_halley * b_halley - 3.0 * (h / s) * (h / s) - 0.25
            if region == 0:
                ln_b = math.log(b)
                bpob = bp / b
                newton = (ln_beta - ln_b) * ln_b / ln_beta / bpob
                halley = b_halley - bpob * (1.0 + 2.0 / ln_b)
                hh3 = (b_hh3 + 2.0 * bpob * bpob * (1.0 + 3.0 / ln_b * (1.0 + 1.0 / ln_b))
                       - 3.0 * b_halley * bpob * (1.0 + 2.0 / ln_b))
            elif region == 2:
                c = _nb_otm_complement(x, s)
                if c > 0.0:
                    g = math.log(bmax_minus_beta / c)
                    gp = bp / c
                    newton = -g / gp
                    halley = b_halley + gp
                    hh3 = b_hh3 + gp * (2.0 * gp + 3.0 * b_halley)
                else:
                    ok = False
            else:
                newton = (beta - b) / bp
                halley = b_halley
                hh3 = b_hh3
            if ok:
                ds = newton * _householder_factor(newton, halley, hh3)
                if not math.isfinite(ds):
                    ok = False
        s_new = s + ds
        if ok and abs(ds) <= 1e-9 * s:
            # Householder(3) converges at least cubically: the remaining error is ~|ds|^3.
            return s_new, it
        if (not ok) or not (s_new > s_left and s_new < s_right):
            # Safeguard: bisection on the bracket (doubling while unbounded above).
            if s_right >= _DBL_MAX:
                s_new = 2.0 * max(s, s_left, 1e-3)
            else:
                s_new = 0.5 * (s_left + s_right)
            if s_right - s_left <= 2.0 * _DBL_EPS * s_new:
                return s_new, it
        s = s_new
    return s, it


@nb.njit(cache=True)
def _black_undiscounted(F, K, s, is_call):  # pragma: no cover - numba
    """Undiscounted Black price with total vol s = sigma sqrt(tau) (intrinsic + OTM part)."""
    if not (F > 0.0 and K > 0.0 and s >= 0.0):
        return np.nan
    x = math.log(F / K)
    intrinsic = max(F - K, 0.0) if is_call else max(K - F, 0.0)
    xo = -abs(x)  # the out-of-the-money option with the same strike, normalised
    if s == 0.0:
        return intrinsic
    if math.isinf(s):
        return F if is_call else K
    return intrinsic + math.sqrt(F) * math.sqrt(K) * _nb_otm(xo, s)


@nb.njit(cache=True)
def _black_iv_one(price, F, K, tau, is_call):  # pragma: no cover - numba
    """sigma from an undiscounted Black price; NaN outside the no-arbitrage bounds."""
    if not (F > 0.0 and K > 0.0 and tau > 0.0 and math.isfinite(price)):
        return np.nan, 0
    if not (math.isfinite(F) and math.isfinite(K) and math.isfinite(tau)):
        return np.nan, 0
    upper = F if is_call else K
    intrinsic = max(F - K, 0.0) if is_call else max(K - F, 0.0)
    if price >= upper or price < intrinsic:
        return np.nan, 0
    x = math.log(F / K)
    # Out-of-the-money equivalent: subtract the forward intrinsic value (put-call parity).
    otm = price - intrinsic
    if otm <= 0.0:
        return 0.0, 0
    beta = otm / (math.sqrt(F) * math.sqrt(K))
    xo = -abs(x)
    if beta >= math.exp(0.5 * xo):
        return np.nan, 0
    s, it = _normalised_iv_otm(beta, xo)
    return s / math.sqrt(tau), it


@nb.njit(cache=True)
def _bs_price_loop(S, K, tau, r, vol, is_call, q, out):  # pragma: no cover - numba
    for i in range(out.shape[0]):
        t = tau[i]
        if not (t >= 0.0) or not (vol[i] >= 0.0):
            out[i] = np.nan
            continue
        df = math.exp(-r[i] * t)
        F = S[i] * math.exp((r[i] - q[i]) * t)
        out[i] = df * _black_undiscounted(F, K[i], vol[i] * math.sqrt(t), is_call[i])


@nb.njit(cache=True)
def _black_price_loop(F, K, tau, vol, is_call, df, out):  # pragma: no cover - numba
    for i in range(out.shape[0]):
        t = tau[i]
        if not (t >= 0.0) or not (vol[i] >= 0.0):
            out[i] = np.nan
            continue
        out[i] = df[i] * _black_undiscounted(F[i], K[i], vol[i] * math.sqrt(t), is_call[i])


@nb.njit(cache=True)
def _iv_loop(P, F, K, tau, is_call, df, out, iters):  # pragma: no cover - numba
    for i in range(out.shape[0]):
        d = df[i]
        if not (d > 0.0):
            out[i] = np.nan
            iters[i] = 0
            continue
        v, it = _black_iv_one(P[i] / d, F[i], K[i], tau[i], is_call[i])
        out[i] = v
        iters[i] = it


@nb.njit(cache=True)
def _vega_loop(F, K, tau, vol, df, out):  # pragma: no cover - numba
    for i in range(out.shape[0]):
        t = tau[i]
        s = vol[i] * math.sqrt(t)
        if not (t > 0.0 and s > 0.0 and F[i] > 0.0 and K[i] > 0.0):
            out[i] = 0.0 if (t >= 0.0 and vol[i] >= 0.0) else np.nan
            continue
        x = math.log(F[i] / K[i])
        out[i] = df[i] * math.sqrt(F[i]) * math.sqrt(K[i]) * _nvega(x, s) * math.sqrt(t)


@nb.njit(cache=True)
def _nb_loop(x, s, out):  # pragma: no cover - numba
    for i in range(out.shape[0]):
        xi = x[i]
        if xi > 0.0:
            out[i] = math.exp(0.5 * xi) - math.exp(-0.5 * xi) + _nb_otm(-xi, s[i])
        else:
            out[i] = _nb_otm(xi, s[i])


def _prep(*args):
    arrs = np.broadcast_arrays(*[np.asarray(a) for a in args])
    shape = arrs[0].shape
    flat = [np.ascontiguousarray(a, dtype=np.float64).ravel() for a in arrs[:-1]]
    return shape, flat, arrs[-1]


def _flags(is_call, shape):
    c = np.broadcast_to(np.asarray(is_call), shape)
    if c.dtype.kind in "US":
        c = np.char.lower(c.astype(str))
        c = (c == "c") | (c == "call")
    return np.ascontiguousarray(c, dtype=np.bool_).ravel()


def _forward_df(spot, tau, rate, div_yield):
    tau = np.asarray(tau, dtype=np.float64)
    rate = np.asarray(rate, dtype=np.float64)
    q = np.asarray(div_yield, dtype=np.float64)
    spot = np.asarray(spot, dtype=np.float64)
    return spot * np.exp((rate - q) * tau), np.exp(-rate * tau)


# --------------------------------------------------------------------------- public pricing


def black_price(forward, strike, tau, vol, is_call, discount=1.0):
    """Black (1976) price ``DF * [phi (F N(phi d1) - K N(phi d2))]``; ``phi = +1`` call, ``-1`` put."""
    shape = np.broadcast_shapes(*(np.shape(a) for a in (forward, strike, tau, vol, is_call, discount)))
    F, K, T, V, D = (np.ascontiguousarray(np.broadcast_to(np.asarray(a, dtype=np.float64), shape)).ravel()
                     for a in (forward, strike, tau, vol, discount))
    c = _flags(is_call, shape)
    out = np.empty(F.shape[0])
    _black_price_loop(F, K, T, V, c, D, out)
    return out.reshape(shape)


def bs_price(spot, strike, tau, rate, vol, is_call, div_yield=0.0):
    """Black-Scholes-Merton price with continuous rate and dividend yield.

    ``F = S e^{(r-q) tau}``, ``DF = e^{-r tau}``, price ``= DF * Black(F, K, tau, vol)``.
    NaN for negative ``tau``/``vol`` or non-positive spot/strike; ``tau = 0`` or ``vol = 0``
    gives the discounted forward intrinsic value.
    """
    F, D = _forward_df(spot, tau, rate, div_yield)
    return black_price(F, strike, tau, vol, is_call, D)


def black_implied_vol(price, forward, strike, tau, is_call, discount=1.0, *, return_iterations=False):
    """Implied Black volatility from a (discounted) price; NaN where none exists."""
    shape = np.broadcast_shapes(*(np.shape(a) for a in (price, forward, strike, tau, is_call, discount)))
    P, F, K, T, D = (np.ascontiguousarray(np.broadcast_to(np.asarray(a, dtype=np.float64), shape)).ravel()
                     for a in (price, forward, strike, tau, discount))
    c = _flags(is_call, shape)
    out = np.empty(P.shape[0])
    iters = np.empty(P.shape[0], dtype=np.int64)
    _iv_loop(P, F, K, T, c, D, out, iters)
    if return_iterations:
        return out.reshape(shape), iters.reshape(shape)
    return out.reshape(shape)


def implied_vol(price, spot, strike, tau, rate, is_call, div_yield=0.0):
    """Black-Scholes-Merton implied volatility (inverse of :func:`bs_price`).

    NaN where no volatility exists: price outside ``[DF*max(phi(F-K),0), DF*F or DF*K)``,
    non-finite inputs, ``tau <= 0``.  Exactly at the lower bound the answer is 0.
    """
    F, D = _forward_df(spot, tau, rate, div_yield)
    return black_implied_vol(price, F, strike, tau, is_call, D)


def vega(spot, strike, tau, rate, vol, div_yield=0.0):
    """dPrice/dvol = S e^{-q tau} phi(d1) sqrt(tau) (same for calls and puts)."""
    F, D = _forward_df(spot, tau, rate, div_yield)
    shape = np.broadcast_shapes(*(np.shape(a) for a in (F, strike, tau, vol, D)))
    F, K, T, V, D = (np.ascontiguousarray(np.broadcast_to(np.asarray(a, dtype=np.float64), shape)).ravel()
                     for a in (F, strike, tau, vol, D))
    out = np.empty(F.shape[0])
    _vega_loop(F, K, T, V, D, out)
    return out.reshape(shape)


def normalised_black(x, s):
    """Jaeckel's normalised Black call ``b(x,s) = Phi(x/s+s/2)e^{x/2} - Phi(x/s-s/2)e^{-x/2}``."""
    xb, sb = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(s, dtype=np.float64))
    xf = np.ascontiguousarray(xb).ravel()
    sf = np.ascontiguousarray(sb).ravel()
    out = np.empty(xf.shape[0])
    _nb_loop(xf, sf, out)
    return out.reshape(xb.shape)


# --------------------------------------------------------------------------- microprice


def microprice(bid, ask, bid_size, ask_size):
    """Size-weighted microprice ``(Qa*Pb + Qb*Pa) / (Qb + Qa)``; NaN when Qb + Qa <= 0."""
    pb, pa, qb, qa = (np.asarray(a, dtype=np.float64) for a in (bid, ask, bid_size, ask_size))
    tot = qb + qa
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(tot > 0, (qa * pb + qb * pa) / np.where(tot > 0, tot, 1.0), np.nan)


def microprice_var(bid, ask, bid_size, ask_size):
    """Seed's microprice variance ``(Pa - Pb)^2 / (12 (Qb + Qa))``; NaN when Qb + Qa <= 0."""
    pb, pa, qb, qa = (np.asarray(a, dtype=np.float64) for a in (bid, ask, bid_size, ask_size))
    tot = qb + qa
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(tot > 0, (pa - pb) ** 2 / (12.0 * np.where(tot > 0, tot, 1.0)), np.nan)


def iv_variance(price_var, vega_):
    """IV uncertainty ``sigma_IV^2 = sigma_P^2 / vega^2`` (inf where vega == 0)."""
    pv = np.asarray(price_var, dtype=np.float64)
    v = np.asarray(vega_, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(v != 0, pv / np.where(v != 0, v * v, 1.0), np.inf)


# --------------------------------------------------------------------------- quote filter


class QuoteReason:
    """Reason codes of :func:`quote_filter` (int8); the first failing check wins, in this order."""

    OK = 0
    INVALID = 1          # non-finite price, non-positive ask, negative size, bad F/DF/K
    ZERO_BID = 2         # bid <= 0
    CROSSED = 3          # bid > ask (a locked market bid == ask is accepted)
    BELOW_INTRINSIC = 4  # price <= DF*max(phi (F-K), 0): no (positive) volatility exists
    ABOVE_MAXIMUM = 5    # price >= DF*F (call) or DF*K (put): no finite volatility exists


QUOTE_REASONS = ("ok", "invalid", "zero_bid", "crossed", "below_intrinsic", "above_maximum")


def quote_filter(bid, ask, forward, discount, strike, is_call, bid_size=None, ask_size=None):
    """Reason code per quote (see :class:`QuoteReason`, names in ``QUOTE_REASONS``).

    The price checked against the no-arbitrage bounds ``[DF*max(phi(F-K),0), DF*F | DF*K]``
    is the microprice when both sizes are given and positive in total, else the mid.
    Prices on a bound are excluded too (the volatility there is 0 or infinite).
    """
    pb, pa, F, D, K = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64)
                                            for a in (bid, ask, forward, discount, strike)))
    shape = pb.shape
    c = _flags(is_call, shape).reshape(shape)
    if bid_size is not None and ask_size is not None:
        qb = np.broadcast_to(np.asarray(bid_size, dtype=np.float64), shape)
        qa = np.broadcast_to(np.asarray(ask_size, dtype=np.float64), shape)
        size_bad = ~(np.isfinite(qb) & np.isfinite(qa)) | (qb < 0) | (qa < 0)
        with np.errstate(invalid="ignore"):
            mp = microprice(pb, pa, qb, qa)
        price = np.where(np.isfinite(mp), mp, 0.5 * (pb + pa))
    else:
        size_bad = np.zeros(shape, dtype=bool)
        price = 0.5 * (pb + pa)
    with np.errstate(invalid="ignore"):
        invalid = (~np.isfinite(pb) | ~np.isfinite(pa) | (pa <= 0) | size_bad
                   | ~(F > 0) | ~(D > 0) | ~(K > 0) | ~np.isfinite(F) | ~np.isfinite(K))
        lower = D * np.where(c, np.maximum(F - K, 0.0), np.maximum(K - F, 0.0))
        upper = D * np.where(c, F, K)
        out = np.zeros(shape, dtype=np.int8)
        out[price >= upper] = QuoteReason.ABOVE_MAXIMUM
        out[price <= lower] = QuoteReason.BELOW_INTRINSIC
        out[pb > pa] = QuoteReason.CROSSED
        out[pb <= 0] = QuoteReason.ZERO_BID
        out[invalid] = QuoteReason.INVALID
    return out


# --------------------------------------------------------------------------- implied forward


class ForwardFit(NamedTuple):
    forward: float
    discount: float
    n_pairs: int
    method: str  # "parity_huber" | "spot_carry" | "none"


def _huber_wls(k, y, w, c=1.345, iters=50):
    """Huber M-estimate of y = a + b k with prior weights w (IRLS, MAD scale)."""
    X = np.column_stack([np.ones_like(k), k])
    ww = w.copy()
    beta = np.linalg.lstsq(X * np.sqrt(ww)[:, None], y * np.sqrt(ww), rcond=None)[0]
    for _ in range(iters):
        r = y - X @ beta
        scale = 1.4826 * np.median(np.abs(r - np.median(r)))
        if not scale > 0:
            break
        u = np.abs(r) / (c * scale)
        hw = np.where(u <= 1.0, 1.0, 1.0 / np.maximum(u, 1e-300))
        ww = w * hw
        new = np.linalg.lstsq(X * np.sqrt(ww)[:, None], y * np.sqrt(ww), rcond=None)[0]
        if np.allclose(new, beta, rtol=1e-13, atol=1e-15):
            beta = new
            break
        beta = new
    return beta


def implied_forward(strikes, call_mid, put_mid, weights=None, *, spot=None, rate=None, tau=None,
                    div_yield=0.0, n_near=8, min_pairs=3):
    """Forward and discount factor from put-call parity ``C - P = DF (F - K)``.

    Uses the ``n_near`` pairs (finite call and put mids, positive strikes) whose strikes are
    nearest a first forward guess (the zero crossing of ``C - P`` by linear interpolation,
    else the strike of smallest ``|C - P|``), and a Huber-weighted least-squares line of
    ``C - P`` on ``K`` (slope ``-DF``, intercept ``DF F``), with optional per-pair ``weights``
    (e.g. inverse squared spreads).  With fewer than ``min_pairs`` (default 3) usable
    pairs, or an implausible fit (``DF`` outside (0, 2] or ``F <= 0``), falls back to
    ``F = S e^{(r-q) tau}``, ``DF = e^{-r tau}`` when ``spot``, ``rate`` and ``tau`` are given
    (method ``"spot_carry"``), else NaNs with method ``"none"``.
    """
    K = np.asarray(strikes, dtype=np.float64).ravel()
    C = np.asarray(call_mid, dtype=np.float64).ravel()
    P = np.asarray(put_mid, dtype=np.float64).ravel()
    W = np.ones_like(K) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    ok = np.isfinite(K) & np.isfinite(C) & np.isfinite(P) & (K > 0) & np.isfinite(W) & (W > 0)
    K, C, P, W = K[ok], C[ok], P[ok], W[ok]
    n_used = 0
    if K.size >= min_pairs and np.unique(K).size >= 2:
        order = np.argsort(K, kind="stable")
        K, C, P, W = K[order], C[order], P[order], W[order]
        y = C - P
        sign_change = np.nonzero((y[:-1] > 0) & (y[1:] <= 0))[0]
        if sign_change.size:
            i = sign_change[0]
            f0 = K[i] + y[i] * (K[i + 1] - K[i]) / (y[i] - y[i + 1])
        else:
            f0 = K[np.argmin(np.abs(y))]
        near = np.argsort(np.abs(K - f0), kind="stable")[:max(int(n_near), int(min_pairs))]
        kn, yn, wn = K[near], y[near], W[near]
        if kn.size >= min_pairs and np.unique(kn).size >= 2:
            ks = np.median(kn)
            a, b = _huber_wls(kn - ks, yn, wn)
            df = -b
            fwd = ks + a / df if df != 0 else np.nan
            if np.isfinite(df) and np.isfinite(fwd) and 0.0 < df <= 2.0 and fwd > 0.0:
                return ForwardFit(float(fwd), float(df), int(kn.size), "parity_huber")
            n_used = int(kn.size)
    if spot is not None and rate is not None and tau is not None:
        F, D = _forward_df(spot, tau, rate, div_yield)
        return ForwardFit(float(F), float(D), n_used, "spot_carry")
    return ForwardFit(float("nan"), float("nan"), n_used, "none")


# --------------------------------------------------------------------------- time to expiry

DAYS_PER_YEAR = 365.0
_NS_PER_YEAR = DAYS_PER_YEAR * 86_400 * 1_000_000_000


def expiry_close_ns(expiry_date: dt.date) -> int:
    """UTC nanoseconds of 16:00 New York wall-clock time on ``expiry_date`` (DST-aware)."""
    from elecflow.calendar import utc_ns

    return utc_ns(expiry_date, dt.time(16, 0))


def time_to_expiry(now_utc_ns, expiry_date: dt.date):
    """Years from ``now_utc_ns`` to the 16:00 New York close of ``expiry_date``.

    Day count ACT/365 in calendar time: elapsed nanoseconds / (365 * 86400e9), weekends,
    holidays and nights included.  Not clipped: a value <= 0 means expired (and
    :func:`implied_vol` gives NaN there).  Scalar in, float out; array in, array out.
    """
    t_exp = expiry_close_ns(expiry_date)
    now = np.asarray(now_utc_ns, dtype=np.int64)
    out = (t_exp - now).astype(np.float64) / _NS_PER_YEAR
    return float(out) if out.ndim == 0 else out
