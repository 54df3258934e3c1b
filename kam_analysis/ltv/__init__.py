"""Probabilistic customer-base models for customer lifetime value.

Non-contractual repeat purchasing: :class:`BetaGeo` (BG/NBD) and
:class:`ParetoNBD`; spend per transaction: :class:`GammaGamma`; contractual
retention: :class:`ShiftedBetaGeometric`. All follow ``Model(settings)
.fit(data) -> self`` with fitted attributes ending in ``_`` and a
``summary()`` table; times are in the model's explicit ``time_unit``.
"""

from ._base import (
    PERIODS_PER_YEAR,
    ConvergenceError,
    LTVModelSettings,
    NotFittedError,
    per_period_discount_rate,
)
from .beta_geo import BetaGeo, simulate_beta_geo
from .gamma_gamma import GammaGamma, IndependenceWarning
from .pareto_nbd import ParetoNBD
from .shifted_beta_geometric import ShiftedBetaGeometric

__all__ = [
    "PERIODS_PER_YEAR",
    "BetaGeo",
    "ConvergenceError",
    "GammaGamma",
    "IndependenceWarning",
    "LTVModelSettings",
    "NotFittedError",
    "ParetoNBD",
    "ShiftedBetaGeometric",
    "per_period_discount_rate",
    "simulate_beta_geo",
]
