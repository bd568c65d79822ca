"""Equilibrium price discovery across Arrow-Debreu securities and options ("Arrow-Debreu Meets Kyle").

An insider who knows which of K state distributions is true trades all Arrow-Debreu
securities (equivalently the underlying and its options) against noise traders and a
Bayesian market maker. This subpackage computes the paper's canonical constants
(:func:`equilibrium_alpha`, :func:`information_efficiency`), the general model
(:class:`ADKyleModel`: equilibrium demand, posterior, pricing kernel, price impact), the
original game's best responses used to verify every equilibrium (:mod:`.game`), the option
specialisation (:mod:`.derivatives`) and the paper's Figures 2-7 (:mod:`.figures`).
docs/theory.md explains the model and where the paper's claims need corrections.
"""

from elecflow.theory.canonical import (
    CanonicalMoments,
    Estimate,
    binary_information_efficiency,
    binary_phi,
    canonical_moments,
    equilibrium_alpha,
    information_efficiency,
    phi,
    phi_monte_carlo,
    sample_canonical_posterior,
)
from elecflow.theory.equilibrium import Equilibrium, solve_equilibrium, symmetric_equilibrium
from elecflow.theory.game import (
    BestResponse,
    KyleEquilibrium,
    best_response,
    discretised_kyle,
    insider_profit,
    kyle_linear_equilibrium,
    normal_noise,
    posterior_weights,
    state_prices,
)
from elecflow.theory.model import ADKyleModel

__all__ = [
    "ADKyleModel",
    "BestResponse",
    "CanonicalMoments",
    "Equilibrium",
    "Estimate",
    "KyleEquilibrium",
    "best_response",
    "binary_information_efficiency",
    "binary_phi",
    "canonical_moments",
    "discretised_kyle",
    "equilibrium_alpha",
    "information_efficiency",
    "insider_profit",
    "kyle_linear_equilibrium",
    "normal_noise",
    "phi",
    "phi_monte_carlo",
    "posterior_weights",
    "sample_canonical_posterior",
    "solve_equilibrium",
    "state_prices",
    "symmetric_equilibrium",
]
